"""Lab part: a routed chain home -> router -> isp -> center, four network namespaces.

Real kernel forwarding between namespaces joined by veth pairs::

    home 192.168.77.2 --- 192.168.77.1 router 100.64.77.1 --- 100.64.77.2 isp 198.51.100.1
                                                                --- 198.51.100.2 center

A home LAN in private space (RFC 1918), the ISP's access link in shared CGNAT space (RFC 6598)
and the center in a documentation range standing in for public space, so a traceroute from home
sees hop 1 = the home router, hop 2 = the ISP, hop 3 = the center. The routers forward
(``net.ipv4.ip_forward``) and route statically (no NAT). Their ICMP rate limits stay at the
kernel's defaults, as on a real router.

Ground truth for delay: ``shape(link, rate, latency)`` puts a tbf queue on a link toward the
center. Ground truth for loss: ``drop_every(link, n, port)`` adds an nftables rule at the
receiving end of a link that drops every n-th UDP packet to the center's port coming in over
it (a deterministic counter, ``numgen inc``); ``drop_counts(link)`` reads its counters. netem is
not in this kernel; nftables is (Debian ``nftables``). Names are unique per process;
everything is torn down on exit, and no traffic leaves the namespaces made here.
"""

from __future__ import annotations

import itertools
import os
import re
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

from tests.lab.netns import LabError, require_tools, sh

HOME_ADDR = "192.168.77.2"
ROUTER_LAN_ADDR = "192.168.77.1"
ROUTER_WAN_ADDR = "100.64.77.1"
ISP_ACCESS_ADDR = "100.64.77.2"
ISP_CORE_ADDR = "198.51.100.1"
CENTER_ADDR = "198.51.100.2"
LINKS = ("home-router", "router-isp", "isp-center")
_counter = itertools.count()


