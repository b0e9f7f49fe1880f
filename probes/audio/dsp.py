"""Audio measurement math: levels, A-weighting, P.56 active speech level, clipping, dropouts, hum.

Pure functions over numpy arrays of samples in the normalised range [-1, 1) (16-bit PCM divided
by 32768), no I/O, no state. numpy only (no scipy: the frozen agent stays lean), vectorised so a
capture is analysed far faster than real time (``bench/audio_analysis.py`` prints the figure).

Conventions
- dBFS: 20 log10(RMS) with full scale 1.0, so a full-scale sine reads -3.01 dBFS (STANDARDS.md).
  Silence is reported as ``LEVEL_FLOOR_DBFS`` instead of minus infinity, so it stays a number
  in JSON; it sits below the -101 dBFS self-noise of 16-bit dither.
- A-weighting: IEC 61672-1 magnitude, applied in the frequency domain per analysis frame
  (zero phase; the exact standard curve, no bilinear-transform warping near Nyquist). The noise
  floor uses Hann-windowed 160 ms frames so low rumble does not leak into higher bins.
- Active speech level: ITU-T P.56 method B (envelope time constant 0.03 s, hangover 0.2 s,
  margin 15.9 dB, thresholds 2^-15 .. 2^-1 of full scale), the procedure of the ITU-T STL
  ``sv56`` voltmeter; the crossing of the margin is solved by linear interpolation in dB rather
  than by sv56's 0.5 dB-tolerance bisection.
- Clipping: runs of at least 6 consecutive full-scale samples (Google testrtc's rule).
- Peaks: the sample peak, and the time spent within 1 dB of full scale (EBU R 128's -1 dBTP
  ceiling): a voice with no headroom left, before it clips.
- Hum: tonal power at 50 or 60 Hz and their harmonics, unweighted (A-weighting would hide it
  by ~27-30 dB, STANDARDS.md).

Voice activity detection (``speech_frames``): the WebRTC VAD through ``webrtcvad-wheels``
(MIT; binary wheels for Linux, Windows and macOS; an 83 KB wheel, a ~0.2 MB extension in the
frozen agent, no dependencies). Chosen over a hand-made energy detector because it classifies
on sub-band spectral features with noise models, so a steady room noise (a fan, traffic) is not
taken for speech the way a plain level threshold takes any loud noise; chosen over neural VADs
(Silero) because those need onnxruntime or torch, tens of MB in the frozen binary. Its limits,
which the callers design around: it adapts within seconds, so loud (> -30 dBFS) steady noise can
be flagged as speech; the noise floor then falls back to the quietest frames and "speech heard"
also asks the P.56 level to stand clear of the noise (``probes.audio.capture``). If the
extension cannot
be loaded the detector falls back to an energy rule (frames 6 dB above the quietest fifth of the
capture), and the reading says which detector ran.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import ArrayLike, NDArray

    FloatArray = NDArray[np.float64]

LEVEL_FLOOR_DBFS = -120.0
FULL_SCALE_SINE_DBFS = -3.0103  # 20 log10(1/sqrt(2))
CLIP_RUN_SAMPLES = 6            # Google testrtc: 6 consecutive full-scale samples
# The largest 16-bit magnitudes; a converter that clips sits at +32767 or -32768.
CLIP_LEVEL = 32767 / 32768

P56_TIME_CONSTANT_S = 0.03
P56_HANGOVER_S = 0.2
P56_MARGIN_DB = 15.9
P56_THRESHOLDS = 15             # c_j = 2^(j-15), j = 0..14: one per bit of a 16-bit word


def power_db(mean_square: float) -> float:
    """10 log10 of a mean square (a power), floored at ``LEVEL_FLOOR_DBFS``."""
    if not mean_square > 0.0 or not math.isfinite(mean_square):
        return LEVEL_FLOOR_DBFS
    return max(LEVEL_FLOOR_DBFS, 10.0 * math.log10(mean_square))


def rms_dbfs(samples: ArrayLike) -> float:
    """RMS level in dBFS (a full-scale sine: -3.01 dBFS)."""
    import numpy as np

    x = np.asarray(samples, dtype=np.float64)
    if x.size == 0:
        return LEVEL_FLOOR_DBFS
    return power_db(float(np.mean(x * x)))


def a_weighting_db(freq_hz: ArrayLike) -> FloatArray:
    """IEC 61672-1 A-weighting in dB at each frequency (0 dB at 1 kHz; -inf at 0 Hz).

    R_A(f) = 12194^2 f^4 / ((f^2 + 20.6^2) sqrt((f^2 + 107.7^2)(f^2 + 737.9^2)) (f^2 + 12194^2)),
    A(f) = 20 log10 R_A(f) + 2.00 dB.
    """
    import numpy as np

    f2 = np.asarray(freq_hz, dtype=np.float64) ** 2
    with np.errstate(divide="ignore"):
        return 20.0 * np.log10(_a_gain(f2)) + 2.0


def _a_gain(f2: FloatArray) -> FloatArray:
    import numpy as np

    num = 12194.0**2 * f2**2
    den = ((f2 + 20.6**2) * np.sqrt((f2 + 107.7**2) * (f2 + 737.9**2)) * (f2 + 12194.0**2))
    return np.asarray(num / den, dtype=np.float64)


def frames(samples: ArrayLike, frame_len: int) -> FloatArray:
    """The whole frames of ``frame_len`` samples as rows (a trailing partial frame is dropped)."""
    import numpy as np

    x = np.asarray(samples, dtype=np.float64)
    n = (x.size // frame_len) * frame_len
    return x[:n].reshape(-1, frame_len)


def block_means(samples: ArrayLike, factor: int) -> FloatArray:
    """The mean of each whole run of ``factor`` samples: a boxcar average taken down by
    ``factor`` (``frames(samples, factor).mean(axis=1)``).

    For factors under 8 the runs are added with strided slices: numpy adds rows that short
    one after the other, in the same order, so the result is the same to the bit, 4-5 times
    faster than a mean along a short axis (48 kHz to 16 kHz: 0.4 ms instead of 1.8 ms for
    9 s). Longer runs take numpy's mean (pairwise sums: another order)."""
    import numpy as np

    x = np.asarray(samples, dtype=np.float64)
    if factor >= 8:
        return np.asarray(frames(x, factor).mean(axis=1), dtype=np.float64)
    n = x.size // factor
    total = x[0:n * factor:factor].copy()
    for offset in range(1, factor):
        total += x[offset:n * factor:factor]
    return np.asarray(total / factor, dtype=np.float64)


