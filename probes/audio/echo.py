"""Echo of the call output in the call input: echo return loss (dB) and echo path delay (ms).

The probe is a short, quiet linear chirp (``CHIRP_LOW_HZ``..``CHIRP_HIGH_HZ``, flat spectrum, so
deconvolving it does not lift the noise of any band) played through the call output while the
call input is recorded on the same stream clock (``probes.audio.duplex``). ``analyze_echo`` is
the math (numpy only, pure): the echo path's impulse response by regularised deconvolution in
the analysis band, its strongest arrival (the delay), and its energy (the loss).

Definitions (ITU-T G.168, 3.x: the echo return loss is the attenuation of a signal from the
receive-out port to the send-in port of an echo canceller, i.e. the loss of the echo path):

- L_probe: the probe's level in the analysis band (``BAND_LOW_HZ``..``BAND_HIGH_HZ``), dBFS of
  the digital signal sent to the output; L_echo: the level of its echo in the same band in the
  digital signal read from the input, over the same duration, on the same dBFS scale.
- ERL = L_probe - L_echo = 10 log10(sum_band |X|^2 / sum_band |X|^2 |H_w|^2) (the band with
  soft edges, ``band_mask``, and normalised so that a unit echo reads 0 dB), with X the probe's
  spectrum and H_w the echo path's response windowed to ``WINDOW_BEFORE_S`` before and
  ``WINDOW_AFTER_S`` after its strongest arrival (the direct sound and early reflections: what a
  caller hears as their own voice coming back). The same energy measured in windows of the
  response that hold only noise is subtracted, so room noise does not read as echo.
- "Echo found" needs the strongest arrival ``DETECT_FACTOR`` (18 dB) above the RMS of the
  noise-only part of the response. Otherwise no ERL is made up: ``erl_above_db`` says how weak an
  echo this capture could have seen (the ERL of a pure-delay echo whose arrival would just have
  reached the threshold): "no echo: ERL above X dB".
- Delay: the lag of the strongest arrival, in samples of the stream (input index minus output
  index); ``probes.audio.duplex`` turns it into milliseconds of the echo path outside this
  program (the sound system's own timestamps).

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
CHIRP_LOW_HZ = 150.0         # the chirp sweeps a little wider than the analysis band, so its
CHIRP_HIGH_HZ = 7200.0       # edge ripples (the start and end of the sweep) stay outside it
BAND_LOW_HZ = 250.0          # the analysis band: wideband speech (G.722's 50-7000 Hz, less the
BAND_HIGH_HZ = 6800.0        # lows that laptop speakers cannot play)
TAPER_HZ = 100.0             # the band's soft edges, inside those limits
PROBE_S = 0.5                # chosen: under a second, as the test promises the agent
PROBE_DBFS = -30.0           # chosen: RMS of the chirp, about 20 dB below speech at -26 dBov
FADE_S = 0.01                # raised-cosine ends: no click
LEAD_S = 0.25                # silence played before the chirp: the stream settles, and the
#                              response's negative lags (noise only) get this long
MAX_DELAY_S = 0.8            # the longest echo path searched (Bluetooth plus buffers)
TAIL_S = 0.3                 # recorded after the longest path: noise-only lags
WINDOW_BEFORE_S = 0.005      # the echo's window around its strongest arrival
WINDOW_AFTER_S = 0.060
DETECT_FACTOR = 8.0          # 18 dB over the response's noise RMS: a Gaussian tap reaches it
#                              with p ~ 1e-15, so 40 000 noise taps never make a false echo
REGULARISATION = 1e-3        # of the probe's peak power spectrum, for bins where it is small
ATTEMPTS = 4                 # recordings a driver gap cut through are made again, this often,
RETRY_PAUSE_S = 0.3          # this long apart (a busy machine's stalls come in bursts)


@dataclass(frozen=True)
class EchoAnalysis:
    """What one play-and-record showed. ``found`` False: ``erl_db`` and ``lag_samples`` are
    None and ``erl_above_db`` bounds the loss (None only when the input was digital silence)."""

    found: bool
    probe_dbfs: float                 # the probe's level in the analysis band (L_probe)
    erl_db: float | None              # L_probe - L_echo
    echo_dbfs: float | None           # L_echo
    lag_samples: int | None           # strongest arrival: input index - output index
    erl_above_db: float | None        # the weakest echo this capture could have seen, as ERL
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
    n = y.size
    x = np.zeros(n)
    m = min(played.size, n)
    x[:m] = np.asarray(played, dtype=np.float64)[:m]
    before = int(round(WINDOW_BEFORE_S * sample_rate))
    after = int(round(WINDOW_AFTER_S * sample_rate))
    last_full = n - probe_start - probe_len       # the last lag whose overlap is complete
    if last_full < max_lag + after + (before + after + 1):
        raise ValueError("the recording is too short for the lags searched")

    X = np.fft.rfft(x)
    freqs = np.fft.rfftfreq(n, 1.0 / sample_rate)
    mask = band_mask(freqs)
    band = mask > 0
    power = np.abs(X) ** 2
    # the probe's in-band level: Parseval over the probe's own length
    probe_dbfs = _db(2.0 * float((power * mask ** 2).sum()) / (n * probe_len))
    if not np.any(y):
        return EchoAnalysis(False, probe_dbfs, None, None, None, None, None, silent=True)
    Y = np.fft.rfft(y)
    eps = REGULARISATION * float(power[band].max())
    H = mask * Y * np.conj(X) / (power + eps)
    h = np.fft.irfft(H, n)                        # h[k]: lag k; h[n - k]: lag -k
    unit = mask * power / (power + eps)           # what a unit, undelayed echo would give
    kernel_peak = float(np.fft.irfft(unit, n)[0])
    probe_energy = float((power * unit ** 2).sum())

    def at(lag0: int, lag1: int) -> NDArray[np.float64]:
        return h[np.arange(lag0, lag1) % n]

    noise_taps = np.concatenate((at(-probe_start, -before), at(max_lag + after + 1, last_full)))
    # robust: the median of squares of Gaussian noise is 0.455 of its variance, and a stray
    # harmonic of a distorting speaker does not move it
    noise_rms = math.sqrt(float(np.median(noise_taps ** 2)) / 0.4549)
    search = at(0, max_lag + 1)
    lag = int(np.argmax(np.abs(search)))
    peak = float(abs(search[lag]))
    peak_over_noise = _db(peak ** 2 / noise_rms ** 2) if noise_rms > 0 else math.inf
    erl_above = -_db((DETECT_FACTOR * noise_rms / kernel_peak) ** 2) if noise_rms > 0 else None

    def window_gain(lag0: int) -> float:
        """sum_band |X|^2 |H_w|^2 / sum_band |X|^2 for the response's lags lag0..lag0+len."""
        hw = np.zeros(n)
        idx = np.arange(lag0, lag0 + before + after + 1) % n
        hw[idx] = h[idx]
        Hw = np.fft.rfft(hw)
        return float((power * np.abs(Hw) ** 2).sum()) / probe_energy

    noise_gains = [window_gain(start) for start in _noise_windows(
        -probe_start, -before, max_lag + after + 1, last_full, before + after + 1)]
    echo_gain = window_gain(lag - before) - (float(np.mean(noise_gains)) if noise_gains else 0.0)
    # (1e-12: -120 dB, below what 16-bit samples can hold: a response of rounding errors)
    found = echo_gain > 1e-12 and (noise_rms == 0 or peak >= DETECT_FACTOR * noise_rms)
    if not found:
        return EchoAnalysis(False, probe_dbfs, None, None, None, erl_above, peak_over_noise)
    erl = -_db(echo_gain)
    return EchoAnalysis(True, probe_dbfs, erl, probe_dbfs - erl, lag, erl_above,
                        peak_over_noise)


