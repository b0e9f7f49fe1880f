"""Voice bandwidth: how far up the spectrum the path from the microphone carries the voice.

The classes are ITU-T's audio bandwidths (ITU-T P.10/G.100 vocabulary; docs/standards.md):

- narrowband, 300-3400 Hz: the telephone band of G.711/G.712, what an 8 kHz path carries
  (Bluetooth hands-free with CVSD, old adapters, a USB headset that samples at 8 kHz inside);
- wideband, 50-7000 Hz: G.722 "HD voice", what a 16 kHz path carries (Bluetooth hands-free with
  mSBC, good USB headsets in their voice mode);
- super-wideband, 50-14000 Hz (G.722.1 Annex C; a 32 kHz path such as Bluetooth LE Audio's
  LC3-SWB);
- fullband, 20-20000 Hz (G.719; a 48 kHz path).

Method (``measure_voice_band``): the long-term average spectrum of the frames the voice
detector calls speech, against the spectrum of the frames it calls noise, in 250 Hz bands.
Speech's own spectrum falls smoothly with frequency (the long-term average speech spectrum of
Byrne et al. 1994 loses about 20 dB of power density from 2 kHz to 16 kHz), while a path's
sample rate cuts it off: a resampler's or codec's stop band lies 40 dB to more than 100 dB
below the pass band. So a band carries the voice when the speech frames stand clearly above
the noise frames there (``SPEECH_OVER_NOISE_DB``) and the speech in it (the noise's power taken
off) is within ``SPEECH_RANGE_DB`` of the speech in 1-3 kHz, the part of the band every
telephone path carries. The edge is the top of the last band carrying voice, scanning up from
3 kHz; the scan stops at the first stretch of ``MAX_GAP_BANDS`` + 1 bands (500 Hz) that carry
nothing, so a resampler's images beyond the stop band (which sit above a gap) do not count.
Relative measures only: the speech level, the talker's pitch and a steady room noise do not
move the edge; a 48 kHz capture of 8 or 16 kHz audio shows the resampler's roll-off as the
edge (3.4-4 kHz, 7-8 kHz).

When the room's noise is loud enough to hide a voice's high tones (a band where the speech does
not stand above the noise, but the noise is itself within ``NOISE_MASK_DB`` of the speech's
1-3 kHz level, so the path clearly carries sound there), the edge is only a lower bound:
``noise_limited``. A narrowband result is then not a finding about the path.

Limits: the class is a lower bound of what the path carries when the voice or the microphone
has little above a frequency (a fullband path heard through a microphone that rolls off at
12 kHz reads super-wideband); a path that clips (digital gain) makes harmonics above its band;
a resampler that interpolates linearly leaves images only ~10 dB down, which can read as wider
than the path is. Pure math on numpy arrays, no I/O: the samples never leave the caller.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

BandClass = Literal["narrowband", "wideband", "superwideband", "fullband"]

BAND_HZ = 250.0                  # the analysis bands: 5 bins of a 20 ms frame's spectrum
REFERENCE_HZ = (1000.0, 3000.0)  # carried by every telephone path (G.712: 300-3400 Hz)
SPEECH_OVER_NOISE_DB = 6.0       # speech frames over noise frames: the voice is there
SPEECH_RANGE_DB = 40.0           # natural speech at 16 kHz is ~20 dB below its 1-3 kHz density
#                                  (Byrne et al. 1994), a headset's microphone takes up to
#                                  ~15 dB more; stop bands are 40 to > 100 dB down
NOISE_MASK_DB = 20.0             # noise this close to the 1-3 kHz speech can hide 4-7 kHz speech
MAX_GAP_BANDS = 1                # one empty band (a notch, a tonal noise) does not end the band
# Upper edges between the classes: between the bands' nominal tops (3.4, 7, 14, 20 kHz) and
# above where a resampler from the lower rate (8, 16, 32 kHz) ends: its pass band stops at
# ~0.95 of the old Nyquist (4, 8, 16 kHz) and a soft one's transition band is 40 dB down only
# ~12 % past it (4.5, 9, 18 kHz with scipy's default polyphase filter).
CLASS_TOPS_HZ: tuple[tuple[BandClass, float], ...] = (
    ("narrowband", 5000.0), ("wideband", 10000.0), ("superwideband", 19000.0))
MIN_SPEECH_FRAMES = 50           # 1 s of 20 ms speech frames (the capture's "speech heard")
MIN_NOISE_FRAMES = 10            # 0.2 s of noise frames for the noise spectrum


@dataclass(frozen=True)
class VoiceBand:
    """How far up the voice reaches. ``edge_hz``: the top of the highest band carrying it;
    ``band``: its class; ``noise_limited``: the room's noise hid the voice above the edge, so
    the path may carry more (the edge is a lower bound)."""

    edge_hz: float
    band: BandClass
    noise_limited: bool
    speech_frames: int
    noise_frames: int

    @property
    def edge_khz(self) -> float:
        return self.edge_hz / 1000.0


def band_class(edge_hz: float) -> BandClass:
    """The class of an upper edge (``CLASS_TOPS_HZ``)."""
    for name, top in CLASS_TOPS_HZ:
        if edge_hz < top:
            return name
    return "fullband"


def band_spectra(samples: NDArray[np.float64], sample_rate: float, frame_len: int,
                 speech: NDArray[np.bool_], noise: NDArray[np.bool_]
                 ) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """(band lower edges in Hz, mean speech power, mean noise power) per ``BAND_HZ`` band.

    Each ``frame_len`` frame (the voice detector's, one flag in ``speech``/``noise`` each) is
    Hann-windowed (its side lobes keep 30-40 dB stronger low tones out of the high bands)
    and its power spectrum summed into bands; the speech and the noise frames are averaged
    separately. Bands that reach past Nyquist are left out.
    """
    import numpy as np

    n = min(samples.size // frame_len, speech.size, noise.size)
    f = samples[: n * frame_len].reshape(n, frame_len)
    # only the frames averaged below are transformed (each row's FFT is its own)
    speech_rows, noise_rows = speech[:n], noise[:n]
    used = speech_rows | noise_rows
    window = np.hanning(frame_len)
    spec = np.fft.rfft(f[used] * window, axis=1)
    power = spec.real**2 + spec.imag**2
    freqs = np.fft.rfftfreq(frame_len, 1.0 / sample_rate)
    count = int((sample_rate / 2) // BAND_HZ)
    index = np.minimum((freqs // BAND_HZ).astype(int), count)  # Nyquist's bin: dropped below
    speech_power = power[speech_rows[used]].mean(axis=0)
    noise_power = power[noise_rows[used]].mean(axis=0)
    s = np.bincount(index, weights=speech_power, minlength=count + 1)[:count]
    z = np.bincount(index, weights=noise_power, minlength=count + 1)[:count]
    return np.arange(count) * BAND_HZ, s, z


def measure_voice_band(samples: NDArray[np.float64], sample_rate: float, frame_len: int,
                       speech: NDArray[np.bool_], noise: NDArray[np.bool_]) -> VoiceBand | None:
    """The voice's upper edge and class from a capture and its speech/noise frame flags.

    None when there is too little speech (``MIN_SPEECH_FRAMES``) or noise
    (``MIN_NOISE_FRAMES``) to compare, or when the speech does not stand above the noise even
    in 1-3 kHz (nothing to measure from).
    """
    import numpy as np

    n = min(samples.size // frame_len, speech.size, noise.size)
    speech_n, noise_n = int(speech[:n].sum()), int(noise[:n].sum())
    if speech_n < MIN_SPEECH_FRAMES or noise_n < MIN_NOISE_FRAMES:
        return None
    lows, s, z = band_spectra(samples, sample_rate, frame_len, speech, noise)
    clean = np.maximum(s - z, 0.0)  # the voice's own power (the noise is in the speech frames)
    ref_sel = (lows >= REFERENCE_HZ[0]) & (lows + BAND_HZ <= REFERENCE_HZ[1])
    reference = float(clean[ref_sel].mean()) if ref_sel.any() else 0.0
    ref_noise = float(z[ref_sel].mean()) if ref_sel.any() else 0.0
    if not reference > ref_noise * (10 ** (SPEECH_OVER_NOISE_DB / 10) - 1):
        return None
    over = 10 ** (SPEECH_OVER_NOISE_DB / 10)
    floor = reference * 10 ** (-SPEECH_RANGE_DB / 10)
    mask = reference * 10 ** (-NOISE_MASK_DB / 10)
    edge = REFERENCE_HZ[1]
    gap, masked_since_edge = 0, False
    for k in np.flatnonzero(lows >= REFERENCE_HZ[1]):
        voice = s[k] >= over * z[k] and clean[k] >= floor
        if voice:
            edge, gap, masked_since_edge = float(lows[k] + BAND_HZ), 0, False
        elif z[k] >= mask:
            masked_since_edge = True   # the path carries sound here; the voice is hidden
        else:
            gap += 1
            if gap > MAX_GAP_BANDS:
                break
    return VoiceBand(edge_hz=edge, band=band_class(edge), noise_limited=masked_since_edge,
                     speech_frames=speech_n, noise_frames=noise_n)
