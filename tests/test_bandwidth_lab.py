"""Bandwidth and latency under load, end to end, between two network namespaces.

The center namespace serves the real speedtest endpoint and UDP reflector
(``tests/lab/bandwidth_center.py``); the home namespace runs ``agent-kit check --only bandwidth
--center URL --json``, as an agent would. Ground truth is the kernel's tbf rate limiter: tbf on
the center's veth limits the download, on the home veth the upload; its ``latency`` sets the
queue depth, hence how much a full queue adds to the round trip (bufferbloat).

TCP goodput through a tbf of rate R is about 0.956 R (1448 payload bytes per 1514-byte frame):
the tests ask for 10 % of R, as the issue says.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.lab.bandwidth_center import UDP_PORT, serve_bandwidth_center
from tests.lab.netns import NetnsPair, netns_pair

pytestmark = pytest.mark.lab
ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Lab:
    pair: NetnsPair
    url: str

    def shape(self, down_mbit: float, up_mbit: float, *, down_latency_ms: int = 20,
              up_latency_ms: int = 20) -> None:
        # burst 64 kbit: small enough that the rate holds over 100 ms samples
        self.pair.shape(self.pair.center, down_mbit, burst_kbit=64, latency_ms=down_latency_ms)
        self.pair.shape(self.pair.home, up_mbit, burst_kbit=64, latency_ms=up_latency_ms)

    def check(self, *extra: str) -> tuple[int, dict[str, Any]]:
        """``agent-kit check --only bandwidth`` at home; exit code and the checks by id."""
        proc = self.pair.run(self.pair.home, sys.executable, "-m",
                             "agent_kit.face.cli", "check", "--only", "bandwidth", "--center",
                             self.url, "--json", "--lang", "en", *extra,
                             check=False, timeout=60)
        assert proc.returncode in (0, 1), proc.stderr
        report = json.loads(proc.stdout)
        return proc.returncode, {c["id"]: c for c in report["checks"]}


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    with netns_pair() as pair, serve_bandwidth_center(pair) as url:
        yield Lab(pair, url)


@pytest.mark.parametrize(("down", "up"), [(5, 5), (20, 20), (100, 100), (50, 10)],
                         ids=["5", "20", "100", "asymmetric-50-10"])
def test_measured_speed_is_within_10_percent_of_the_tbf_rate(lab: Lab, down: float,
                                                             up: float) -> None:
    lab.shape(down, up)
    _, checks = lab.check()
    got_down, got_up = checks["bandwidth.down"], checks["bandwidth.up"]
    assert got_down["status"] != "unknown", got_down
    assert got_up["status"] != "unknown", got_up
    assert got_down["value"] == pytest.approx(down, rel=0.10), got_down
    assert got_up["value"] == pytest.approx(up, rel=0.10), got_up
    assert got_down["unit"] == got_up["unit"] == "Mbit/s"
    assert got_down["details"]["streams"] == 4
    # A shallow queue adds little latency: no bufferbloat failure, and never more than the queue
    # holds: tbf's limit is 20 ms of the rate plus the 64 kbit burst (33 ms at 5 Mbit/s, 21 ms at
    # 50), so the grade is A or, on the slowest line, B (+30 to +60 ms).
    bloat = checks["bandwidth.bufferbloat"]
    queue_ms = 20 + 64 / min(down, up)
    assert bloat["status"] in ("pass", "warn"), bloat
    assert bloat["value"] <= queue_ms + 5, bloat
    assert bloat["details"]["grade"] in (("A+", "A", "B") if queue_ms >= 30 else ("A+", "A")), bloat


def test_a_line_below_the_policy_minimum_fails_with_a_fix(lab: Lab) -> None:
    # default policy: download fails at <= 5 Mbit/s, upload at <= 2 Mbit/s. A slow line's
    # modem queues more than 20 ms: with a tiny queue, 4 TCP streams lose to retransmissions.
    lab.shape(4, 1.5, down_latency_ms=100, up_latency_ms=100)
    code, checks = lab.check()
    assert code == 1
    for check_id, rate in (("bandwidth.down", 4), ("bandwidth.up", 1.5)):
        result = checks[check_id]
        assert result["status"] == "fail", result
        # within 5 % of TCP's ceiling through tbf (1448 payload bytes per 1514-byte frame).
        # Counted as the application reads, this line's holes and refills (4 streams losing
        # segments to a full queue) once read 3.1: the kernel's count of what arrived has none.
        assert result["value"] == pytest.approx(rate, rel=0.20), result
        assert result["details"]["mbit_s"] == pytest.approx(rate * 1448 / 1514, rel=0.05), result
        assert "internet provider" in result["fix"], result


def test_a_fast_line_passes_and_a_custom_policy_moves_the_bar(lab: Lab, tmp_path: Path) -> None:
    lab.shape(60, 25)
    code, checks = lab.check()
    assert code == 0, checks
    assert checks["bandwidth.down"]["status"] == "pass"
    assert checks["bandwidth.up"]["status"] == "pass"
    policy = tmp_path / "strict.toml"
    policy.write_text('[checks."bandwidth.down"]\nwarn = 200\nfail = 100\n', "utf-8")
    code, checks = lab.check("--policy", str(policy))
    assert code == 1
    assert checks["bandwidth.down"]["status"] == "fail"
    assert checks["bandwidth.down"]["fail"] == 100


def test_bufferbloat_under_a_deep_queue_is_detected_and_graded(lab: Lab) -> None:
    # A 300 ms drop-tail queue on the 5 Mbit/s uplink, as on a home router without SQM: once
    # the upload fills it, every packet waits up to ~313 ms (300 ms + the 64 kbit burst): grade D
    # (+200 to +400 ms). Measured with the Reno load and the 90th percentile: 210-282 ms.
    lab.shape(50, 5, up_latency_ms=300)
    code, checks = lab.check()
    bloat = checks["bandwidth.bufferbloat"]
    assert bloat["status"] == "fail", bloat
    assert code == 1
    assert 200 <= bloat["value"] < 400, bloat
    assert bloat["details"]["grade"] == "D"
    assert bloat["details"]["worst_direction"] == "upload"
    assert "grade D" in bloat["message"]
    assert "SQM" in bloat["fix"]
    # the speed itself is still measured; not to 10 %: when the load's streams overflow the deep
    # queue together, loss recovery can stall the line for a round trip of 300 ms, which a test
    # of a few seconds cannot average out (4.4-4.9 Mbit/s in 17 of 18 runs, 3.2 in one)
    assert checks["bandwidth.up"]["value"] == pytest.approx(5, rel=0.4)


def test_no_reflector_answer_leaves_bufferbloat_unknown_but_measures_speed(lab: Lab) -> None:
    lab.shape(20, 20)
    # a reflector port where nothing listens: the path probe gets no echo
    code, checks = lab.check("--reflector", f"{lab.pair.center_addr}:{UDP_PORT + 7}")
    assert checks["bandwidth.bufferbloat"]["status"] == "unknown"
    assert "reflector" in checks["bandwidth.bufferbloat"]["message"]
    assert checks["bandwidth.down"]["value"] == pytest.approx(20, rel=0.10)


def test_through_the_real_agent_center_serve(tmp_path: Path) -> None:
    """The same check against ``agent-center serve`` itself: /healthz advertises the endpoint
    and the reflector, the endpoint is mounted at /speedtest/."""
    import os
    import subprocess
    import time

    with netns_pair() as pair:
        env = {**os.environ, "AGENT_CENTER_ADMIN_TOKEN": "lab-admin-token-0123456789abcdef"}
        center = pair.popen(pair.center, [sys.executable, "-m", "agent_kit.center.cli", "serve",
                                          "--host", pair.center_addr, "--port", "8750",
                                          "--udp-port", "8751", "--data-dir", str(tmp_path)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env,
                            cwd=str(ROOT))
        try:
            url = f"http://{pair.center_addr}:8750"
            deadline = time.monotonic() + 30
            while True:
                probe = pair.run(pair.home, sys.executable, "-c",
                                 f"import httpx; print(httpx.get('{url}/healthz').text)",
                                 check=False)
                if probe.returncode == 0:
                    break
                assert center.poll() is None, "agent-center serve exited"
                assert time.monotonic() < deadline, probe.stderr
                time.sleep(0.3)
            assert json.loads(probe.stdout)["speedtest_path"] == "/speedtest/"
            lab = Lab(pair, url)
            lab.shape(20, 10)
            _, checks = lab.check()
            assert checks["bandwidth.down"]["value"] == pytest.approx(20, rel=0.10)
            assert checks["bandwidth.up"]["value"] == pytest.approx(10, rel=0.10)
            assert checks["bandwidth.bufferbloat"]["status"] == "pass"
        finally:
            center.terminate()
            try:
                center.communicate(timeout=10)
            except subprocess.TimeoutExpired:
                center.kill()
                center.communicate(timeout=5)
