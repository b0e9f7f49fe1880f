"""Bufferbloat: how much a loaded line adds to the round-trip time, in ms.

A fact about the reading only; its letter grade (the public bufferbloat tests' scale) is a
judgement and lives in ``agent_kit.evaluate.bandwidth``.
"""

from __future__ import annotations


def latency_increase_ms(idle_rtt_ms: float, loaded_rtt_ms: float) -> float:
    """RTT under load minus idle RTT; never negative (a loaded line is not faster)."""
    return max(0.0, loaded_rtt_ms - idle_rtt_ms)