def frame_mean_squares(samples: ArrayLike, frame_len: int) -> FloatArray:
    """Mean square (power) of each whole frame."""
    import numpy as np

    f = frames(samples, frame_len)
    return np.asarray(np.einsum("ij,ij->i", f, f) / frame_len, dtype=np.float64)


def a_weighted_frame_mean_squares(samples: ArrayLike, sample_rate: float, frame_len: int,
                                  *, hann: bool = False) -> FloatArray:
    """Power of each frame after IEC 61672 A-weighting, by Parseval on the frame's spectrum.

    Each bin's power is scaled by |R_A(f)|^2 (10^(A(f)/10)). With the plain (rectangular)
    frame this is exact for components on bins (multiples of sample_rate / frame_len: 50 Hz for
    20 ms frames) and for broadband noise, but a strong component below the first bins leaks
    into bins weighted far higher (a 30 Hz rumble reads ~25 dB too loud in 20 ms frames). With
    ``hann`` the frame is Hann-windowed (power normalised by the window's mean square), which
    confines that leakage: with 160 ms frames a 30 Hz tone is within 0.6 dB and brown noise
    within 0.1 dB of a time-domain A-weighting filter.
    """
    import numpy as np

    f = frames(samples, frame_len)
    if f.shape[0] == 0:
        return np.zeros(0)
    if hann:
        window = np.hanning(frame_len)
        spec = np.fft.rfft(f * window, axis=1)
        norm = frame_len * float(np.sum(window**2))
    else:
        spec = np.fft.rfft(f, axis=1)
        norm = float(frame_len * frame_len)
    power = spec.real**2 + spec.imag**2
    freqs = np.asarray(np.fft.rfftfreq(frame_len, 1.0 / sample_rate), dtype=np.float64)
    weight = (_a_gain(freqs**2) * 10 ** (2.0 / 20.0)) ** 2
    # One-sided spectrum: bins other than DC and Nyquist stand for two (Parseval).
    weight[1:] *= 2.0
    if frame_len % 2 == 0:
        weight[-1] /= 2.0
    return np.asarray(power @ weight / norm, dtype=np.float64)


