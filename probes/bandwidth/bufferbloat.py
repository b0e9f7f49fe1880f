"""Bufferbloat: how much a loaded line adds to the round-trip time, and its letter grade.

The grade scale is the one the public bufferbloat tests use (STANDARDS.md, "Bufferbloat grades
(latency increase under load)"): A+ below +5 ms, A below +30, B below +60, C below +200, D below
+400, F from +400 ms. A boundary value belongs to the worse grade (+5 ms is an A, not an A+).
"""

from __future__ import annotations

# (upper bound in ms, exclusive; grade), best first; anything at or above the last bound is F.
GRADE_BOUNDS_MS: tuple[tuple[float, str], ...] = (
    (5.0, "A+"), (30.0, "A"), (60.0, "B"), (200.0, "C"), (400.0, "D"),
)
GRADES: tuple[str, ...] = (*(g for _, g in GRADE_BOUNDS_MS), "F")


def latency_increase_ms(idle_rtt_ms: float, loaded_rtt_ms: float) -> float:
    """RTT under load minus idle RTT; never negative (a loaded line is not faster)."""
    return max(0.0, loaded_rtt_ms - idle_rtt_ms)


def bufferbloat_grade(increase_ms: float) -> str:
    """Letter grade (A+ .. F) of a latency increase under load, in ms."""
    if increase_ms != increase_ms:  # NaN: no honest grade
        raise ValueError("latency increase is NaN")
    for bound, grade in GRADE_BOUNDS_MS:
        if increase_ms < bound:
            return grade
    return "F"
