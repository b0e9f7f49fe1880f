"""The traceroute (network.hops) on a real routed chain: home -> router -> isp -> center.

Four network namespaces with kernel forwarding (``tests/lab/chain.py``): hop 1 is the home
router (192.168.77.1), hop 2 the ISP (100.64.77.2, CGNAT space), hop 3 the center's reflector
(198.51.100.2). Ground truth for loss is an nftables rule at the far end of one link that drops
every second probe crossing it (a deterministic counter; its own counters are read back); for
delay, a tbf queue kept full on the ISP's line (its latency bound and its drop count). Each
test builds a fresh chain so the routers' ICMP rate limits start full, as for a first run.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agent_kit.core.policy import load_policy
from agent_kit.core.results import Status
from agent_kit.evaluate.hops import evaluate_hops
from probes.network.traceroute import HopReading, TracerouteReading
from tests.lab.chain import (
    CENTER_ADDR,
    HOME_ADDR,
    ISP_ACCESS_ADDR,
    ROUTER_LAN_ADDR,
    Chain,
    chain,
)
from tests.lab.reflector import standalone_reflector

ROOT = Path(__file__).resolve().parents[1]
PORT = 8751
pytestmark = [pytest.mark.lab, pytest.mark.timing]

PROBE = """
import json, sys
from dataclasses import asdict
from probes.network.traceroute import measure_hops
check = sys.argv[2] == "1"
print(json.dumps(asdict(measure_hops(sys.argv[1], 8751, check_privileges=check))))
"""
# root without CAP_NET_RAW (dropped from every set, so the exec'd python cannot regain it)
NO_RAW = ("setpriv", "--inh-caps=-net_raw", "--ambient-caps=-net_raw",
          "--bounding-set=-net_raw")


@pytest.fixture
def lab() -> Iterator[Chain]:
    with chain() as c, standalone_reflector(c.exec_args("center"), CENTER_ADDR, PORT):
        yield c


def trace(c: Chain, *, prefix: tuple[str, ...] = (), check_privileges: bool = True,
          ) -> TracerouteReading:
    out = subprocess.run(c.python("home", "-c", PROBE, CENTER_ADDR,
                                  "1" if check_privileges else "0", prefix=prefix),
                         capture_output=True, text=True, cwd=ROOT, timeout=30)
    assert out.returncode == 0, out.stderr
    data: dict[str, Any] = json.loads(out.stdout)
    hops = tuple(HopReading(**h) for h in data.pop("hops"))
    return TracerouteReading(hops=hops, **data)


def addresses(reading: TracerouteReading) -> list[str | None]:
    return [h.address for h in reading.hops]


def test_clean_chain_names_every_hop_and_passes(lab: Chain, tmp_path: Path) -> None:
    """The real CLI at home: the path unit's traceroute sees router, ISP and reflector."""
    policy = tmp_path / "p.toml"
    policy.write_text("[path]\nduration_s = 0.5\n")
    out = subprocess.run(
        lab.exec_args("home", "env", f"AGENT_KIT_HOME={tmp_path}", sys.executable, "-m",
                      "agent_kit.face.cli", "check", "--only", "network", "--policy", str(policy),
                      "--reflector", f"{CENTER_ADDR}:{PORT}", "--json"),
        capture_output=True, text=True, cwd=ROOT, timeout=60)
    report = json.loads(out.stdout or "{}")
    checks = {c["id"]: c for c in report.get("checks", [])}
    assert "network.hops" in checks, out.stderr
    hops = checks["network.hops"]
    assert hops["status"] == "pass" and hops["value"] == "clean", hops
    rows = hops["details"]["hops"]
    assert [h["address"] for h in rows] == [ROUTER_LAN_ADDR, ISP_ACCESS_ADDR, CENTER_ADDR]
    assert [h["segment"] for h in rows] == ["home", "isp", "beyond"]
    assert [(h["sent"], h["received"]) for h in rows] == [(5, 5)] * 3
    assert hops["details"]["reached"] is True and hops["details"]["duration_s"] > 0
    assert checks["network.loss"]["value"] == 0.0


def test_loss_after_the_isp_is_named_beyond(lab: Chain) -> None:
    lab.drop_every("isp-center", 2, PORT)
    reading = trace(lab)
    seen, dropped = lab.drop_counts("isp-center")
    assert dropped == seen // 2 and dropped > 0              # the ground truth did its part
    assert addresses(reading) == [ROUTER_LAN_ADDR, ISP_ACCESS_ADDR, CENTER_ADDR]
    router, isp, center = reading.hops
    assert router.received == isp.received == 5               # before the lossy link: no loss
    assert 1 <= center.sent - center.received <= dropped      # after it: the dropped probes
    result = evaluate_hops(reading, load_policy())
    assert result.status is Status.WARN and result.value == "beyond", result
    assert result.details["loss_at"] == 3
    assert "beyond your internet provider" in result.message and result.fix


