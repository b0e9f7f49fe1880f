"""The steady-window estimator: where in a direction's byte-count samples the rate is read. Pure.

The warm-up (until the rate stops rising, and past the refill of any early loss) is excluded; the
rate is the least-squares slope of the byte count over the fastest steady window, which stops
as soon as it is steady and as fast as the fastest half second seen (``steady_window``), so a
steady line is done in about 1.5-2 s per direction and the whole phase stays within
``max_duration_s`` (8 s by default). The samples come from the byte counter of
``probes.bandwidth.streams``, every 100 ms: on Linux what the kernel saw cross the line, so a
loss makes no hole-and-refill in them; elsewhere what the application read or sent.
"""

from __future__ import annotations

from dataclasses import dataclass

MIN_WARMUP_S = 0.4            # never trust the first 0.4 s (connection set-up, slow start)
MIN_MEASURE_S = 1.0           # shortest measured window after warm-up ...
MIN_MEASURE_BYTES = 768 * 1024  # ... and it holds at least this much (1.3 s at 5 Mbit/s)
STEADY_TOLERANCE = 0.04       # the two halves of the window agree within 4 %: steady
LINE_MIN_MEASURE_BYTES = 96 * 1024  # ... or this much when the kernel counts arrivals
PEAK_S = 0.5                 # the early stop compares the window with the fastest 0.5 s
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


def _peak_rate(samples: list[tuple[float, int]], first: int, last: int) -> float:
    """The fastest least-squares slope over any PEAK_S of samples first..last (bytes/s)."""
    width = max(2, round(PEAK_S / max(1e-9, (samples[last][0] - samples[first][0])
                                      / max(1, last - first))))
    rates = [_slope(samples, i, i + width)[0] for i in range(first, last - width + 1)]
    return max(rates, default=0.0)


def steady_window(samples: list[tuple[float, int]], *, done: bool,
                  min_warmup_s: float = MIN_WARMUP_S, min_measure_s: float = MIN_MEASURE_S,
                  tolerance: float = STEADY_TOLERANCE,
                  counted_when_sent: bool = False, counted_at_line: bool = False,
                  min_measure_bytes: int = MIN_MEASURE_BYTES) -> _Window | None:
    """The measured window: after warm-up, at least ``min_measure_s`` long, and steady.

    ``samples`` are (seconds since the load started, bytes so far), every 100 ms. Warm-up (TCP
    slow start, and the loss recovery right after it, whose holes and refills make the byte
    count jump) is excluded: the window may start no earlier than ``min_warmup_s`` and no
    earlier than the rate stops rising (the last 0.3 s within 10 % of the 0.3 s before), and
    after the last spike (a refilled hole: bytes that arrived earlier, released at once); later
    starts are tried in 0.2 s steps. A window is at least ``min_measure_s`` long and holds
    ``min_measure_bytes`` at the line's rate. Steady: the slope's standard error is within
    ``tolerance / 2`` of it and the two halves' slopes agree within ``tolerance * 1.5``; the
    fastest steady window is the reading, and before time is up only once it is within
    ``tolerance`` of the fastest ``PEAK_S`` after warm-up (the machine may have slowed a stretch;
    the line does not speed up). Returns None while there is no such window yet; with ``done``
    (time is up) and no steady window, a best guess flagged not steady: with
    ``counted_at_line`` (the kernel counted the bytes as they crossed the line, so no stretch
    holds refilled bytes) the fastest window of at least ``min_measure_s``
    (``fastest_window``), else the longest window.
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
    # Counted by the application, a slow line's stalls and refills (TCP holding back what
    # arrived behind a lost segment) weigh more: the window must also hold min_measure_bytes
    # (MIN_MEASURE_BYTES: 1.3 s at 5 Mbit/s, 2 s at 3 Mbit/s). Counted by the kernel as
    # segments arrive, there are no refills, and a shorter minimum is enough.
    if line_rate > 0:
        min_measure_s = max(min_measure_s, min_measure_bytes / line_rate)
    def judge(starts: range) -> list[_Window]:
        windows = []
        for start in starts:
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
            windows.append(_Window(start, last, whole, steady))
        return windows

    candidates = judge(range(first_start, last, 2))
    # Of the steady windows, the fastest: on a line the load fills, what slows a stretch is
    # the measuring machine (a CPU-starved sender or reader), never the line going faster.
    steady = [w for w in candidates if w.steady]
    best = max(steady, key=lambda w: w.rate) if steady else None
    # Before time is up, never stop in such a slow stretch: the window must be within
    # tolerance of the fastest PEAK_S of the samples after warm-up.
    if best is not None and not done:
        return best if best.rate >= (1 - tolerance) * _peak_rate(samples, first_start,
                                                                  last) else None
    if not done:
        return None
    if counted_at_line:
        # Time is up. Counted as the bytes crossed the line, no stretch runs ahead of it (no
        # refill: windows start after the last spike; no buffer stuffing), so a stretch slower
        # than the rest is the measuring machine starved of CPU, not the line: the fastest
        # window is the reading, unless the steady one is within tolerance of it. (On a
        # loaded 2-core lab machine the longest window read 81.7 on a 100 Mbit/s line
        # whose fastest seconds carried the line's rate.)
        fastest = fastest_window(samples, first_start, last, min_measure_s)
        if fastest is not None and (best is None
                                    or fastest.rate > best.rate * (1 + tolerance)):
            return fastest
    if best is not None:
        return best
    # Time is up and nothing was steady: the longest window (no stretch of it can be told
    # better than the rest), after the last refill if one is long enough, else from warm-up.
    for window in (*candidates, *judge(range(warm, first_start, 2))):
        return _Window(window.start, window.end, window.rate, False)
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


def fastest_window(samples: list[tuple[float, int]], first: int, last: int,
                   min_measure_s: float) -> _Window | None:
    """The fastest window of samples first..last at least ``min_measure_s`` long, not steady.

    Each start (every sample) is paired with the first end ``min_measure_s`` later: a longer
    window only averages a shorter one with more of the same stretch, so it is never faster
    than the fastest short one by more than noise. The rate is the least-squares slope over
    the window, as for a steady one, so one 100 ms burst barely moves it. None when
    first..last is shorter than ``min_measure_s``.
    """
    best: _Window | None = None
    end = first
    for start in range(first, last):
        end = max(end, start + 2)
        while end <= last and samples[end][0] - samples[start][0] < min_measure_s - 1e-9:
            end += 1
        if end > last:
            break
        rate, _ = _slope(samples, start, end)
        if rate > 0 and (best is None or rate > best.rate):
            best = _Window(start, end, rate, False)
    return best
