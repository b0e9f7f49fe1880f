"""Bandwidth on home lines with real round-trip delay, through the lab link emulator.

One emulator for the module (``tests/lab/emulator.py``: home and center namespaces joined by a
router that forwards through TUN devices with a token-bucket rate, one-way delay and a tail-drop
queue per direction); the center namespace serves the real speedtest endpoint and reflector
(``tests/lab/bandwidth_center.py``); home runs ``agent-kit check --only bandwidth --json`` as an
agent does. One line per class (slow, medium, fast: 50 and 100 Mbit/s down) from issue 14's
matrix.

Ground truth is the emulator's per-packet record of the same run: what it delivered per
direction (TCP payload of the endpoint's connections plus the latency probe's packets) while
that direction was loaded. The rate it enforces counts IP bytes, so TCP's ceiling is
rate * 1448 / 1500 (MTU 1500: 52 bytes of IPv4, TCP and timestamp headers per segment).
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.lab.bandwidth_center import HTTP_PORT, UDP_PORT, serve_bandwidth_center
from tests.lab.bufferbloat_lab import wait_until_quiet
from tests.lab.emulator import EmulatedLink, LineSpec, emulated_link
from tests.lab.line_truth import TCP_PAYLOAD_PER_IP_BYTE, delivered_mbit_s

pytestmark = [pytest.mark.lab, pytest.mark.timing]

QUEUE_MS = 50.0         # a home modem's drop-tail queue


@dataclass
class Lines:
    link: EmulatedLink
    url: str

    def set_line(self, down: float, up: float, rtt_ms: float) -> None:
        self.link.emulator.set(
            down=LineSpec(rate_mbit=down, delay_ms=rtt_ms / 2, queue_ms=QUEUE_MS,
                          queue_packets=None),
            up=LineSpec(rate_mbit=up, delay_ms=rtt_ms / 2, queue_ms=QUEUE_MS,
                        queue_packets=None))
        self.link.emulator.clear_record()

    def check(self) -> dict[str, Any]:
        """``agent-kit check --only bandwidth`` at home, on an idle line: the JSON report. (The
        previous check's closed upload sockets still send what they had queued, for seconds
        on a 0.5 Mbit/s line: their packets would share this run's line and its record.)"""
        wait_until_quiet(self.link)
        self.link.emulator.clear_record()
        proc = self.link.run(self.link.home, sys.executable, "-m", "agent_kit.face.cli",
                             "check", "--only", "bandwidth", "--center", self.url, "--json",
                             "--lang", "en", check=False, timeout=60)
        assert proc.returncode in (0, 1), proc.stderr
        report: dict[str, Any] = json.loads(proc.stdout)
        return report

    def delivered_mbit_s(self, rates: dict[str, float]) -> dict[str, float]:
        """What the record says the line delivered to the check, per direction
        (``tests/lab/line_truth.py``)."""
        truth = delivered_mbit_s(self.link.emulator.record(), rates, HTTP_PORT, UDP_PORT)
        for name, value in truth.items():
            assert not math.isnan(value), f"the {name} load was too small to judge"
        return truth


@pytest.fixture(scope="module")
def lines() -> Iterator[Lines]:
    with emulated_link() as link, serve_bandwidth_center(link) as url:
        yield Lines(link, url)


@pytest.mark.parametrize(("down", "up", "rtt_ms"),
                         [(2, 0.5, 40), (12, 4, 20), (50, 10, 15), (100, 20, 10)],
                         ids=["slow-2-0.5-at-40ms", "medium-12-4-at-20ms", "fast-50-10-at-15ms",
                              "fast-100-20-at-10ms"])
def test_speed_is_what_the_line_delivered_and_the_phase_ends(lines: Lines, down: float,
                                                             up: float, rtt_ms: float) -> None:
    lines.set_line(down, up, rtt_ms)
    report = lines.check()
    truth = lines.delivered_mbit_s({"down": down, "up": up})
    checks = {c["id"]: c for c in report["checks"]}
    for check_id, name, rate in (("bandwidth.down", "down", down), ("bandwidth.up", "up", up)):
        got = checks[check_id]
        assert got["status"] != "unknown", got
        value = got["details"]["mbit_s"]
        ceiling = rate * TCP_PAYLOAD_PER_IP_BYTE
        # what the line carried, as the emulator saw it, within 5 %; never above the line's
        # TCP ceiling by more than 2 % (bytes counted twice, or counted before they crossed)
        assert value == pytest.approx(truth[name], rel=0.05), (got, truth)
        assert value <= ceiling * 1.02, (got, ceiling)
        assert got["details"]["counted"] in ("arrived", "acked"), got
    # the phase (handshake, idle RTT, both directions) ends within the policy's 8 s
    phase_s = checks["bandwidth.down"]["details"]["phase_s"]
    assert phase_s <= 8.0, (phase_s, report["duration_s"])
    assert checks["bandwidth.bufferbloat"]["status"] != "unknown", checks["bandwidth.bufferbloat"]