def test_loss_on_the_home_link_is_named_home(lab: Chain) -> None:
    lab.drop_every("home-router", 2, PORT)
    reading = trace(lab)
    seen, dropped = lab.drop_counts("home-router")
    assert dropped == seen // 2 and dropped > 0
    assert addresses(reading) == [ROUTER_LAN_ADDR, ISP_ACCESS_ADDR, CENTER_ADDR]
    assert all(h.received < h.sent for h in reading.hops)     # every hop is behind the link
    result = evaluate_hops(reading, load_policy())
    assert result.status is Status.WARN and result.value == "home", result
    assert result.details["loss_at"] == 1
    assert "home network" in result.message and "Wi-Fi" in (result.fix or "")


def test_a_firewalled_center_still_names_the_routers(lab: Chain) -> None:
    """Every probe to the reflector's port dropped before the center: the routers answer, the
    reflector does not; nothing to blame on a part of the path, and the message says so."""
    lab.drop_every("isp-center", 1, PORT)
    reading = trace(lab)
    seen, dropped = lab.drop_counts("isp-center")
    assert dropped == seen > 0
    assert not reading.reached
    assert addresses(reading) == [ROUTER_LAN_ADDR, ISP_ACCESS_ADDR, None]
    result = evaluate_hops(reading, load_policy())
    assert result.status is Status.PASS and "did not answer" in result.message, result


def test_a_full_queue_on_the_isp_line_is_delay_at_the_isp(lab: Chain) -> None:
    """tbf at 2 Mbit/s holding up to 150 ms on router -> isp, kept full by a 2.4 Mbit/s UDP
    stream from home: every probe past the home router waits in that queue."""
    lab.shape("router-isp", 2, 150)
    server = lab.popen("center", ["iperf3", "-s", "-B", CENTER_ADDR, "-1"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    client = None
    try:
        time.sleep(0.5)
        client = lab.popen("home", ["iperf3", "-u", "-c", CENTER_ADDR, "-b", "2.4M",
                                    "-t", "8"], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
        time.sleep(1.5)                                     # the queue fills
        reading = trace(lab)
        stats = lab.qdisc_stats("router-isp")
    finally:
        for proc in (client, server):
            if proc is not None:
                proc.terminate()
                proc.wait(10)
    assert "dropped" in stats and not re.search(r"dropped 0[,\s]", stats), stats  # it was full
    router, isp, center = reading.hops
    assert router.rtt_median_ms is not None and router.rtt_median_ms < 20
    # a full queue's delay: near tbf's 150 ms bound, not far above it (a busy machine adds a
    # few ms of scheduling to every answer)
    for far in (isp, center):
        assert far.rtt_median_ms is not None and 100 <= far.rtt_median_ms <= 150 + 40, far
    result = evaluate_hops(reading, load_policy())
    assert result.status is Status.WARN and result.value == "isp", result
    assert result.details["delay_at"] == 2, result.details


def test_without_raw_socket_privileges_it_is_unknown_with_the_reason(lab: Chain) -> None:
    """Root with CAP_NET_RAW dropped: the cheap pre-check and scapy's own socket both say so."""
    for check in (True, False):
        reading = trace(lab, prefix=NO_RAW, check_privileges=check)
        assert reading.needs_privileges and not reading.hops, reading
        assert "CAP_NET_RAW" in (reading.problem or "")
        result = evaluate_hops(reading, load_policy())
        assert result.status is Status.UNKNOWN and "raw-socket privileges" in result.message
        assert not result.blocks and result.fix and "CAP_NET_RAW" in result.fix
    # the same process without the drop traces fine: it is the capability, not the lab
    assert addresses(trace(lab)) == [ROUTER_LAN_ADDR, ISP_ACCESS_ADDR, CENTER_ADDR]


def test_the_lab_is_what_it_says() -> None:
    """The chain's addresses: home LAN private, ISP access CGNAT, center outside both."""
    from probes.network.hop_segments import is_public

    assert not is_public(HOME_ADDR) and not is_public(ROUTER_LAN_ADDR)
    assert not is_public(ISP_ACCESS_ADDR) and is_public(CENTER_ADDR)