def band_mask(freqs: NDArray[np.float64]) -> NDArray[np.float64]:
    """1 inside the analysis band, raised-cosine edges ``TAPER_HZ`` wide inside its limits, 0
    outside: soft edges keep the response's sidelobes (ringing) out of the noise lags."""
    import numpy as np

    rise = np.clip((freqs - BAND_LOW_HZ) / TAPER_HZ, 0.0, 1.0)
    fall = np.clip((BAND_HIGH_HZ - freqs) / TAPER_HZ, 0.0, 1.0)
    return (0.5 - 0.5 * np.cos(np.pi * rise)) * (0.5 - 0.5 * np.cos(np.pi * fall))


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
    """The echo test as numbers only. ``problem`` set: nothing could be measured."""

    device: str | None
    sample_rate: int
    probe_dbfs: float | None = None
    problem: str | None = None
    silent: bool = False
    found: bool = False
    erl_db: float | None = None
    echo_dbfs: float | None = None
    erl_above_db: float | None = None
    delay_ms: float | None = None        # echo path outside this program (sound system clocks)
    round_trip_ms: float | None = None   # input index - output index: this program's view
    peak_over_noise_db: float | None = None
    clock: str = ""                      # "timestamps": delay_ms from the sound system's
    #                                      stamps; "unsteady timestamps": they stepped on
    #                                      every try; "stream": round trip - nominal latency


