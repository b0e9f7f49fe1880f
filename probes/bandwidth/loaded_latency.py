"""Latency under load (bufferbloat): the path probe in the background while a direction is loaded.

It is the path probe's RTT to the center's UDP reflector measured while each direction is
loaded, minus the idle RTT measured just before (``probes.network.path``); the increase and its
grade are ``probes.bandwidth.bufferbloat``'s. Idle and loaded are the same statistic, the
``RTT_PERCENTILE``th percentile of the echoes (``rtt_percentile_ms``), so the difference is the
queue's and not the statistic's: a median idle against a 90th percentile loaded would grade a
jittery idle line's spread as bloat.

The load's congestion control is Reno (``probes.bandwidth.streams.LOAD_CONGESTION_CONTROL``),
not the CUBIC the user's own applications use (the default of Windows, macOS and Linux), on
purpose: a test of a few seconds must show the standing queue a long CUBIC upload reaches, and
CUBIC's HyStart may leave slow start early. Measured on the lab emulator
(``bench/loaded_latency_matrix.py``, 50/5 Mbit/s at 20 ms, 300 ms upload queue, four runs each):
CUBIC +292..+296 ms, Reno +221..+297, BBR (this lab's system default) +205..+210, each within
1.5 % of the queue delay the probe's packets had; on the slow lines (2/0.5, 4/1.5 with 100 and
200 ms queues) all three filled the queue. But on a line with ~0 ms base RTT (tbf) CUBIC read
+140 ms for a 300 ms queue (grade C, not D). So Reno stays until the bandwidth lab's lines all
have a real RTT (then CUBIC, the users' own, is the better load).
"""

from __future__ import annotations

import statistics
import threading
from collections.abc import Sequence
from typing import Any

LOADED_REPLY_WAIT_S = 0.6    # echoes may sit in a bloated queue: wait this long for them
RTT_PERCENTILE = 90          # idle and loaded alike (see the module doc and loaded_rtt_ms)
MIN_PERCENTILE_SAMPLES = 10  # below this many echoes, the median stands in for the percentile


def rtt_percentile_ms(rtts: Sequence[float]) -> float | None:
    """The ``RTT_PERCENTILE``th percentile of RTT samples (the median of fewer than
    ``MIN_PERCENTILE_SAMPLES``), or None without samples; the one statistic of idle and loaded
    RTT."""
    if not rtts:
        return None
    if len(rtts) < MIN_PERCENTILE_SAMPLES:
        return statistics.median(rtts)
    return statistics.quantiles(rtts, n=100, method="inclusive")[RTT_PERCENTILE - 1]


def idle_rtt_ms(reading: Any) -> float | None:
    """The idle RTT of a path reading, at the same percentile as the loaded one."""
    return rtt_percentile_ms(list(reading.rtt_ms_samples))


class _LoadedLatency:
    """The path probe (``probes.network.path``) running in the background while one direction
    is loaded."""

    def __init__(self, reflector: tuple[str, int], budget_s: float) -> None:
        self.reflector, self.budget_s = reflector, budget_s
        self.stop = threading.Event()
        self.reading: Any = None
        self.problem: str | None = "not run"
        self.thread = threading.Thread(target=self._run, name="bandwidth-rtt", daemon=True)

    def _run(self) -> None:
        self.reading, self.problem = run_path_probe(self.reflector, self.budget_s, self.stop,
                                                    reply_wait_s=LOADED_REPLY_WAIT_S)

    def __enter__(self) -> _LoadedLatency:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        self.thread.join(timeout=LOADED_REPLY_WAIT_S + 1.0)

    def loaded_rtt_ms(self, skip_s: float) -> tuple[float | None, int]:
        """The ``RTT_PERCENTILE``th percentile RTT of the echoes after the first ``skip_s`` (the
        load's warm-up), and how many echoes it is of.

        Not the median: in a test of a few seconds the load's queue is still building, and each
        loss halves the senders' windows and drains it for a while; a long upload keeps it near
        its peak. The high percentile estimates that standing queue (measured on a 300 ms
        drop-tail queue at 5 Mbit/s: median 186-230 ms, 90th percentile near the 300 ms bound).
        """
        if self.reading is None or not self.reading.rtt_ms_samples:
            return None, 0
        # Echoes lost in the full queue leave no sample, so skip by share of the test's time,
        # never more than half of the samples.
        rtts = list(self.reading.rtt_ms_samples)
        share = min(0.5, skip_s / self.reading.duration_s) if self.reading.duration_s > 0 else 0
        kept = rtts[int(len(rtts) * share):]
        return rtt_percentile_ms(kept), len(kept)


def run_path_probe(reflector: tuple[str, int], duration_s: float,
                   stop: threading.Event | None = None, *,
                   reply_wait_s: float = 0.3) -> tuple[Any, str | None]:
    """The path probe's reading to ``reflector`` (or None) and why it gave no RTT, if so."""
    from probes.network.path import measure_path

    try:
        # RTT only: no per-direction count query after the stream (it would lengthen the
        # bandwidth phase whenever the loaded line drops packets)
        reading = measure_path(reflector[0], reflector[1], duration_s=duration_s, stop=stop,
                               reply_wait_s=reply_wait_s, per_direction=False)
    except Exception as exc:  # noqa: BLE001 - latency under load is optional to the speed test
        return None, f"path probe failed: {type(exc).__name__}: {exc}"
    if reading.rtt_median_ms is None:
        return reading, reading.problem or "no reply from the reflector"
    return reading, None
