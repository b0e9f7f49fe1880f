"""The steady-window estimator: where in a direction's byte-count samples the rate is read. Pure.

The warm-up (until the rate stops rising, and past the refill of any early loss) is excluded; the
rate is the least-squares slope of the byte count over a window that stops as soon as it is
steady (``steady_window``), so a steady line is done in about 1.5-2 s per direction and the whole
phase stays within ``max_duration_s`` (8 s by default). The samples come from the byte counter
of ``probes.bandwidth.streams``, every 100 ms.
"""

from __future__ import annotations

from dataclasses import dataclass

MIN_WARMUP_S = 0.4            # never trust the first 0.4 s (connection set-up, slow start)
MIN_MEASURE_S = 1.0           # shortest measured window after warm-up ...
MIN_MEASURE_BYTES = 768 * 1024  # ... and it holds at least this much (1.3 s at 5 Mbit/s)
STEADY_TOLERANCE = 0.04       # the two halves of the window agree within 4 %: steady
SPIKE_RATIO = 0.4            # a 100 ms sample 40 % above the median ...
SPIKE_MIN_BYTES = 64 * 1024  # ... and 64 KiB above it is a refilled hole, not noise


@dataclass(frozen=True)
class _Window:
    start: int            # sample index where the measured window starts (warm-up before it)
    end: int              # sample index where it ends
    rate: float           # bytes per second: least-squares slope of the byte count
    steady: bool


def _slope(samples: list[tuple[float, int]], i: int, j: int) -> tuple[float, float]:
    """Least-squares slope (bytes/s) of the byte count over samples i..j and its standard error.

    The slope uses every sample, so the burstiness of a single 100 ms sample barely moves it,
    unlike bytes/time between two end points.
    """
    pts = samples[i:j + 1]
    n = len(pts)
    mt = sum(t for t, _ in pts) / n
    mb = sum(b for _, b in pts) / n
    sxx = sum((t - mt) ** 2 for t, _ in pts)
    if n < 3 or sxx <= 0:
        return 0.0, float("inf")
    slope = sum((t - mt) * (b - mb) for t, b in pts) / sxx
    resid = sum((b - mb - slope * (t - mt)) ** 2 for t, b in pts)
    return slope, (resid / (n - 2) / sxx) ** 0.5


def steady_window(samples: list[tuple[float, int]], *, done: bool,
                  min_warmup_s: float = MIN_WARMUP_S, min_measure_s: float = MIN_MEASURE_S,
                  tolerance: float = STEADY_TOLERANCE,
                  counted_when_sent: bool = False) -> _Window | None:
    """The measured window: after warm-up, at least ``min_measure_s`` long, and steady.

    ``samples`` are (seconds since the load started, bytes so far), every 100 ms. Warm-up (TCP
    slow start, and the loss recovery right after it, whose holes and refills make the byte
    count jump) is excluded: the window may start no earlier than ``min_warmup_s`` and no
    earlier than the rate stops rising (the last 0.3 s within 10 % of the 0.3 s before), and
    after the last spike (a refilled hole: bytes that arrived earlier, released at once); later
    starts are tried in 0.2 s steps and the steadiest window wins (least relative standard error
    of the slope plus disagreement of its halves). Steady: the slope's standard error is within
    ``tolerance / 2`` of it and the two halves' slopes agree within ``tolerance * 1.5``.
    Returns None while no window is steady yet; with ``done`` (time is up) the steadiest window
    found, flagged not steady.
    """
    last = len(samples) - 1
    times = [t for t, _ in samples]
    if last < 3:
        return None

    def index_at(t: float) -> int:
        return max((i for i, ti in enumerate(times) if ti <= t + 1e-9), default=0)

    def rate(i: int, j: int) -> float:
        return (samples[j][1] - samples[i][1]) / max(1e-9, times[j] - times[i])

    warm = None
    for k in range(1, last + 1):
        if times[k] < min_warmup_s:
            continue
        a, b = index_at(times[k] - 0.3), index_at(times[k] - 0.6)
        if a == k or b == a:
            continue
        recent = rate(a, k)
        if recent > 0 and recent <= 1.10 * rate(b, a):
            warm = k
            break
    if warm is None:
        if not done:
            return None
        warm = index_at(min_warmup_s)
    # A hole refilled (a lost segment finally retransmitted) releases at once bytes that
    # arrived earlier: a window must start after the last such spike, or it counts them twice.
    deltas = sorted(samples[k][1] - samples[k - 1][1] for k in range(warm + 1, last + 1))
    typical = deltas[len(deltas) // 2] if deltas else 0
    first_start = warm
    for k in range(warm + 1, last + 1):
        excess = samples[k][1] - samples[k - 1][1] - typical
        if excess > max(SPIKE_RATIO * typical, SPIKE_MIN_BYTES):
            first_start = k
    # An upload counted as bytes are handed to the socket (where the OS does not report acked
    # bytes) runs ahead of the line: the first moments stuff the socket
    # buffers, the qdisc and the initial congestion windows, faster than the line carries them.
    # No window starts before the line could have carried what was counted in the first 0.2 s.
    backlog = samples[index_at(0.2)][1] if counted_when_sent else 0
    line_rate = rate(warm, last)
    if line_rate > 0 and backlog / line_rate > times[first_start]:
        first_start = max(first_start, min(last, index_at(backlog / line_rate) + 1))
    # A slow line carries few packets in a second: TCP's stalls and refills then weigh more,
    # so the window must also hold MIN_MEASURE_BYTES (1.3 s at 5 Mbit/s, 2 s at 3 Mbit/s).
    if line_rate > 0:
        min_measure_s = max(min_measure_s, MIN_MEASURE_BYTES / line_rate)
    best: tuple[tuple[int, float], _Window] | None = None
    for start in [*range(first_start, last, 2), *(range(warm, first_start, 2) if done else ())]:
        if times[last] - times[start] < min_measure_s - 1e-9:
            break
        whole, se = _slope(samples, start, last)
        if whole <= 0:
            continue
        mid = index_at((times[start] + times[last]) / 2)
        first, _ = _slope(samples, start, mid)
        second, _ = _slope(samples, mid, last)
        spread = abs(first - second) / whole
        steady = se / whole <= tolerance / 2 and spread <= tolerance * 1.5
        score = (0 if steady else 1, se / whole + spread)
        if best is None or score < best[0]:
            best = (score, _Window(start, last, whole, steady))
    if best is not None and (best[1].steady or done):
        return best[1]
    if not done:
        return None
    start = warm
    if last - warm < 2:
        # The rate stopped rising only at the last samples (a short budget on a busy machine):
        # no window is left after that warm-up, so the guess starts at the first sample past
        # the minimum warm-up, leaving at least one interval (a window of one sample has no
        # rate, and would read as nothing measured although data arrived).
        past_warmup = next((i for i, ti in enumerate(times) if ti >= min_warmup_s), last)
        start = min(warm, past_warmup, last - 1)
    whole, _ = _slope(samples, start, last) if last - start >= 2 else (rate(start, last), 0.0)
    return _Window(start, last, whole, False)
