"""What reaches the microphone while the agent is silent: steady noise, other voices, or bangs.

Each kind has its own fix ("turn the fan off or away", "close the door, move away from the TV",
"keep away from the kitchen"), so the room capture says which it heard, and how loud each was
(the policy ignores voices too faint to matter). Pure math over a mono capture in [-1, 1)
(numpy, and the WebRTC VAD through ``probes.audio.dsp.speech_frames``); no thresholds of the
policy here, only the method's own constants.

The method, in the order it runs:

1. *Bangs* (a door, dishes, knocking): on 10 ms frames, an onset rises ``ONSET_RISE_DB``
   within 30 ms to ``ONSET_OVER_FLOOR_DB`` over the background (the 20th percentile frame),
   and the sound then decays: 30-80 ms after its peak it is ``EARLY_DECAY_DB`` below it and
   100-250 ms after ``DECAY_DB``. Speech onsets can rise as fast, but a syllable holds its
   level for 100-200 ms; a slam does not. The frames from the onset until the sound is back
   within 3 dB of the background (at most ``EVENT_MAX_S``) are the event's, and are kept out
   of what follows.
2. *Voices* (a TV, family, a colleague): the speech band's envelope (300-3400 Hz, 10 ms
   frames) carries at least ``SYLLABIC_RATIO`` times more modulation power per hertz at
   2-8 Hz (syllables) than at 12-40 Hz, where steady noise's own random fluctuation spreads
   evenly over every modulation frequency (the modulation view of speech of Houtgast &
   Steeneken, as in the STI, IEC 60268-16), over at least ``MIN_VOICE_S`` of voice frames:
   frames the WebRTC VAD calls speech or whose speech band stands 3 dB over its background,
   outside the bangs. The VAD alone would not do: in its aggressive mode it misses far voices
   (a -45 dBFS babble: 3-16 % of the frames) and calls a loud fan's rumble speech (60 %).
   Their level is the voice frames' power minus the background's (dBFS, unweighted).
3. *Steady noise* (a fan, traffic, a computer): the background itself, A-weighted like
   ``audio.noise`` (Hann-windowed 160 ms frames, the quietest ``FLOOR_SHARE`` of them), with
   its stationarity (the spread of 100 ms levels) and spectral flatness (a hiss near 1, a hum
   near 0) as details.

What it needs (``bench/room_sounds.py``, docs/BENCHMARKS.md): 1.5-3 s of the agent's silence;
in a quiet room, babble down to -65 dBFS in 2 s; under a fan, voices at least as loud as the
fan. Fainter voices go unnoticed, as they mostly do for the caller.

Privacy: the samples are only read; nothing is stored, written or logged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

ENVELOPE_MS = 10             # envelope frame: 100 per second, modulation up to 50 Hz
ONSET_RISE_DB = 15.0         # a bang rises this much ...
ONSET_WITHIN_FRAMES = 3      # ... within 30 ms
ONSET_OVER_FLOOR_DB = 20.0   # to this far over the background
DECAY_DB = 12.0              # and 100-250 ms after its peak it is this far below it,
EARLY_DECAY_DB = 5.0         # already this far 30-80 ms after it (a syllable holds its level)
EVENT_MAX_S = 0.5            # an event's frames: until it is back within 3 dB of the background
VOICE_OVER_FLOOR_DB = 3.0    # VAD frames at least this far over the background count
SYLLABIC_BAND_HZ = (2.0, 8.0)
FLUCTUATION_BAND_HZ = (12.0, 40.0)
SYLLABIC_RATIO = 6.0         # modulation density at 2-8 Hz over that at 12-40 Hz for speech
MIN_VOICE_S = 0.75           # voice time needed to call it voices (bench/room_sounds.py)
FLOOR_SHARE = 0.3            # the quietest 30 % of the frames make the background
MIN_ANALYSIS_S = 1.0         # less than this: nothing is said about the room


@dataclass(frozen=True)
class RoomSounds:
    """What the room sent to the microphone in ``seconds`` of the agent's silence.

    ``voices``: speech with syllabic rhythm was heard (``voices_dbfs`` its level over the
    background, ``voice_s`` how long); ``impulses``: sudden loud sounds that decayed (bangs),
    ``impulse_peak_dbfs`` the loudest 10 ms; ``floor_dbfs_a``: the steady background,
    A-weighted (``floor_dbfs`` unweighted). None where the kind was not heard.
    """

    seconds: float
    floor_dbfs: float
    floor_dbfs_a: float
    spread_db: float             # interquartile range of the background's 100 ms levels
    flatness: float              # spectral flatness of the background, 0 (tonal) .. 1 (white)
    voices: bool
    voice_s: float
    voices_dbfs: float | None
    syllabic_ratio: float        # modulation density 2-8 Hz / 12-40 Hz of the speech band
    impulses: int
    impulse_peak_dbfs: float | None
    vad: str


def analyze_room(samples: NDArray[np.float64], sample_rate: int, *,
                 speech: tuple[NDArray[np.bool_], str] | None = None) -> RoomSounds | None:
    """The room's sounds in ``samples`` (floats in [-1, 1)); None when under a second long.

    ``speech``: the VAD's 20 ms flags of these samples and the detector's name, when the
    caller already has them (``probes.audio.capture``); else the VAD runs here."""
    import numpy as np

    from probes.audio import dsp as dsp

    x = np.asarray(samples, dtype=np.float64).ravel()
    if x.size < MIN_ANALYSIS_S * sample_rate:
        return None
    env_len = sample_rate * ENVELOPE_MS // 1000
    power = dsp.frame_mean_squares(x, env_len)
    level = 10.0 * np.log10(power + 1e-14)
    floor_level = float(np.percentile(level, 20))

    in_event, peaks = _impulse_events(level, floor_level)

    # voices: the VAD's 20 ms frames, mapped onto the 10 ms envelope frames
    speech20, vad_name = speech if speech is not None else dsp.speech_frames(x, sample_rate)
    per = dsp.VAD_FRAME_MS // ENVELOPE_MS
    flags = np.repeat(speech20, per)[: power.size]
    flags = np.concatenate((flags, np.zeros(power.size - flags.size, dtype=bool)))
    background = ~in_event & ~flags
    if background.sum() < 10:
        background = ~in_event
    order = np.sort(power[background]) if background.any() else np.sort(power)
    floor_power = float(order[: max(1, int(order.size * FLOOR_SHARE))].mean())
    spectra, freqs = _band_spectra(x, sample_rate, env_len)
    ratio, band_power = _syllabic_ratio(spectra, freqs, in_event)
    # voice frames: the VAD's, or the speech band standing 3 dB over its own background (the
    # VAD in its aggressive mode misses far voices, and adapts to speech under a fan)
    over = 10 ** (VOICE_OVER_FLOOR_DB / 10)
    band_floor = float(np.percentile(band_power[~in_event], 20)) if (~in_event).any() else 0.0
    voiced = ((flags | (band_power >= band_floor * over)) & ~in_event
              & (power >= floor_power * over))
    voice_s = float(voiced.sum()) * ENVELOPE_MS / 1000
    voices = voice_s >= MIN_VOICE_S and ratio >= SYLLABIC_RATIO
    voices_dbfs: float | None = None
    if voiced.any():
        excess = float(power[voiced].mean()) - floor_power
        if excess > 0:
            voices_dbfs = dsp.power_db(excess)

    return RoomSounds(
        seconds=x.size / sample_rate,
        floor_dbfs=dsp.power_db(floor_power),
        floor_dbfs_a=_floor_a(x, sample_rate, env_len, power, background),
        spread_db=_spread_db(power, background),
        flatness=_flatness(spectra, freqs, background),
        voices=bool(voices), voice_s=voice_s, voices_dbfs=voices_dbfs if voices else None,
        syllabic_ratio=ratio, impulses=len(peaks),
        impulse_peak_dbfs=max(peaks) if peaks else None, vad=vad_name)


def _impulse_events(level: NDArray[np.float64],
                    floor_level: float) -> tuple[NDArray[np.bool_], list[float]]:
    """(frames inside bangs, each bang's peak 10 ms level in dBFS)."""
    import numpy as np

    n = level.size
    in_event = np.zeros(n, dtype=bool)
    peaks: list[float] = []
    w = ONSET_WITHIN_FRAMES
    if n <= w:
        return in_event, peaks
    prev_min = np.full(n, np.inf)
    for shift in range(1, w + 1):     # the quietest of the w frames before each frame
        prev_min[shift:] = np.minimum(prev_min[shift:], level[:-shift])
    onsets = np.flatnonzero((level - prev_min >= ONSET_RISE_DB)
                            & (level - floor_level >= ONSET_OVER_FLOOR_DB))
    max_frames = int(EVENT_MAX_S * 1000 / ENVELOPE_MS)
    free_from = 0
    for k in onsets.tolist():
        if k < free_from:
            continue
        top = k + int(np.argmax(level[k:k + w]))
        peak = float(level[top])
        tail = level[top + 10:top + 26]      # 100-250 ms after the peak
        if tail.size < 8:                    # too near the end to see it decay: not judged
            break
        early = level[top + 3:top + 8]       # 30-80 ms after the peak
        if float(np.mean(tail)) > peak - DECAY_DB or float(np.mean(early)) > peak - EARLY_DECAY_DB:
            continue                         # held its level: a syllable, not a bang
        end = top
        limit = min(n, top + max_frames)
        while end < limit and level[end] > floor_level + VOICE_OVER_FLOOR_DB:
            end += 1
        in_event[max(0, k - 2):end] = True
        peaks.append(peak)
        free_from = end + 1
    return in_event, peaks


def _band_spectra(x: NDArray[np.float64], sample_rate: int,
                  env_len: int) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Power spectrum of each 10 ms frame at 16 kHz (the speech band needs no
    more; the capture is averaged down first), and the bins' frequencies: one batched FFT
    serves the speech-band envelope and the background's flatness."""
    import numpy as np

    from probes.audio import dsp as dsp

    factor = sample_rate // 16000 if sample_rate % 16000 == 0 else 1
    factor = factor if env_len % factor == 0 else 1
    n = x.size // env_len
    y = dsp.block_means(x[: n * env_len], factor) if factor > 1 else x[: n * env_len]
    frame = env_len // factor
    spec = np.fft.rfft(y.reshape(n, frame), axis=1)
    return spec.real**2 + spec.imag**2, np.fft.rfftfreq(frame, factor / sample_rate)


def _syllabic_ratio(spectra: NDArray[np.float64], freqs: NDArray[np.float64],
                    in_event: NDArray[np.bool_]) -> tuple[float, NDArray[np.float64]]:
    """Modulation power density at 2-8 Hz over that at 12-40 Hz of the 300-3400 Hz envelope,
    and that envelope (power per 10 ms frame).

    Frames inside bangs are replaced by the median envelope, so a bang's own envelope does not
    count as rhythm. Steady noise gives about 1 (its fluctuation is white); speech over 10.
    """
    import numpy as np

    band_power = spectra[:, (freqs >= 300.0) & (freqs <= 3400.0)].sum(axis=1)
    n = band_power.size
    keep = ~in_event[:n]
    if keep.sum() < 50:
        return 0.0, band_power
    env = np.where(keep, band_power, np.median(band_power[keep]))
    env = env - env.mean()
    m_spec = np.abs(np.fft.rfft(env * np.hanning(n))) ** 2
    m_freqs = np.fft.rfftfreq(n, ENVELOPE_MS / 1000)

    def density(lo: float, hi: float) -> float:
        sel = (m_freqs >= lo) & (m_freqs < hi)
        return float(m_spec[sel].mean()) if sel.any() else 0.0

    fluct = density(*FLUCTUATION_BAND_HZ)
    syll = density(*SYLLABIC_BAND_HZ)
    if fluct <= 0.0:
        return (0.0 if syll <= 0.0 else 1e3), band_power
    return min(1e3, syll / fluct), band_power


def _floor_a(x: NDArray[np.float64], sample_rate: int, env_len: int,
             power: NDArray[np.float64], background: NDArray[np.bool_]) -> float:
    """A-weighted background: the quietest ``FLOOR_SHARE`` (by unweighted power) of the 160 ms
    frames made of background frames only (of all 160 ms frames when too few are), each
    Hann-windowed and A-weighted like ``audio.noise``'s floor; only those are transformed."""
    import numpy as np

    from probes.audio import dsp as dsp

    run = 16   # 16 x 10 ms = 160 ms, as audio.noise's floor
    m = min(power.size, background.size) // run
    if m == 0:
        return dsp.power_db(float(dsp.a_weighted_frame_mean_squares(
            x, sample_rate, env_len).mean()))
    whole = background[: m * run].reshape(m, run).all(axis=1)
    candidates = np.flatnonzero(whole) if whole.sum() >= 3 else np.arange(m)
    long_power = power[: m * run].reshape(m, run).sum(axis=1)[candidates]
    chosen = candidates[np.argsort(long_power)[: max(1, int(candidates.size * FLOOR_SHARE))]]
    long_len = env_len * run
    picked = x[: m * long_len].reshape(m, long_len)[np.sort(chosen)].ravel()
    long_a = dsp.a_weighted_frame_mean_squares(picked, sample_rate, long_len, hann=True)
    return dsp.power_db(float(long_a.mean()))


def _spread_db(power: NDArray[np.float64], background: NDArray[np.bool_]) -> float:
    """Interquartile range of the background's 100 ms levels (steady noise: about 1 dB)."""
    import numpy as np

    p = np.where(background, power, np.nan)
    m = p.size // 10
    if m < 4:
        return 0.0
    blocks = p[: m * 10].reshape(m, 10)
    full = ~np.isnan(blocks).any(axis=1)
    if full.sum() < 4:
        return 0.0
    lv = 10.0 * np.log10(blocks[full].mean(axis=1) + 1e-14)
    q75, q25 = np.percentile(lv, [75, 25])
    return float(q75 - q25)


def _flatness(spectra: NDArray[np.float64], freqs: NDArray[np.float64],
              background: NDArray[np.bool_]) -> float:
    """Spectral flatness (geometric / arithmetic mean of the power spectrum) of the background
    frames' average spectrum, 100 Hz - 8 kHz (100 Hz bins)."""
    import numpy as np

    rows = spectra[background[: spectra.shape[0]]]
    if rows.shape[0] < 10:
        rows = spectra
    sel = rows.mean(axis=0)[(freqs >= 100.0) & (freqs <= 8000.0)] + 1e-20
    return float(np.exp(np.mean(np.log(sel))) / np.mean(sel))