def a_weighted_dbfs(samples: ArrayLike, sample_rate: float, frame_len: int = 960) -> float:
    """A-weighted RMS level in dBFS(A) of a whole signal, frame by frame."""
    import numpy as np

    ms = a_weighted_frame_mean_squares(samples, sample_rate, frame_len)
    return power_db(float(np.mean(ms))) if ms.size else LEVEL_FLOOR_DBFS


# ------------------------------------------------------------------ ITU-T P.56 method B

@dataclass(frozen=True)
class ActiveLevel:
    """P.56 result: active speech level, activity factor, and the long-term level."""

    level_dbfs: float        # LEVEL_FLOOR_DBFS when no activity was found
    activity: float          # 0..1: share of the samples counted as active
    long_term_dbfs: float    # plain RMS of the whole signal


@functools.lru_cache(maxsize=4)
def _one_pole_weights(g: float, block: int) -> tuple[FloatArray, FloatArray, FloatArray]:
    """(g^-k, (1-g) g^k, g^(k+1)) for k < ``block``: the same for every capture at one sample
    rate, so computed once (read only)."""
    import numpy as np

    k = np.arange(block, dtype=np.float64)
    grow = np.exp(-k * math.log(g))                   # g^-k
    decay_in = (1.0 - g) * np.exp(k * math.log(g))    # (1-g) g^k
    decay_prev = g * np.exp(k * math.log(g))          # g^(k+1)
    for weights in (grow, decay_in, decay_prev):
        weights.flags.writeable = False
    return grow, decay_in, decay_prev


def _one_pole(x: FloatArray, g: float, stages: int = 1) -> FloatArray:
    """y[n] = g y[n-1] + (1-g) x[n], y[-1] = 0, vectorised; ``stages`` such filters in cascade.

    Within a block y[k] = (1-g) g^k sum_{m<=k} g^-m x[m] + g^(k+1) y_prev; blocks are short
    enough (g^-k <= e^30) that the growing weights stay exact in float64 for x >= 0. A
    cascade runs every stage on one block before the next block (the block stays in the CPU's
    cache): the same operations on the same numbers as one whole pass per stage.
    """
    import numpy as np

    block = max(1, min(x.size, int(30.0 / -math.log(g))))
    out = np.empty_like(x)
    grow, decay_in, decay_prev = _one_pole_weights(g, block)
    acc = np.empty(block)
    prev = [0.0] * stages
    for start in range(0, x.size, block):
        n = min(block, x.size - start)
        y = out[start:start + n]
        source = x[start:start + n]
        for stage in range(stages):
            np.multiply(source, grow[:n], out=acc[:n])
            np.cumsum(acc[:n], out=acc[:n])
            np.multiply(acc[:n], decay_in[:n], out=y)
            if prev[stage]:
                y += decay_prev[:n] * prev[stage]
            prev[stage] = float(y[-1])
            source = y
    return out


def _held_counts(level: NDArray[np.int8], hangover: int, thresholds: int) -> list[int]:
    """For each threshold j: samples at level >= j, or within ``hangover`` samples after one.

    Works on the runs of equal level (the envelope is smooth, so they are few): the runs at
    level >= j are merged into intervals, each extended by the hangover up to the next one.
    """
    import numpy as np

    n = level.size
    change = np.flatnonzero(level[1:] != level[:-1]) + 1
    starts = np.concatenate(([0], change))
    ends = np.concatenate((change, [n]))
    values = level[starts]
    counts = []
    for j in range(thresholds):
        above = values >= j
        if not above.any():
            counts.append(0)
            continue
        # merge neighbouring segments that are both above: keep run starts and run ends
        prev_above = np.concatenate(([False], above[:-1]))
        next_above = np.concatenate((above[1:], [False]))
        run_starts = starts[above & ~prev_above]
        run_ends = ends[above & ~next_above]
        limit = np.concatenate((run_starts[1:], [n]))
        counts.append(int(np.sum(np.minimum(run_ends + hangover, limit) - run_starts)))
    return counts