@dataclass
class Chain:
    tag: str
    ns: dict[str, str] = field(default_factory=dict)       # role -> namespace name
    ifs: dict[str, tuple[str, str]] = field(default_factory=dict)  # link -> (near, far) ifname

    def exec_args(self, role: str, *args: str) -> list[str]:
        return ["ip", "netns", "exec", self.ns[role], *args]

    def run(self, role: str, *args: str, check: bool = True,
            timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return sh(*self.exec_args(role, *args), check=check, timeout=timeout)

    def popen(self, role: str, args: Sequence[str], **kw: object) -> subprocess.Popen[str]:
        return subprocess.Popen(self.exec_args(role, *args), text=True, **kw)  # type: ignore[call-overload]

    def python(self, role: str, *args: str, prefix: Sequence[str] = ()) -> list[str]:
        """This interpreter inside a namespace, optionally behind ``prefix`` (e.g. setpriv)."""
        return self.exec_args(role, *prefix, sys.executable, *args)

    def drop_every(self, link: str, n: int, dport: int) -> None:
        """Drop the n-th, 2n-th, ... UDP packet to ``CENTER_ADDR:dport`` entering the far end
        of ``link`` (the home side sends them): a deterministic counter, so the same probes in
        the same order always lose the same packets."""
        far_role = link.split("-")[1]
        far_if = self.ifs[link][1]
        script = "\n".join((
            "table inet lab {",
            "  chain pre {",
            "    type filter hook prerouting priority -300;",
            f"    iifname \"{far_if}\" ip daddr {CENTER_ADDR} udp dport {dport} "
            f"counter numgen inc mod {n} == {n - 1} counter drop",
            "  }",
            "}", ""))
        proc = subprocess.run(self.exec_args(far_role, "nft", "-f", "-"), input=script,
                              capture_output=True, text=True, timeout=30)
        if proc.returncode != 0:
            raise LabError(f"nft on {far_role}: {proc.stderr.strip()}")

    def drop_every_per_ttl(self, link: str, n: int, dport: int, *, max_ttl: int = 20) -> None:
        """Like ``drop_every``, with one counter per arriving IP TTL: each traceroute hop's probes
        (which reach the link with their own TTL) lose exactly every n-th of theirs, and the
        path stream (TTL above ``max_ttl``) every n-th of its. One shared counter would alias
        with the traceroute's rounds over its hops (a hop whose probes always fall between the
        dropped ones). nftables keeps a ``numgen inc`` counter per rule."""
        far_role = link.split("-")[1]
        far_if = self.ifs[link][1]
        match = f"iifname \"{far_if}\" ip daddr {CENTER_ADDR} udp dport {dport}"
        drop = f"numgen inc mod {n} == {n - 1} counter drop"
        rules = [f"    {match} ip ttl {ttl} {drop}" for ttl in range(1, max_ttl + 1)]
        rules.append(f"    {match} ip ttl > {max_ttl} {drop}")
        script = "\n".join(("table inet lab {", "  chain pre {",
                            "    type filter hook prerouting priority -300;", *rules, "  }",
                            "}", ""))
        proc = subprocess.run(self.exec_args(far_role, "nft", "-f", "-"), input=script,
                              capture_output=True, text=True, timeout=30)
        if proc.returncode != 0:
            raise LabError(f"nft on {far_role}: {proc.stderr.strip()}")

    def shape(self, link: str, rate_mbit: float, latency_ms: int) -> None:
        """A tbf rate limit on ``link`` toward the center (the near end's egress): a queue
        holding at most ``latency_ms`` of traffic, ground truth for the delay a full queue
        adds (an ISP access line's bufferbloat)."""
        near_role = link.split("-")[0]
        self.run(near_role, "tc", "qdisc", "replace", "dev", self.ifs[link][0], "root", "tbf",
                 "rate", f"{rate_mbit}mbit", "burst", "16kbit", "latency", f"{latency_ms}ms")

    def qdisc_stats(self, link: str) -> str:
        return self.run(link.split("-")[0], "tc", "-s", "qdisc", "show", "dev",
                        self.ifs[link][0]).stdout

    def drop_counts(self, link: str) -> tuple[int, int]:
        """(packets seen, packets dropped) by the ``drop_every`` rule of ``link`` so far."""
        out = self.run(link.split("-")[1], "nft", "list", "table", "inet", "lab").stdout
        counts = [int(n) for n in re.findall(r"counter packets (\d+)", out)]
        if len(counts) != 2:
            raise LabError(f"no drop rule on {link}: {out}")
        return counts[0], counts[1]


@contextmanager
def chain() -> Iterator[Chain]:
    """Build home -> router -> isp -> center; always torn down."""
    require_tools("ip", "nft")
    tag = f"{os.getpid() % 100000}x{next(_counter)}"
    c = Chain(tag)
    for role, short in (("home", "h"), ("router", "r"), ("isp", "i"), ("center", "c")):
        c.ns[role] = f"akt{short}{tag}"
    plan = {  # link -> (near role, near addr, far role, far addr, prefix)
        "home-router": ("home", HOME_ADDR, "router", ROUTER_LAN_ADDR, 24),
        "router-isp": ("router", ROUTER_WAN_ADDR, "isp", ISP_ACCESS_ADDR, 30),
        "isp-center": ("isp", ISP_CORE_ADDR, "center", CENTER_ADDR, 24),
    }
    try:
        for name in c.ns.values():
            sh("ip", "netns", "add", name)
        for n, (link, (near, near_addr, far, far_addr, prefix)) in enumerate(plan.items()):
            a, b = f"tq{n}a{tag}", f"tq{n}b{tag}"
            c.ifs[link] = (a, b)
            sh("ip", "link", "add", a, "type", "veth", "peer", "name", b)
            for ifname, role, addr in ((a, near, near_addr), (b, far, far_addr)):
                sh("ip", "link", "set", ifname, "netns", c.ns[role])
                c.run(role, "ip", "addr", "add", f"{addr}/{prefix}", "dev", ifname)
                c.run(role, "ip", "link", "set", ifname, "up")
        for role in c.ns:
            c.run(role, "ip", "link", "set", "lo", "up")
        for role in ("router", "isp"):
            c.run(role, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        c.run("home", "ip", "route", "add", "default", "via", ROUTER_LAN_ADDR)
        c.run("router", "ip", "route", "add", "default", "via", ISP_ACCESS_ADDR)
        c.run("isp", "ip", "route", "add", "192.168.77.0/24", "via", ROUTER_WAN_ADDR)
        c.run("center", "ip", "route", "add", "default", "via", ISP_CORE_ADDR)
        yield c
    finally:
        for name in c.ns.values():
            sh("ip", "netns", "del", name, check=False)
