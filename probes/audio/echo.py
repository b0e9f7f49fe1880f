"""Echo of the call output in the call input: echo return loss (dB) and echo path delay (ms).

The probe is a short, quiet linear chirp (``CHIRP_LOW_HZ``..``CHIRP_HIGH_HZ``, flat spectrum, so
deconvolving it does not lift the noise of any band) played through the call output while the
call input is recorded on the same stream clock (``probes.audio.echo_io``). ``analyze_echo`` is
the math (numpy only, pure): the echo path's impulse response by regularised deconvolution in
the analysis band, its strongest arrival (the delay), and its energy (the loss).

Definitions (ITU-T G.168: the echo return loss is the attenuation of a signal from the
receive-out port to the send-in port of an echo canceller, i.e. the loss of the echo path):

- L_probe: the probe's level in the analysis band (``BAND_LOW_HZ``..``BAND_HIGH_HZ``), dBFS of
  the digital signal sent to the output; L_echo: the level of its echo in the same band in the
  digital signal read from the input, on the same dBFS scale.
- ERL = L_probe - L_echo = -10 log10(sum h_w^2 / sum u^2): h the echo path's response in the
  band (a unit, undelayed echo gives the band's own kernel u), h_w its part from
  ``WINDOW_BEFORE_S`` before to ``WINDOW_AFTER_S`` after its strongest arrival (the direct sound
  and early reflections: what a caller hears as their own voice coming back). The chirp's
  spectrum is flat in the band, so by Parseval this is the in-band level ratio. The mean energy
  of equal windows of h that hold only noise is subtracted, so room noise does not read as echo.
- "Echo found" needs the strongest arrival ``DETECT_FACTOR`` (18 dB) above the RMS of the
  noise-only part of the response, and as far above the RMS of the response's lags within
  ``NEIGHBOURHOOD_S`` either side of its window (an echo is compact; a bang in the room is
  smeared by the deconvolution across a chirp's length of lags). Otherwise no ERL is made up: ``erl_at_least_db`` is the
  loss this capture proves ("at least X dB": a pure-delay echo at that loss would just have
  reached the threshold). A quiet room proves a lot (no echo path: a closed headset); a noisy
  one little (the evaluation says which is which against the policy).
- Delay: the lag of the strongest arrival, in samples of the stream (input index minus output
  index); ``probes.audio.echo_io`` turns it into milliseconds of the echo path outside this
  program (the sound system's own timestamps of the two directions).

Cost: the response is computed at 16 kHz (the band ends at 6.8 kHz): the input's and the
probe's spectra at 48 kHz, then only their bins below 8 kHz go back to the time domain (an
inverse FFT a third the size). A few milliseconds for the 1.5 s recording (bench/audio_analysis.py).

Everything here works on arrays in memory; nothing is stored.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

SAMPLE_RATE = 48000
DECIMATION = 3               # the response at 16 kHz: the band ends below its 8 kHz Nyquist
CHIRP_LOW_HZ = 150.0         # the chirp sweeps a little wider than the analysis band, so its
CHIRP_HIGH_HZ = 7200.0       # edge ripples (the start and end of the sweep) stay outside it
BAND_LOW_HZ = 250.0          # the analysis band: wideband speech (G.722's 50-7000 Hz, less the
BAND_HIGH_HZ = 6800.0        # lows that laptop speakers cannot play)
TAPER_HZ = 100.0             # the band's soft edges, inside those limits
PROBE_S = 0.5                # chosen: half a second, as the agent is told
PROBE_DBFS = -36.0           # chosen: RMS of the chirp, 10 dB below P.56's nominal -26 dBov
#                              speech level a call is played at: quiet at the agent's volume
FADE_S = 0.01                # raised-cosine ends: no click
LEAD_S = 0.25                # silence played before the chirp: a full-duplex stream feeds
#                              silence in while its input starts (~0.2 s); noise-only lags
MAX_DELAY_S = 0.5            # the longest round trip searched (output + path + input buffers:
#                              a Bluetooth headset's 200-300 ms fit)
TAIL_S = 0.15                # recorded after the longest path and its window: noise-only lags
WINDOW_BEFORE_S = 0.005      # the echo's window around its strongest arrival
WINDOW_AFTER_S = 0.060
DETECT_FACTOR = 8.0          # 18 dB over the response's noise RMS: a Gaussian tap reaches it
#                              with p ~ 1e-15, so the ~10 000 noise taps never make a false echo
NEIGHBOURHOOD_S = 0.2        # the lags either side of the echo's window it must stand out of
REGULARISATION = 1e-3        # of the probe's peak power spectrum, for bins where it is small
ATTEMPTS = 2                 # a recording a driver gap cut through is made once more
RETRY_PAUSE_S = 0.1


def recording_s(seconds: float = PROBE_S) -> float:
    """How long one play-and-record lasts: lead, chirp, longest path, window, tail."""
    return LEAD_S + seconds + MAX_DELAY_S + WINDOW_AFTER_S + TAIL_S


@dataclass(frozen=True)
class EchoAnalysis:
    """What one play-and-record showed. ``found`` False: ``erl_db`` and ``lag_samples`` are
    None and ``erl_at_least_db`` is the loss the capture proves (None only when the input was
    digital silence)."""

    found: bool
    probe_dbfs: float                 # the probe's level in the analysis band (L_probe)
    erl_db: float | None              # L_probe - L_echo
    echo_dbfs: float | None           # L_echo
    lag_samples: int | None           # strongest arrival: input index - output index
    erl_at_least_db: float | None     # the weakest echo this capture could have seen, as ERL
    peak_over_noise_db: float | None  # strongest arrival over the response's noise RMS
    silent: bool = False              # the input held only digital zeros


def chirp(sample_rate: int = SAMPLE_RATE, *, seconds: float = PROBE_S,
          level_dbfs: float = PROBE_DBFS, low_hz: float = CHIRP_LOW_HZ,
          high_hz: float = CHIRP_HIGH_HZ) -> NDArray[np.float64]:
    """A linear chirp at ``level_dbfs`` RMS (over its length, fades included), floats in [-1, 1].

    Linear, not logarithmic: its spectrum is flat, so the deconvolution's noise is flat too and
    the loss is weighted evenly across the band.
    """
    import numpy as np

    n = int(round(seconds * sample_rate))
    t = np.arange(n) / sample_rate
    rate = (high_hz - low_hz) / seconds
    x = np.sin(2 * np.pi * (low_hz * t + 0.5 * rate * t * t))
    fade = int(FADE_S * sample_rate)
    ramp = 0.5 - 0.5 * np.cos(np.pi * np.arange(fade) / fade)
    x[:fade] *= ramp
    x[n - fade:] *= ramp[::-1]
    rms = float(np.sqrt(np.mean(x * x)))
    return x * (10 ** (level_dbfs / 20) / rms)


def analyze_echo(played: NDArray[np.float64], recorded: NDArray[np.float64] | NDArray[np.int16],
                 sample_rate: int, *, probe_start: int, probe_len: int,
                 max_lag: int) -> EchoAnalysis:
    """The echo of ``played`` in ``recorded`` (same stream, same index = same callback frame).

    ``played`` is the whole output signal (zeros around the probe, which starts at
    ``probe_start`` and lasts ``probe_len``); ``recorded`` the input over the same frames (int16
    or floats in [-1, 1)). Arrivals are searched at lags 0..``max_lag``; the lags before 0 and
    after ``max_lag`` plus the window are noise only.
    """
    import numpy as np

    raw = np.asarray(recorded)
    scale = 1.0 / 32768.0 if raw.dtype == np.int16 else 1.0
    y = raw.astype(np.float64).ravel() * scale
    d = DECIMATION if sample_rate % DECIMATION == 0 and sample_rate / DECIMATION > \
        2 * BAND_HIGH_HZ else 1
    n = y.size
    # the transforms' length: a 5-smooth multiple of 2 x the decimation, zeros after the
    # recording (lags whose overlap reaches them are not used: ``last_full``)
    size = _fast_length(n, 2 * d)
    nd = size // d
    x = np.zeros(size)
    m = min(played.size, n)
    x[:m] = np.asarray(played, dtype=np.float64)[:m]
    rate_d = sample_rate / d
    before = int(round(WINDOW_BEFORE_S * rate_d))
    after = int(round(WINDOW_AFTER_S * rate_d))
    span = before + after + 1
    start_d, max_lag_d = probe_start // d, -(-max_lag // d)
    last_full = (n - probe_start - probe_len) // d   # the last lag whose overlap is complete
    if last_full < max_lag_d + after + span:
        raise ValueError("the recording is too short for the lags searched")

    bins = nd // 2 + 1                # the 48 kHz spectrum's bins below the 16 kHz Nyquist
    X = np.fft.rfft(x)[:bins]
    freqs = np.arange(bins) * (sample_rate / size)
    mask = band_mask(freqs)
    power = X.real ** 2 + X.imag ** 2
    # the probe's in-band level: Parseval over the probe's own length (full-rate transform)
    weights = np.full(bins, 2.0)
    weights[0] = 1.0
    probe_dbfs = _db(float((weights * power * mask ** 2).sum()) / (size * probe_len))
    if not np.any(y):
        return EchoAnalysis(False, probe_dbfs, None, None, None, None, None, silent=True)
    Y = np.fft.rfft(y, size)[:bins]
    eps = REGULARISATION * float(power[mask > 0].max())
    inverse = mask / (power + eps)
    # h at 16 kHz: the inverse transform of the low bins, a third the size, scaled to equal
    # the full-rate response at every third lag (h[k]: lag k; h[nd - k]: lag -k)
    h = np.fft.irfft(Y * np.conj(X) * inverse, nd) / d
    u = np.fft.irfft(power * inverse, nd) / d       # what a unit, undelayed echo gives
    kernel_peak = float(u[0])
    unit_energy = float((u * u).sum())   # (not np.dot: BLAS threads spin)

    def at(lag0: int, lag1: int) -> NDArray[np.float64]:
        return h[np.arange(lag0, lag1) % nd]

    noise_taps = np.concatenate((at(-start_d, -before), at(max_lag_d + after + 1, last_full)))
    # robust: the median of squares of Gaussian noise is 0.455 of its variance, and a stray
    # harmonic of a distorting speaker does not move it
    noise_rms = math.sqrt(float(np.median(noise_taps ** 2)) / 0.4549)
    search = at(0, max_lag_d + 1)
    lag = int(np.argmax(np.abs(search)))
    peak = float(abs(search[lag]))
    peak_over_noise = _db(peak ** 2 / noise_rms ** 2) if noise_rms > 0 else math.inf
    at_least = -_db((DETECT_FACTOR * noise_rms / kernel_peak) ** 2) if noise_rms > 0 else None

    def window_energy(lag0: int) -> float:
        taps = at(lag0, lag0 + span)
        return float((taps * taps).sum())

    noise_energies = [window_energy(s) for s in _noise_windows(
        -start_d, -before, max_lag_d + after + 1, last_full, span)]
    noise_energy = float(np.mean(noise_energies)) if noise_energies else 0.0
    echo_gain = (window_energy(lag - before) - noise_energy) / unit_energy
    # An echo is compact: its arrival stands out of the lags around its window too. A bang in
    # the room (a door, a dropped cup) is deconvolved into a chirp-long smear across the lags:
    # its strongest tap can clear the median-based noise RMS, never the RMS of its own smear.
    near = int(round(NEIGHBOURHOOD_S * rate_d))
    around = np.concatenate((at(max(0, lag - near), max(0, lag - before)),
                             at(lag + after + 1, min(max_lag_d + 1, lag + after + 1 + near))))
    around_rms = math.sqrt(float((around * around).mean())) if around.size else 0.0
    # (1e-12: -120 dB, below what 16-bit samples can hold: a response of rounding errors)
    found = (echo_gain > 1e-12 and (noise_rms == 0 or peak >= DETECT_FACTOR * noise_rms)
             and peak >= DETECT_FACTOR * around_rms)
    if not found:
        return EchoAnalysis(False, probe_dbfs, None, None, None, at_least, peak_over_noise)
    erl = -_db(echo_gain)
    return EchoAnalysis(True, probe_dbfs, erl, probe_dbfs - erl,
                        int(round(d * (lag + _vertex(search, lag)))), at_least,
                        peak_over_noise)


def band_mask(freqs: NDArray[np.float64]) -> NDArray[np.float64]:
    """1 inside the analysis band, raised-cosine edges ``TAPER_HZ`` wide inside its limits, 0
    outside: soft edges keep the response's sidelobes (ringing) out of the noise lags."""
    import numpy as np

    rise = np.clip((freqs - BAND_LOW_HZ) / TAPER_HZ, 0.0, 1.0)
    fall = np.clip((BAND_HIGH_HZ - freqs) / TAPER_HZ, 0.0, 1.0)
    return (0.5 - 0.5 * np.cos(np.pi * rise)) * (0.5 - 0.5 * np.cos(np.pi * fall))


