"""G.711 mu-law (ITU-T G.711, 8 kHz) and its packet-loss concealment (G.711 Appendix I), numpy.

The scored test call plays the reference clip through the codec a softphone would use. The
standard library's ``audioop`` (which had ``lin2ulaw``) is deprecated since Python 3.11 and gone
in 3.13, so the codec is written out here:

- ``ulaw_encode`` / ``ulaw_decode``: the segmented mu-law of G.711 (8 segments, the code word
  inverted), bit-exact with sox's (libsox's G.711 from Sun's reference ``g711.c``, the 16-bit
  sample rounded to 14 bits: tested equal for all 65,536 inputs): the 14-bit magnitude is
  biased by 33, its segment is
  the position of its highest set bit, the code carries 4 mantissa bits; decoding returns the
  middle of the step (bias 0x84 on the 16-bit scale).
- ``Concealer``: G.711 Appendix I, "a high quality low-complexity algorithm for packet loss
  concealment with G.711", on 10 ms frames (80 samples): the receiver keeps 48.75 ms of
  history (3.25 x the longest pitch period, 120 samples); at the first lost frame it finds
  the pitch period by normalised cross-correlation (40..120 samples: 66-200 Hz; coarse on the
  history decimated by 2, then refined) and plays the last period again, with a quarter-period
  overlap-add so the join does not click; after 10 ms of loss it repeats the last two periods,
  after 20 ms three (so the repetition does not buzz), attenuating 20 % per 10 ms from the
  second lost frame and going silent after 60 ms; at the first good frame after a loss it
  overlap-adds the continued synthesis into the real signal over 4 ms (plus 4 ms per further
  10 ms lost, at most 10 ms). Processed offline (the whole call at once), so the appendix's
  3.75 ms output delay, which makes room for the first overlap-add, is not needed: the
  overlap-add is done on the samples already written.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

SAMPLE_RATE = 8000
FRAME = 80                  # 10 ms at 8 kHz: the appendix's frame
PITCH_MIN = 40              # 200 Hz
PITCH_MAX = 120             # 66.7 Hz
HISTORY = 3 * PITCH_MAX + PITCH_MAX // 4   # 390 samples
CORR_LEN = 160              # 20 ms correlation window
ATTENUATION_PER_FRAME = 0.2
SILENT_AFTER_FRAMES = 6     # 60 ms
END_OVERLAP_STEP = 32       # 4 ms

_BIAS = 0x84


def ulaw_encode(pcm: np.ndarray) -> np.ndarray:
    """16-bit linear samples (int16 array) -> mu-law code words (uint8), G.711.

    On the 14-bit magnitude G.711 defines mu-law on (the 16-bit sample rounded to 14 bits, as
    sox does; Sun's ``g711.c`` truncates instead, which moves each decision level by one
    16-bit step): clipped to 8159, biased by 33, segment = position of its highest set bit
    above bit 5, 4 mantissa bits, the code inverted (0x7F-masked for negative samples)."""
    import numpy as np

    v = (pcm.astype(np.int32) + 2) >> 2   # to 14 bits, rounded (as sox does)
    negative = v < 0
    magnitude = np.minimum(np.where(negative, -v, v), 8159) + 33
    segment = np.maximum(np.floor(np.log2(magnitude)).astype(np.int32) - 5, 0)
    mantissa = (magnitude >> (np.minimum(segment, 7) + 1)) & 0x0F
    code = np.where(segment > 7, 0x7F, (np.minimum(segment, 7) << 4) | mantissa)  # saturated
    mask = np.where(negative, 0x7F, 0xFF)
    return (code ^ mask).astype(np.uint8)


def ulaw_decode(code: np.ndarray) -> np.ndarray:
    """mu-law code words (uint8) -> 16-bit linear samples (int16), G.711."""
    import numpy as np

    u = (~code.astype(np.int32)) & 0xFF
    sign = u & 0x80
    segment = (u >> 4) & 0x07
    mantissa = u & 0x0F
    magnitude = (((mantissa << 3) + _BIAS) << segment) - _BIAS
    return np.where(sign != 0, -magnitude, magnitude).astype(np.int16)


def _pitch(history: np.ndarray) -> int:
    """The pitch period (samples) of the end of ``history`` (G.711 Appendix I: normalised
    cross-correlation of the last 20 ms with earlier stretches; coarse search on every second
    sample, then refined around the best lag)."""
    import numpy as np

    end = len(history)
    target = history[end - CORR_LEN:]

    def score(lag: int, step: int) -> float:
        seg = history[end - CORR_LEN - lag:end - lag]
        energy = float(np.dot(seg[::step], seg[::step]))
        if energy <= 0.0:
            return 0.0
        return float(np.dot(target[::step], seg[::step])) / np.sqrt(energy)

    best = max(range(PITCH_MIN, PITCH_MAX + 1, 2), key=lambda lag: score(lag, 2))
    low, high = max(PITCH_MIN, best - 1), min(PITCH_MAX, best + 1)
    return max(range(low, high + 1), key=lambda lag: score(lag, 1))


class Concealer:
    """Plays decoded 10 ms frames, making up the lost ones (G.711 Appendix I, offline)."""

    def __init__(self) -> None:
        import numpy as np

        self._np = np
        self._out: list[np.ndarray] = []
        self._history = np.zeros(HISTORY, dtype=np.float64)
        self._lost = 0            # consecutive lost frames so far
        self._pitch = PITCH_MIN
        self._saved = self._history  # the history when the loss began (the appendix's pitchbuf)
        self._buffer = np.zeros(0)   # the pitch buffer being repeated (1..3 periods)
        self._offset = 0             # where the repetition is in the buffer
        self._gain = 1.0

    def good(self, frame: np.ndarray) -> None:
        """A frame that arrived in time (80 samples, float)."""
        np = self._np
        frame = frame.astype(np.float64)
        if self._lost:
            # overlap-add the continued synthesis (silence after 60 ms) into the start of the
            # real signal: 4 ms, plus 4 ms per further 10 ms lost, at most one frame
            length = min(FRAME, END_OVERLAP_STEP * self._lost)
            tail = self._synthesise(length, attenuate=True) \
                if self._lost <= SILENT_AFTER_FRAMES else np.zeros(length)
            ramp = np.arange(1, length + 1) / (length + 1)
            frame = frame.copy()
            frame[:length] = tail * (1 - ramp) + frame[:length] * ramp
            self._lost = 0
        self._emit(frame)

    def lost(self) -> None:
        """A frame that did not arrive (or came too late to be played)."""
        np = self._np
        if self._lost == 0:
            self._start()
        elif self._lost in (1, 2):
            self._widen(self._lost + 1)
        self._lost += 1
        if self._lost > SILENT_AFTER_FRAMES:
            self._emit(np.zeros(FRAME))
            return
        self._emit(self._synthesise(FRAME, attenuate=self._lost > 1))

    def _start(self) -> None:
        """The first lost frame: find the pitch, smooth the last quarter period, start
        repeating the last period."""
        np = self._np
        h = self._saved = self._history.copy()
        self._pitch = _pitch(h)
        quarter = self._pitch // 4
        self._buffer = h[HISTORY - self._pitch:].copy()
        self._offset = 0
        self._gain = 1.0
        if quarter and self._out:
            # the last quarter period played overlap-added with the quarter period before the
            # repeated one, so the repetition joins smoothly (done on what was already played)
            ramp = np.arange(1, quarter + 1) / (quarter + 1)
            before = h[HISTORY - self._pitch - quarter:HISTORY - self._pitch]
            last = self._out[-1]
            joined = last[FRAME - quarter:] * (1 - ramp) + before * ramp
            self._out[-1] = np.concatenate([last[:FRAME - quarter], joined])
            self._buffer[-quarter:] = joined

    def _widen(self, periods: int) -> None:
        """After 10 and 20 ms of loss: repeat the last 2, then 3 pitch periods."""
        np = self._np
        span = periods * self._pitch          # at most 3 x 120 + 30 = HISTORY with the quarter
        self._buffer = self._saved[HISTORY - span:].copy()
        quarter = self._pitch // 4
        if quarter:   # the loop point joined smoothly, as at the start
            ramp = np.arange(1, quarter + 1) / (quarter + 1)
            before = self._saved[HISTORY - span - quarter:HISTORY - span]
            self._buffer[-quarter:] = self._buffer[-quarter:] * (1 - ramp) + before * ramp
        # keep the phase: the same point within a period, in the oldest period now repeated
        self._offset %= self._pitch

    def _synthesise(self, count: int, attenuate: bool) -> np.ndarray:
        np = self._np
        n = len(self._buffer)
        index = (self._offset + np.arange(count)) % n
        out = self._buffer[index].copy()
        self._offset = (self._offset + count) % n
        if attenuate:
            step = ATTENUATION_PER_FRAME / FRAME
            gains = np.maximum(0.0, self._gain - step * np.arange(1, count + 1))
            out *= gains
            self._gain = float(gains[-1]) if count else self._gain
        return out

    def _emit(self, frame: np.ndarray) -> None:
        np = self._np
        self._out.append(frame)
        # what was played, made up or not, is the history the next loss continues from
        self._history = np.concatenate([self._history[FRAME:], frame])

    def output(self) -> np.ndarray:
        """Everything played so far (float samples at 8 kHz)."""
        np = self._np
        return np.concatenate(self._out) if self._out else np.zeros(0)
