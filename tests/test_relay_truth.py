"""The lab relay's own reference math (``tests/lab/relay.py``), held to the golden values of
docs/standards.md so the truth the path lab tests compare the product with is itself right."""

from __future__ import annotations

from typing import Any

import pytest

from tests.lab.relay import (
    gilbert_burst_ratio,
    mean_abs_difference,
    rfc3550_a8_jitter_ns,
    rfc3550_final_jitter,
    truth,
    worst_window_loss_pct,
)

MS = 1_000_000


def test_rfc3550_j_after_the_golden_transits_in_both_forms() -> None:
    for n, expected in ((2, 0.625), (3, 1.2109), (4, 1.7603)):
        transits = [0.0, 10.0, 0.0, 10.0][:n]
        assert rfc3550_final_jitter(transits) == pytest.approx(expected, abs=1e-4)
        # appendix A.8's integer arithmetic, in nanoseconds: the same J to within a ns
        assert rfc3550_a8_jitter_ns([round(t * MS) for t in transits]) / MS == pytest.approx(
            rfc3550_final_jitter(transits), abs=1e-6)
    assert mean_abs_difference([0.0, 10.0, 0.0, 10.0]) == 10.0


def test_the_last_lost_packet_of_300_is_a_tenth_of_its_window_not_all_of_it() -> None:
    times = [i * 20 * MS for i in range(300)]
    assert worst_window_loss_pct(times, [False] * 299 + [True]) == (10.0, 10)
    assert worst_window_loss_pct(times, [True] * 3 + [False] * 297) == (30.0, 10)
    assert worst_window_loss_pct(times[:5], [False, True, False, False, False]) == (20.0, 5)


def test_burst_ratio_of_random_and_bunched_loss() -> None:
    # every arrival is followed by a loss and every loss by an arrival: p = q = 1, BurstR 0.5
    # (losses spread more evenly than random)
    assert gilbert_burst_ratio([False, True, False, True, False]) == pytest.approx(0.5)
    # one run of 3 losses in 10: p = 1/6, q = 1/3, BurstR = 2
    assert gilbert_burst_ratio([False] * 4 + [True] * 3 + [False] * 3) == pytest.approx(2.0)
    assert gilbert_burst_ratio([False] * 10) == 1.0
    assert gilbert_burst_ratio([False] * 9 + [True]) == 1.0     # never recovered: no q


def _rec(direction: str, seq: int, rx_ms: float, hold_ms: float | None) -> dict[str, Any]:
    rx = round(rx_ms * MS)
    return {"direction": direction, "flow": "192.0.2.1:5000", "index": seq, "rx_ns": rx,
            "tx_ns": None if hold_ms is None else rx + round(hold_ms * MS), "seq": seq,
            "kind": 1 if direction == "up" else 2, "planned_ms": hold_ms}


def test_truth_places_each_drop_on_its_way() -> None:
    """20 packets at 20 ms: the relay dropped seq 3 on the way up and seq 10 and 11 back."""
    records = []
    for seq in range(20):
        up_hold = None if seq == 3 else 5.0
        records.append(_rec("up", seq, seq * 20.0, up_hold))
        if up_hold is not None:
            records.append(_rec("down", seq, seq * 20.0 + 6.0,
                                None if seq in (10, 11) else 5.0))
    path = truth(records)["path"]
    assert (path["sent"], path["returned"], path["dropped_up"], path["dropped_down"]) == (
        20, 17, 1, 2)
    assert path["loss_up_pct"] == 5.0 and path["loss_down_pct"] == pytest.approx(200 / 19)
    assert path["rtt_median_ms"] == 10.0
    assert path["burst_loss_up_pct"] == 10.0 and path["burst_window_up_packets"] == 10
    # the way back's windows hold the 19 packets that reached the reflector
    # (seq 3 never came there): the window from seq 2 holds 9 of them, 2 lost
    assert path["burst_loss_down_pct"] == pytest.approx(200 / 9)
    assert path["burst_window_down_packets"] == 9
    assert path["burst_ratio_up"] == pytest.approx(1 / (1 / 18 + 1))    # p = 1/18, q = 1
    assert path["burst_ratio_down"] == pytest.approx(1 / (1 / 16 + 1 / 2))  # p 1/16, q 1/2