def _vertex(values: NDArray[np.float64], i: int) -> float:
    """The strongest arrival between taps: the vertex of the parabola through |h| at i-1, i,
    i+1 (within half a tap), so the 16 kHz response still places the lag to a 48 kHz frame."""
    if i <= 0 or i >= values.size - 1:
        return 0.0
    a, b, c = (abs(float(v)) for v in values[i - 1:i + 2])
    denom = a - 2 * b + c
    return 0.0 if denom >= 0 else max(-0.5, min(0.5, 0.5 * (a - c) / denom))


def _fast_length(n: int, multiple: int) -> int:
    """The smallest multiple of ``multiple`` >= ``n`` with no prime factor above 5 (FFTs of a
    length with a large prime factor run several times slower)."""
    size = -(-n // multiple) * multiple
    while True:
        rest = size
        for p in (2, 3, 5):
            while rest % p == 0:
                rest //= p
        if rest == 1:
            return size
        size += multiple


def _noise_windows(neg0: int, neg1: int, pos0: int, pos1: int, length: int) -> list[int]:
    """Starts of non-overlapping windows of ``length`` lags inside the two noise-only spans."""
    starts: list[int] = []
    for lo, hi in ((neg0, neg1), (pos0, pos1)):
        starts += list(range(lo, hi - length + 1, length))
    return starts


def _db(power_ratio: float) -> float:
    return 10.0 * math.log10(power_ratio) if power_ratio > 0 else -math.inf


# ------------------------------------------------------------------ play and record

@dataclass(frozen=True)
class EchoReading:
    """The echo test as numbers only. ``problem`` set: nothing could be played or recorded."""

    device: str | None
    sample_rate: int
    probe_dbfs: float | None = None
    problem: str | None = None
    silent: bool = False
    found: bool = False
    erl_db: float | None = None
    echo_dbfs: float | None = None
    erl_at_least_db: float | None = None  # not found: the loss this capture proves
    delay_ms: float | None = None        # echo path outside this program (sound system clocks)
    round_trip_ms: float | None = None   # input index - output index: this program's view
    peak_over_noise_db: float | None = None
    clock: str = ""                      # "timestamps": delay_ms from the sound system's
    #                                      stamps; "unsteady timestamps": they stepped in the
    #                                      recording; "stream": round trip - queried latency
    recorded_s: float = 0.0              # how long the sound system was playing and recording


def measure_echo(*, level_dbfs: float = PROBE_DBFS, seconds: float = PROBE_S,
                 device_label: str | None = None,
                 on_level: Callable[[float], None] | None = None) -> EchoReading:
    """Play the chirp through the call output while recording the call input; analyse.

    A recording that a driver gap (under- or overflow) cut through after the stream settled is
    made once more (``ATTEMPTS``): the lag would not be the echo path's. Failures (no audio
    system, no device, a stalled stream, gaps every time) come back as a reading with
    ``problem`` set, never as an exception. The samples stay in this function's memory.
    """
    from probes.audio.echo_io import StreamStalled, play_and_record

    probe = chirp(SAMPLE_RATE, seconds=seconds, level_dbfs=level_dbfs)
    lead = int(LEAD_S * SAMPLE_RATE)
    tail = int((MAX_DELAY_S + WINDOW_AFTER_S + TAIL_S) * SAMPLE_RATE)
    settled = lead * 4 // 5
    capture = None
    problem = ""
    recorded_s = 0.0
    for attempt in range(1, ATTEMPTS + 1):
        if attempt > 1:
            time.sleep(RETRY_PAUSE_S)
        try:
            capture = play_and_record(probe, sample_rate=SAMPLE_RATE, lead=lead, tail=tail,
                                      on_level=on_level)
        except StreamStalled as exc:   # a busy machine: the driver gave up; try again
            problem = str(exc)
            continue
        except Exception as exc:  # noqa: BLE001 - driver errors become a reason, not a crash
            return EchoReading(device_label, SAMPLE_RATE,
                               problem=f"cannot play and record: {exc}")
        recorded_s += capture.played.size / SAMPLE_RATE
        # PortAudio feeds silence in while a full-duplex input starts: harmless before the
        # probe; a gap from there on moves the input against the output
        if not capture.gap_after(settled):
            break
        problem = "the sound system dropped audio during the test"
        capture = None
    if capture is None:
        return EchoReading(device_label, SAMPLE_RATE, recorded_s=recorded_s,
                           problem=f"{problem} ({attempt} tries): the computer may be too busy")
    label = device_label or capture.device
    analysis = analyze_echo(capture.played, capture.recorded, SAMPLE_RATE, probe_start=lead,
                            probe_len=probe.size, max_lag=int(MAX_DELAY_S * SAMPLE_RATE))
    common = dict(device=label, sample_rate=SAMPLE_RATE, probe_dbfs=round(analysis.probe_dbfs, 2),
                  silent=analysis.silent, erl_at_least_db=analysis.erl_at_least_db,
                  peak_over_noise_db=analysis.peak_over_noise_db, recorded_s=recorded_s)
    if not analysis.found or analysis.lag_samples is None:
        return EchoReading(**common)  # type: ignore[arg-type]
    round_trip_ms = 1000.0 * analysis.lag_samples / SAMPLE_RATE
    played_at = capture.output_time(lead, settled=settled)
    heard_at = capture.input_time(lead + analysis.lag_samples, settled=settled)
    if played_at is not None and heard_at is not None:
        delay_ms = 1000.0 * (heard_at - played_at)
        clock = "timestamps" if capture.stamps_steady(settled) else "unsteady timestamps"
    else:  # no stamps from this host: the stream's own (queried) latency is taken out
        delay_ms, clock = round_trip_ms - 1000.0 * capture.nominal_latency_s, "stream"
    del capture
    return EchoReading(**common, found=True,  # type: ignore[arg-type]
                       erl_db=analysis.erl_db, echo_dbfs=analysis.echo_dbfs,
                       round_trip_ms=round_trip_ms, delay_ms=delay_ms, clock=clock)
