"""Lab part: a home and a contact center on one machine, as two network namespaces.

Real kernel networking (veth, routes, tc rate limits) between two namespaces; names are unique
per process so parallel test sessions do not collide. Only documentation addresses are used
(192.0.2.0/24 on the veth, 198.51.100.0/24 and 10.8.0.0/24 for what tests add), and nothing
here sends traffic outside the namespaces it made.
"""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

HOME_ADDR = "192.0.2.1"
CENTER_ADDR = "192.0.2.2"
# where the lab's center listens (tests/lab/bandwidth_center.py): its HTTP endpoint and the
# path-test reflector; here so that product-free references (the emulator's truths) can find
# the probe's packets without importing the harness that starts the product
CENTER_HTTP_PORT = 8750
CENTER_UDP_PORT = 8751
_counter = itertools.count()


class LabError(RuntimeError):
    """The lab could not be built: the test fails (it never skips)."""


def sh(*args: str, check: bool = True, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(list(args), capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise LabError(f"{' '.join(args)} -> {proc.returncode}: {proc.stderr.strip()}")
    return proc


def require_tools(*tools: str) -> None:
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        raise LabError(f"lab tools missing: {', '.join(missing)} (the README's test command "
                       "installs them)")
    if os.geteuid() != 0:
        raise LabError("the network lab needs root (network namespaces)")


@dataclass
class NetnsPair:
    home: str      # namespace names
    center: str
    home_if: str   # veth ends
    center_if: str
    home_addr: str = HOME_ADDR
    center_addr: str = CENTER_ADDR

    def exec_args(self, ns: str, *args: str) -> list[str]:
        """``ip netns exec NS args...``: run a command inside a namespace."""
        return ["ip", "netns", "exec", ns, *args]

    def run(self, ns: str, *args: str, check: bool = True,
            timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return sh(*self.exec_args(ns, *args), check=check, timeout=timeout)

    def popen(self, ns: str, args: Sequence[str], **kw: object) -> subprocess.Popen[str]:
        return subprocess.Popen(self.exec_args(ns, *args), text=True, **kw)  # type: ignore[call-overload]

    def python(self, ns: str, *args: str) -> list[str]:
        """Command line for this interpreter inside a namespace."""
        return self.exec_args(ns, sys.executable, *args)

    def shape(self, ns: str, rate_mbit: float, *, burst_kbit: int = 64,
              latency_ms: int = 50) -> None:
        """Egress rate limit (tbf) on the namespace's veth: ground truth for bandwidth."""
        dev = self.home_if if ns == self.home else self.center_if
        self.run(ns, "tc", "qdisc", "replace", "dev", dev, "root", "tbf", "rate",
                 f"{rate_mbit}mbit", "burst", f"{burst_kbit}kbit", "latency", f"{latency_ms}ms")

    def unshape(self, ns: str) -> None:
        dev = self.home_if if ns == self.home else self.center_if
        self.run(ns, "tc", "qdisc", "del", "dev", dev, "root", check=False)


@contextmanager
def netns_pair() -> Iterator[NetnsPair]:
    """Create home <-> center namespaces joined by a veth pair; always torn down."""
    require_tools("ip", "tc")
    tag = f"{os.getpid() % 100000}x{next(_counter)}"
    pair = NetnsPair(home=f"akh{tag}", center=f"akc{tag}", home_if=f"vh{tag}",
                     center_if=f"vc{tag}")
    try:
        sh("ip", "netns", "add", pair.home)
        sh("ip", "netns", "add", pair.center)
        sh("ip", "link", "add", pair.home_if, "type", "veth", "peer", "name", pair.center_if)
        sh("ip", "link", "set", pair.home_if, "netns", pair.home)
        sh("ip", "link", "set", pair.center_if, "netns", pair.center)
        pair.run(pair.home, "ip", "addr", "add", f"{HOME_ADDR}/24", "dev", pair.home_if)
        pair.run(pair.center, "ip", "addr", "add", f"{CENTER_ADDR}/24", "dev", pair.center_if)
        for ns, dev in ((pair.home, pair.home_if), (pair.center, pair.center_if)):
            pair.run(ns, "ip", "link", "set", dev, "up")
            pair.run(ns, "ip", "link", "set", "lo", "up")
        yield pair
    finally:
        sh("ip", "netns", "del", pair.home, check=False)
        sh("ip", "netns", "del", pair.center, check=False)