def active_speech_level(samples: ArrayLike, sample_rate: float) -> ActiveLevel:
    """ITU-T P.56 method B active speech level in dBFS (dBov), with the activity factor.

    Envelope q: two cascaded one-pole smoothers of |x| (time constant 0.03 s). For each
    threshold c_j = 2^(j-15) a sample counts as active when q >= c_j or when one did within the
    last 0.2 s (hangover). A_j = 10 log10(sum x^2 / count_j); the active level is where
    A_j - 20 log10(c_j) falls to the 15.9 dB margin (interpolated between thresholds).
    """
    import numpy as np

    x = np.asarray(samples, dtype=np.float64)
    if x.size == 0:
        return ActiveLevel(LEVEL_FLOOR_DBFS, 0.0, LEVEL_FLOOR_DBFS)
    sq = float(np.dot(x, x))
    long_term = power_db(sq / x.size)
    g = math.exp(-1.0 / (sample_rate * P56_TIME_CONSTANT_S))
    q = _one_pole(np.abs(x), g, stages=2)
    hangover = int(math.floor(P56_HANGOVER_S * sample_rate + 0.5))
    # Highest threshold index reached: q >= 2^(j-15) <=> q's binary exponent >= j - 15.
    # (q >= 0, so the float64 exponent field is (bits >> 52) - 1023; q = 0 maps to -1.)
    # The top 16 bits of a little/big-endian float64 hold sign (0 here) and exponent.
    top = q.view(np.uint16)[3::4] if q.dtype.byteorder in "=<" and np.little_endian \
        else (q.view(np.uint64) >> np.uint64(48)).astype(np.uint16)
    exponent = (top >> 4).astype(np.int16) - (1023 - P56_THRESHOLDS)
    np.clip(exponent, -1, P56_THRESHOLDS - 1, out=exponent)
    counts = _held_counts(exponent.astype(np.int8), hangover, P56_THRESHOLDS)
    thresholds_db = [20.0 * math.log10(2.0 ** (j - P56_THRESHOLDS)) for j in range(P56_THRESHOLDS)]

    def active_db(j: int) -> float:
        return 10.0 * math.log10(sq / counts[j] + 1e-20)

    if counts[0] == 0 or active_db(0) - thresholds_db[0] < P56_MARGIN_DB:
        return ActiveLevel(LEVEL_FLOOR_DBFS, 0.0, long_term)
    asl: float | None = None
    for j in range(1, P56_THRESHOLDS):
        if counts[j] == 0:  # counts only fall with j: no crossing (sv56 reports silence)
            break
        delta = active_db(j) - thresholds_db[j]
        if delta <= P56_MARGIN_DB:
            prev = active_db(j - 1) - thresholds_db[j - 1]
            # A_j - C_j falls from prev (> M) to delta (<= M) across one threshold step.
            t = (prev - P56_MARGIN_DB) / (prev - delta)
            asl = active_db(j - 1) + t * (active_db(j) - active_db(j - 1))
            break
    if asl is None:
        return ActiveLevel(LEVEL_FLOOR_DBFS, 0.0, long_term)
    activity = min(1.0, 10 ** ((long_term - asl) / 10.0))
    return ActiveLevel(max(LEVEL_FLOOR_DBFS, asl), activity, long_term)


# ------------------------------------------------------------------ clipping and dropouts

def _index_runs(index: NDArray[np.int64]) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """(starts, lengths) of the runs of consecutive values in a sorted index array."""
    import numpy as np

    if index.size == 0:
        return index, index
    breaks = np.flatnonzero(np.diff(index) != 1) + 1
    first = np.concatenate(([0], breaks))
    last = np.concatenate((breaks, [index.size]))
    return index[first], last - first


@dataclass(frozen=True)
class Clipping:
    runs: int          # runs of >= CLIP_RUN_SAMPLES full-scale samples
    samples: int       # samples inside those runs
    percent: float     # of all samples


def clipping(samples: ArrayLike, min_run: int = CLIP_RUN_SAMPLES) -> Clipping:
    """Runs of consecutive full-scale samples (Google testrtc: 6 or more is clipping)."""
    import numpy as np

    x = np.asarray(samples, dtype=np.float64)
    if x.size == 0:
        return Clipping(0, 0, 0.0)
    at_full_scale = np.flatnonzero((x >= CLIP_LEVEL) | (x <= -CLIP_LEVEL))
    _, lengths = _index_runs(at_full_scale)
    long_runs = lengths[lengths >= min_run]
    clipped = int(long_runs.sum())
    return Clipping(int(long_runs.size), clipped, 100.0 * clipped / x.size)


NEAR_FULL_SCALE_DB = 1.0   # EBU R 128: a maximum permitted (true-)peak level of -1 dBTP
PEAK_BLOCK_MS = 1.0