def measure_echo(*, level_dbfs: float = PROBE_DBFS, seconds: float = PROBE_S,
                 device_label: str | None = None,
                 on_level: Callable[[float], None] | None = None) -> EchoReading:
    """Play the chirp through the call output while recording the call input; analyse.

    A recording that a driver gap (under- or overflow) cut through after the stream settled is
    made again, up to ``ATTEMPTS`` times: the lag would not be the echo path's. Failures (no
    audio system, no device, a stalled stream, gaps every time) come back as a reading with
    ``problem`` set, never as an exception. The samples stay in this function's memory.
    """
    from probes.audio.duplex import StreamStalled, play_and_record

    probe = chirp(SAMPLE_RATE, seconds=seconds, level_dbfs=level_dbfs)
    lead = int(LEAD_S * SAMPLE_RATE)
    tail = int((MAX_DELAY_S + WINDOW_AFTER_S + TAIL_S) * SAMPLE_RATE)
    settled = lead * 4 // 5
    capture = None
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
        # PortAudio feeds silence in while a full-duplex input starts: harmless before the
        # probe; a gap from there on moves the input against the output
        if not capture.gap_after(settled):
            if capture.stamps_steady(settled) or attempt == ATTEMPTS:
                break
            continue    # the stamps stepped: the loss stands, the delay would not; again
        problem = "the sound system dropped audio during the test"
        capture = None
    if capture is None:
        return EchoReading(device_label, SAMPLE_RATE,
                           problem=f"{problem} ({attempt} tries): the computer may be too busy")
    label = device_label or capture.device
    analysis = analyze_echo(capture.played, capture.recorded, SAMPLE_RATE, probe_start=lead,
                            probe_len=probe.size, max_lag=int(MAX_DELAY_S * SAMPLE_RATE))
    common = dict(device=label, sample_rate=SAMPLE_RATE, probe_dbfs=round(analysis.probe_dbfs, 2),
                  silent=analysis.silent, erl_above_db=analysis.erl_above_db,
                  peak_over_noise_db=analysis.peak_over_noise_db)
    if not analysis.found or analysis.lag_samples is None:
        return EchoReading(**common)  # type: ignore[arg-type]
    round_trip_ms = 1000.0 * analysis.lag_samples / SAMPLE_RATE
    played_at = capture.output_time(lead, settled=settled)
    heard_at = capture.input_time(lead + analysis.lag_samples, settled=settled)
    if played_at is not None and heard_at is not None:
        delay_ms = 1000.0 * (heard_at - played_at)
        clock = "timestamps" if capture.stamps_steady(settled) else "unsteady timestamps"
    else:  # no stamps from this host: the stream's nominal latency stands in
        delay_ms, clock = round_trip_ms - 1000.0 * capture.nominal_latency_s, "stream"
    del capture
    return EchoReading(**common, found=True,  # type: ignore[arg-type]
                       erl_db=analysis.erl_db, echo_dbfs=analysis.echo_dbfs,
                       round_trip_ms=round_trip_ms, delay_ms=delay_ms, clock=clock)
