"""Lab part: a real OpenVPN tunnel (static key, user space) between the two namespaces."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.lab.netns import LabError, NetnsPair, require_tools, sh

TUNNEL_CENTER = "10.8.0.1"
TUNNEL_HOME = "10.8.0.2"


@contextmanager
def openvpn_tunnel(pair: NetnsPair, workdir: Path, *,
                   timeout_s: float = 20.0) -> Iterator[str]:
    """Start OpenVPN in both namespaces; yields the home end's tun device name."""
    require_tools("openvpn")
    key = workdir / "static.key"
    sh("openvpn", "--genkey", "secret", str(key))
    dev = "tun0"
    common = ["--dev", dev, "--cipher", "AES-256-CBC", "--daemon",
              "--verb", "3", "--ping", "1"]
    pids = {side: workdir / f"{side}.pid" for side in ("center", "home")}
    pair.run(pair.center, "openvpn", *common, "--ifconfig", TUNNEL_CENTER, TUNNEL_HOME,
             "--secret", str(key), "0", "--writepid", str(pids["center"]),
             "--log", str(workdir / "center.log"))
    pair.run(pair.home, "openvpn", *common, "--remote", pair.center_addr, "--ifconfig",
             TUNNEL_HOME, TUNNEL_CENTER, "--secret", str(key), "1",
             "--writepid", str(pids["home"]), "--log", str(workdir / "home.log"))
    try:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            logs = [workdir / "home.log", workdir / "center.log"]
            # OpenVPN's own word that the tunnel is up, on both ends.
            if all(p.exists() and "Initialization Sequence Completed" in p.read_text(
                    errors="replace") for p in logs):
                break
            time.sleep(0.3)
        else:
            log = (workdir / "home.log").read_text(errors="replace")[-2000:]
            raise LabError(f"OpenVPN tunnel did not come up in {timeout_s} s:\n{log}")
        yield dev
    finally:
        for pid_file in pids.values():
            if pid_file.exists():
                sh("kill", pid_file.read_text().strip(), check=False)
        time.sleep(0.2)


def stop_home_end(workdir: Path) -> None:
    """Drop the tunnel at home, as when the VPN client disconnects (waits until it is gone)."""
    pid = (workdir / "home.pid").read_text().strip()  # OpenVPN removes the file on exit
    sh("kill", pid, check=False)
    for _ in range(50):
        if sh("kill", "-0", pid, check=False).returncode != 0:
            return
        time.sleep(0.1)
    raise LabError(f"OpenVPN (pid {pid}) did not stop")