@dataclass(frozen=True)
class Peaks:
    """How close the signal comes to full scale: its sample peak, and for how long it stays
    within ``NEAR_FULL_SCALE_DB`` of it (the 1 ms blocks whose peak is that high)."""

    peak_dbfs: float        # 20 log10 max |x|; LEVEL_FLOOR_DBFS for silence
    near_full_scale_ms: float


def peaks(samples: ArrayLike, sample_rate: float, *,
          margin_db: float = NEAR_FULL_SCALE_DB) -> Peaks:
    """The sample peak and the time (1 ms blocks) within ``margin_db`` of full scale.

    The headroom figure of a voice: a voice whose peaks keep reaching the last decibel clips
    on the next louder word even when no run of full-scale samples (``clipping``) happened
    yet. Sample peaks, not ITU-R BS.1770 true peaks (no oversampling): they read up to about
    0.5 dB low on speech at 48 kHz, so the rule errs lenient.
    """
    import numpy as np

    x = np.abs(np.asarray(samples, dtype=np.float64))
    if x.size == 0 or not np.any(x):
        return Peaks(LEVEL_FLOOR_DBFS, 0.0)
    peak_db = max(LEVEL_FLOOR_DBFS, 20.0 * math.log10(float(x.max())))
    block = max(1, int(round(sample_rate * PEAK_BLOCK_MS / 1000.0)))
    n = x.size // block
    block_peaks = x[: n * block].reshape(n, block).max(axis=1) if n else x[:0]
    near = int(np.count_nonzero(block_peaks >= 10.0 ** (-margin_db / 20.0)))
    return Peaks(peak_db, near * block * 1000.0 / sample_rate)


@dataclass(frozen=True)
class Dropout:
    start_s: float
    duration_ms: float


def digital_silence_gaps(samples: ArrayLike, sample_rate: float, *, min_ms: float = 5.0,
                         edge_ms: float = 10.0, merge_ms: float = 20.0) -> tuple[Dropout, ...]:
    """Mid-stream gaps: runs of exact digital zero, >= ``min_ms`` long, with signal on both sides.

    A live microphone never outputs exact zeros for milliseconds: its own noise dithers the
    converter. A run of zeros between two stretches of signal is samples lost on the way (a USB
    or driver glitch, a buffer underrun padded with silence). Runs touching the start or the end
    are not counted (streams open and close on silence); gaps closer than ``merge_ms`` count as
    one. A microphone that is silent all along (muted) is reported elsewhere, not as dropouts.
    """
    import numpy as np

    x = np.asarray(samples, dtype=np.float64)
    min_len = max(1, int(min_ms * sample_rate / 1000))
    edge = max(1, int(edge_ms * sample_rate / 1000))
    merge = int(merge_ms * sample_rate / 1000)
    starts, lengths = _index_runs(np.flatnonzero(x == 0.0))
    keep = lengths >= min_len
    starts, lengths = starts[keep], lengths[keep]
    gaps: list[tuple[int, int]] = []
    for s, n in zip(starts.tolist(), lengths.tolist(), strict=True):
        end = s + n
        if s < edge or end + edge > x.size:
            continue
        if not (np.any(x[s - edge:s]) and np.any(x[end:end + edge])):
            continue
        if gaps and s - (gaps[-1][0] + gaps[-1][1]) < merge:
            first = gaps[-1][0]
            gaps[-1] = (first, end - first)
        else:
            gaps.append((s, n))
    return tuple(Dropout(s / sample_rate, 1000.0 * n / sample_rate) for s, n in gaps)


# ------------------------------------------------------------------ mains hum

@dataclass(frozen=True)
class Hum:
    mains_hz: int | None     # 50 or 60 when a hum was found
    level_dbfs: float        # tonal power of the fundamental and harmonics (floor if none)
    harmonics: tuple[int, ...]  # which multiples were tonal


HUM_HARMONICS = 6            # 50..300 Hz or 60..360 Hz
HUM_PROMINENCE_DB = 10.0     # a harmonic counts when it stands this far above its neighbourhood
_HUM_DECIMATE_TO_HZ = 2400.0


