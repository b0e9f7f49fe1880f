"""Golden values of the bufferbloat grade (STANDARDS.md, agent_kit.evaluate.bandwidth) and its
properties; the latency increase it grades (probes.bandwidth.bufferbloat)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent_kit.evaluate.bandwidth import GRADES, bufferbloat_grade
from probes.bandwidth.bufferbloat import latency_increase_ms
from probes.bandwidth.loaded_latency import rtt_percentile_ms


@pytest.mark.parametrize(("increase_ms", "grade"), [
    (4.9, "A+"), (5.0, "A"), (30.0, "B"), (60.0, "C"), (200.0, "D"), (400.0, "F"),
])
def test_golden_grades(increase_ms: float, grade: str) -> None:
    assert bufferbloat_grade(increase_ms) == grade


@pytest.mark.parametrize(("increase_ms", "grade"), [
    (0.0, "A+"), (29.99, "A"), (59.99, "B"), (199.99, "C"), (399.99, "D"), (5000.0, "F"),
])
def test_just_below_each_bound(increase_ms: float, grade: str) -> None:
    assert bufferbloat_grade(increase_ms) == grade


def test_nan_has_no_grade() -> None:
    with pytest.raises(ValueError):
        bufferbloat_grade(math.nan)


def test_increase_is_loaded_minus_idle_and_never_negative() -> None:
    assert latency_increase_ms(12.0, 212.5) == pytest.approx(200.5)
    assert latency_increase_ms(12.0, 11.0) == 0.0


@given(st.floats(0, 10_000), st.floats(0, 10_000))
def test_more_added_latency_never_gets_a_better_grade(a: float, b: float) -> None:
    low, high = sorted((a, b))
    assert GRADES.index(bufferbloat_grade(high)) >= GRADES.index(bufferbloat_grade(low))


def test_idle_and_loaded_at_the_same_percentile_count_no_jitter_as_bloat() -> None:
    # a jittery line with no queue: idle and loaded RTTs spread alike (10..50 ms); the same
    # statistic on both gives no increase, where a median idle (30 ms) against a 90th
    # percentile loaded (46 ms) would have graded +16 ms of jitter as bloat
    idle = [10.0 + 40.0 * i / 99 for i in range(100)]
    loaded = list(reversed(idle))
    assert rtt_percentile_ms(idle) == rtt_percentile_ms(loaded) == pytest.approx(46.0, abs=0.1)
    assert latency_increase_ms(rtt_percentile_ms(idle) or 0.0,
                               rtt_percentile_ms(loaded) or 0.0) == 0.0


def test_rtt_percentile_golden_values() -> None:
    assert rtt_percentile_ms([]) is None
    assert rtt_percentile_ms([5.0, 1.0, 3.0]) == 3.0          # fewer than 10: the median
    assert rtt_percentile_ms([float(i) for i in range(1, 11)]) == pytest.approx(9.1)