def mains_hum(samples: ArrayLike, sample_rate: float, *, segment_s: float = 1.0) -> Hum:
    """Tonal power at 50 or 60 Hz and harmonics (unweighted), from a Welch-averaged spectrum.

    The signal is first averaged down to ~2.4 kHz (a boxcar whose small loss at the harmonics
    is corrected), then Hann-windowed 1 s segments (1 Hz bins) are averaged. Each harmonic's
    power is the power in +-2 bins minus the local background (median of the bins 5..25 Hz
    away); it counts only when it stands ``HUM_PROMINENCE_DB`` above that background, so
    broadband noise and moving speech harmonics are not taken for hum. The family (50 or 60 Hz)
    with the larger total wins.
    """
    import numpy as np

    x = np.asarray(samples, dtype=np.float64)
    factor = max(1, int(sample_rate // _HUM_DECIMATE_TO_HZ))
    fs = sample_rate / factor
    y = frames(x, factor).mean(axis=1) if factor > 1 else x
    seg = int(round(segment_s * fs))
    if y.size < seg or seg < 16:
        return Hum(None, LEVEL_FLOOR_DBFS, ())
    hop = seg // 2
    count = 1 + (y.size - seg) // hop
    idx = np.arange(seg)[None, :] + hop * np.arange(count)[:, None]
    window = np.hanning(seg)
    segs = y[idx]
    segs = segs - segs.mean(axis=1, keepdims=True)
    spec = np.fft.rfft(segs * window, axis=1)
    # One-sided power per bin such that a sine's bins sum to its mean square.
    psd = (spec.real**2 + spec.imag**2).mean(axis=0) * 2.0 / (seg * np.sum(window**2))
    df = fs / seg
    best = Hum(None, LEVEL_FLOOR_DBFS, ())
    best_power = 0.0
    for mains in (50, 60):
        total, found = 0.0, []
        for h in range(1, HUM_HARMONICS + 1):
            f = mains * h
            if f + 25.0 >= fs / 2:
                break
            k = int(round(f / df))
            band = psd[k - 2:k + 3].sum()
            lo = psd[max(1, k - int(25 / df)):k - int(5 / df)]
            hi = psd[k + int(5 / df) + 1:k + int(25 / df) + 1]
            background = float(np.median(np.concatenate((lo, hi))))
            tone = band - 5 * background
            if tone <= 0 or band < 5 * background * 10 ** (HUM_PROMINENCE_DB / 10):
                continue
            boxcar = np.sinc(f / sample_rate * factor) / np.sinc(f / sample_rate) \
                if factor > 1 else 1.0
            total += tone / float(boxcar) ** 2
            found.append(h)
        if found and total > best_power:
            best_power, best = total, Hum(mains, power_db(total), tuple(found))
    return best


# ------------------------------------------------------------------ voice activity

VAD_FRAME_MS = 20
VAD_RATE = 16000
VAD_MODE = 3  # WebRTC's most aggressive mode: the fewest noise frames called speech


def _to_vad_rate(x: FloatArray, sample_rate: float) -> FloatArray:
    import numpy as np

    if sample_rate == VAD_RATE:
        return x
    if sample_rate % VAD_RATE == 0:
        return block_means(x, int(sample_rate // VAD_RATE))
    n = int(x.size * VAD_RATE / sample_rate)
    return np.asarray(np.interp(np.arange(n) * (sample_rate / VAD_RATE), np.arange(x.size), x))


def speech_frames(samples: ArrayLike, sample_rate: float) -> tuple[NDArray[np.bool_], str]:
    """One flag per 20 ms frame: True where the frame holds speech; and the detector's name.

    The WebRTC VAD (mode 3) on the signal brought to 16 kHz; ``"energy"`` fallback when the
    library is missing (see the module docstring).
    """
    import numpy as np

    x = np.asarray(samples, dtype=np.float64)
    frame_len = int(sample_rate * VAD_FRAME_MS / 1000)
    count = x.size // frame_len
    try:
        import webrtcvad  # type: ignore[import-untyped]
    except ImportError:
        power = frame_mean_squares(x, frame_len)
        if power.size == 0:
            return np.zeros(0, dtype=bool), "energy"
        floor = float(np.mean(np.sort(power)[: max(1, power.size // 5)]))
        return power > 4.0 * floor + 1e-12, "energy"
    y = _to_vad_rate(x, sample_rate)
    pcm = (np.clip(y, -1.0, CLIP_LEVEL) * 32768.0).astype("<i2").tobytes()
    step = VAD_RATE * VAD_FRAME_MS // 1000
    vad = webrtcvad.Vad(VAD_MODE)
    flags = [vad.is_speech(pcm[2 * i * step:2 * (i + 1) * step], VAD_RATE)
             for i in range(min(count, len(pcm) // (2 * step)))]
    out = np.zeros(count, dtype=bool)
    out[: len(flags)] = flags
    return out, "webrtcvad"
