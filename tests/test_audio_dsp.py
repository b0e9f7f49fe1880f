"""Golden values for the audio math (STANDARDS.md) and the analysis of synthetic captures."""

from __future__ import annotations

import hashlib
import math

import numpy as np
import pytest

from probes.audio import dsp as dsp
from probes.audio.capture import analyze_capture

FS = 48000


def tone(freq: float, amplitude: float, seconds: float = 4.0, fs: int = FS) -> np.ndarray:
    t = np.arange(int(seconds * fs)) / fs
    return amplitude * np.sin(2 * np.pi * freq * t)


def noise(level_dbfs: float, seconds: float = 4.0, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.normal(0.0, 10 ** (level_dbfs / 20), int(seconds * FS))


# ------------------------------------------------------------------ levels and A-weighting

@pytest.mark.parametrize(("freq", "expected"), [
    (50, -30.27), (60, -27.05), (100, -19.14), (250, -8.67), (500, -3.25), (1000, 0.00),
    (2000, 1.20), (4000, 0.96), (8000, -1.15)])
def test_a_weighting_golden_values(freq: float, expected: float) -> None:
    assert float(dsp.a_weighting_db(freq)) == pytest.approx(expected, abs=0.005)


def test_full_scale_sine_is_minus_3_01_dbfs() -> None:
    assert dsp.rms_dbfs(tone(1000, 1.0)) == pytest.approx(-3.0103, abs=1e-3)
    assert dsp.rms_dbfs(tone(440, 0.1)) == pytest.approx(-23.0103, abs=1e-3)


def test_silence_is_the_level_floor_not_minus_infinity() -> None:
    assert dsp.rms_dbfs(np.zeros(4800)) == dsp.LEVEL_FLOOR_DBFS
    assert dsp.rms_dbfs([]) == dsp.LEVEL_FLOOR_DBFS


@pytest.mark.parametrize("freq", [50, 100, 250, 500, 1000, 2000, 4000, 8000])
def test_a_weighted_level_of_sines_follows_the_curve(freq: float) -> None:
    x = tone(freq, 0.1)
    got = dsp.a_weighted_dbfs(x, FS) - dsp.rms_dbfs(x)
    assert got == pytest.approx(float(dsp.a_weighting_db(freq)), abs=0.02)


def test_a_weighted_white_noise_matches_the_band_average_of_the_curve() -> None:
    x = noise(-40.0, seconds=8.0)
    freqs = np.linspace(0, FS / 2, 200001)
    expected = 10 * np.log10(np.mean(10 ** (dsp.a_weighting_db(freqs[1:]) / 10)))
    assert dsp.a_weighted_dbfs(x, FS) - dsp.rms_dbfs(x) == pytest.approx(expected, abs=0.1)


@pytest.mark.parametrize("freq", [30, 75, 1001])
def test_hann_long_frames_keep_low_rumble_from_leaking(freq: float) -> None:
    x = tone(freq, 0.1)
    ms = dsp.a_weighted_frame_mean_squares(x, FS, 7680, hann=True)
    got = dsp.power_db(float(np.mean(ms))) - dsp.rms_dbfs(x)
    assert got == pytest.approx(float(dsp.a_weighting_db(freq)), abs=0.7)


def test_rumble_in_a_quiet_room_does_not_inflate_the_a_weighted_floor() -> None:
    room = noise(-70.0, seconds=6.0) + tone(30, 10 ** (-40 / 20) * np.sqrt(2), 6.0)
    r = analyze_capture((room * 32768).astype(np.int16), FS)
    # A(30 Hz) = -39.5 dB: the -40 dBFS rumble weighs about -79.5 dBFS(A); the -70 dBFS white
    # noise about -70.6 dBFS(A) (its band average of the curve), together about -70.1.
    white = 10 * np.log10(np.mean(10 ** (dsp.a_weighting_db(np.linspace(1, FS / 2, 100000)) /
                                         10)))
    expected = 10 * np.log10(10 ** ((-70 + white) / 10) + 10 ** ((-40 - 39.5) / 10))
    assert r.noise_dbfs_a == pytest.approx(expected, abs=0.5)


# ------------------------------------------------------------------ P.56

def sv56_counts_sequential(x: np.ndarray, fs: int) -> list[int]:
    """P.56 method B activity counts, sample by sample, as the recommendation words it."""
    g = math.exp(-1 / (fs * 0.03))
    hang_max = int(math.floor(0.2 * fs + 0.5))
    c = [2.0 ** (j - 15) for j in range(15)]
    a, hang, p, q = [0] * 15, [hang_max] * 15, 0.0, 0.0
    for v in x:
        p = g * p + (1 - g) * abs(v)
        q = g * q + (1 - g) * p
        for j in range(15):
            if q >= c[j]:
                a[j] += 1
                hang[j] = 0
            elif hang[j] < hang_max:
                a[j] += 1
                hang[j] += 1
    return a


def test_p56_vectorised_counts_equal_the_sequential_procedure() -> None:
    fs = 8000
    rng = np.random.default_rng(3)
    t = np.arange(fs * 3) / fs
    x = rng.normal(0, 0.05, t.size) * (np.sin(2 * np.pi * 1.3 * t) > 0.3)
    x += rng.normal(0, 0.0005, t.size)
    g = math.exp(-1 / (fs * 0.03))
    q = dsp._one_pole(dsp._one_pole(np.abs(x), g), g)
    level = np.clip(np.floor(np.log2(np.maximum(q, 1e-300))) + 15, -1, 14).astype(np.int8)
    assert dsp._held_counts(level, int(0.2 * fs + 0.5), 15) == sv56_counts_sequential(x, fs)


def test_one_pole_cascade_is_the_two_passes_to_the_bit_and_the_recursion() -> None:
    """The P.56 envelope's cascade run block by block equals one whole pass per stage exactly,
    and both equal the plain recursion y[n] = g y[n-1] + (1-g) x[n] (to float rounding)."""
    fs = 48000
    rng = np.random.default_rng(4)
    x = np.abs(rng.normal(0, 0.1, fs * 3 + 17))
    g = math.exp(-1 / (fs * 0.03))
    two_passes = dsp._one_pole(dsp._one_pole(x, g), g)
    assert np.array_equal(dsp._one_pole(x, g, stages=2), two_passes)
    y = np.empty_like(x)
    prev = 0.0
    for i, v in enumerate(x[:20000]):
        prev = g * prev + (1 - g) * v
        y[i] = prev
    z = np.empty(20000)
    prev = 0.0
    for i, v in enumerate(y[:20000]):
        prev = g * prev + (1 - g) * v
        z[i] = prev
    assert np.allclose(two_passes[:20000], z, rtol=1e-9, atol=1e-15)


@pytest.mark.parametrize("factor", [2, 3, 4, 7, 8, 20])
def test_block_means_equal_numpys_mean_of_each_run_to_the_bit(factor: int) -> None:
    x = np.random.default_rng(factor).normal(0, 0.3, 48000 + 5)
    expected = x[: x.size // factor * factor].reshape(-1, factor).mean(axis=1)
    assert np.array_equal(dsp.block_means(x, factor), expected)


def test_p56_of_a_continuous_sine_is_its_rms_level() -> None:
    got = dsp.active_speech_level(tone(1000, 0.1, 6.0), FS)
    assert got.level_dbfs == pytest.approx(-23.01, abs=0.05)
    assert got.activity == pytest.approx(1.0, abs=0.01)


def test_p56_ignores_silence_between_bursts() -> None:
    x = tone(1000, 0.1, 8.0)
    x[x.size // 2:] = 0.0            # 4 s of tone, then 4 s of silence
    got = dsp.active_speech_level(x, FS)
    # Active: the 4 s of tone, the envelope's decay to the threshold, then 0.2 s of hangover.
    assert 0.5 + 0.2 / 8 < got.activity < 0.5 + 0.4 / 8
    assert got.long_term_dbfs == pytest.approx(-26.02, abs=0.01)
    assert got.level_dbfs == pytest.approx(got.long_term_dbfs - 10 * math.log10(got.activity))
    assert got.level_dbfs == pytest.approx(-23.01, abs=0.4)


# Tone bursts (start s, length s, frequency Hz, peak dBFS), each with 10 ms raised-cosine
# ramps, over a 120 Hz tone at -60 dBFS peak for the whole 10.24 s (640 blocks of 256 samples at
# 16 kHz, 320 at 8 kHz: sv56demo measures whole blocks). The pause between the third and fourth
# bursts (0.15 s) is shorter than the 0.2 s hangover; the others are longer.
P56_BURSTS = ((0.40, 0.60, 440, -20), (1.30, 0.80, 1000, -26), (2.25, 0.30, 250, -14),
              (2.70, 0.45, 700, -30), (4.20, 1.00, 1500, -24), (5.90, 0.25, 3000, -18),
              (6.60, 1.20, 330, -22), (8.50, 0.70, 2200, -28), (9.50, 0.40, 520, -16))
P56_SIGNAL_S = 10.24
P56_RAMP_S = 0.010


def p56_reference_signal(fs: int) -> np.ndarray:
    """The P.56 golden's input, exactly as it was fed to the ITU-T reference meter: 16-bit
    samples, round(32768 x), of the bursts in ``P56_BURSTS`` over the 120 Hz background."""
    t = np.arange(int(round(P56_SIGNAL_S * fs))) / fs
    x = 10 ** (-60 / 20) * np.sin(2 * np.pi * 120 * t)
    for start, length, freq, peak_dbfs in P56_BURSTS:
        inside = (t >= start) & (t < start + length)
        edge = np.minimum(t - start, start + length - t)
        ramp = np.where(edge < P56_RAMP_S, 0.5 - 0.5 * np.cos(np.pi * edge / P56_RAMP_S), 1.0)
        burst = 10 ** (peak_dbfs / 20) * ramp * np.sin(2 * np.pi * freq * (t - start))
        x += np.where(inside, burst, 0.0)
    return np.clip(np.round(x * 32768), -32768, 32767).astype(np.int16)


# The ITU-T reference meter's results on that signal (the P.56 golden): openitu/STL commit
# 139db49783b5096abf40d4f271d74fda9d591d20 (2023-04-30), src/sv56 built with cmake (Release),
# run on 2026-12-02 as
#   sv56demo -qq -sf 16000 -lev -26 bursts_16000.raw out_16000.raw
#   sv56demo -qq -sf 8000 -lev -26 bursts_8000.raw out_8000.raw
# with bursts_FS.raw = p56_reference_signal(FS) as little-endian 16-bit PCM. It printed
# "RMSLev[dB]: -26.509 ActLev[dB]: -25.347 %Active:  76.531" (16 kHz) and
# "RMSLev[dB]: -26.509 ActLev[dB]: -25.345 %Active:  76.497" (8 kHz). docs/standards.md says how.
SV56_GOLDEN = {16000: (-26.509, -25.347, 76.531), 8000: (-26.509, -25.345, 76.497)}
# SHA-256 of the raw files fed to it: the signal regenerated here is that input, bit for bit.
SV56_INPUT_SHA256 = {
    16000: "32a922c790fe8497a6eaa8ae709380b12181eefceaf1970e3fa1e90e5f884d76",
    8000: "1dc2d25307fc4279ad72096eb3744330c1707811a8edb0460bf56d8e0b567c9b"}


@pytest.mark.parametrize("fs", sorted(SV56_GOLDEN))
def test_p56_agrees_with_the_itu_t_reference_meter(fs: int) -> None:
    long_term_db, active_db, active_pct = SV56_GOLDEN[fs]
    pcm = p56_reference_signal(fs)
    assert hashlib.sha256(pcm.astype("<i2").tobytes()).hexdigest() == SV56_INPUT_SHA256[fs]
    got = dsp.active_speech_level(pcm / 32768, fs)
    assert got.long_term_dbfs == pytest.approx(long_term_db, abs=0.005)   # printed to 3 places
    assert got.level_dbfs == pytest.approx(active_db, abs=0.05)
    assert 100 * got.activity == pytest.approx(active_pct, abs=1.0)


def test_p56_of_silence_is_the_floor() -> None:
    got = dsp.active_speech_level(np.zeros(FS), FS)
    assert got.level_dbfs == dsp.LEVEL_FLOOR_DBFS and got.activity == 0.0


# ------------------------------------------------------------------ clipping

def test_clipping_counts_only_runs_of_six_full_scale_samples() -> None:
    x = np.zeros(FS)
    for start in range(1000, 1000 + 10 * 1000, 1000):   # 10 runs of 6: counted
        x[start:start + 6] = 1.0
    for start in range(20000, 30000, 1000):              # 10 runs of 5: not clipping
        x[start:start + 5] = -1.0
    got = dsp.clipping(x)
    assert (got.runs, got.samples) == (10, 60)
    assert got.percent == pytest.approx(100 * 60 / FS)


def test_clipping_of_a_sine_driven_twice_over_full_scale() -> None:
    # |2 sin| >= 1 for 2/3 of the time: a hard-clipped sine at 6 dB over full scale. At 100 Hz
    # and 48 kHz a half period is 240 samples and |sin| = 0.5 falls on samples 40 and 200, so
    # 161 of every 240 samples sit at full scale.
    x = np.clip(tone(100, 2.0, 2.0), -1.0, 1.0)
    assert dsp.clipping(x).percent == pytest.approx(100 * 161 / 240, abs=0.01)


def test_no_clipping_below_full_scale() -> None:
    assert dsp.clipping(tone(440, 0.99)).percent == 0.0


# ------------------------------------------------------------------ dropouts

def test_a_50_ms_gap_mid_stream_is_one_dropout() -> None:
    x = noise(-60.0)
    x[2 * FS:2 * FS + 2400] = 0.0
    gaps = dsp.digital_silence_gaps(x, FS)
    assert len(gaps) == 1
    assert gaps[0].start_s == pytest.approx(2.0) and gaps[0].duration_ms == pytest.approx(50.0)


def test_silence_at_the_edges_and_short_zero_runs_are_not_dropouts() -> None:
    x = noise(-60.0)
    x[:4800] = 0.0                 # stream opening
    x[-4800:] = 0.0                # stream closing
    x[FS:FS + 100] = 0.0           # 2 ms: too short
    assert dsp.digital_silence_gaps(x, FS) == ()


def test_gaps_close_together_count_once() -> None:
    x = noise(-60.0)
    x[FS:FS + 480] = 0.0
    x[FS + 960:FS + 1440] = 0.0    # 10 ms later: the same glitch
    assert len(dsp.digital_silence_gaps(x, FS)) == 1


# ------------------------------------------------------------------ hum

def test_50_hz_hum_level_in_noise() -> None:
    hum = dsp.mains_hum(tone(50, 0.01) + noise(-60.0), FS)
    assert hum.mains_hz == 50
    assert hum.level_dbfs == pytest.approx(-43.01, abs=0.3)


def test_60_hz_hum_with_harmonics_sums_their_power() -> None:
    x = tone(60, 0.01) + tone(180, 0.005) + noise(-60.0)
    hum = dsp.mains_hum(x, FS)
    assert hum.mains_hz == 60 and 3 in hum.harmonics
    assert hum.level_dbfs == pytest.approx(10 * np.log10(0.01**2 / 2 + 0.005**2 / 2), abs=0.3)


def test_broadband_noise_is_not_hum() -> None:
    assert dsp.mains_hum(noise(-30.0), FS).mains_hz is None


# ------------------------------------------------------------------ whole analysis

def speechlike(seconds: float, level_dbfs: float, seed: int = 5) -> np.ndarray:
    """Syllable-rate bursts of harmonic tones: what the VAD and P.56 take for speech."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * FS)) / FS
    f0 = 140 + 20 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(f0) / FS
    voiced = sum(np.sin(k * phase) / k for k in range(1, 20))
    syllables = (np.sin(2 * np.pi * 4 * t) > -0.2).astype(float)
    x = voiced * syllables * (1 + 0.1 * rng.normal(size=t.size))
    active = x[syllables > 0]
    return x * 10 ** (level_dbfs / 20) / np.sqrt(np.mean(active**2))


def test_analysis_splits_noise_and_speech() -> None:
    floor = noise(-60.0, seconds=9.0, seed=7)
    x = floor.copy()
    speech = speechlike(6.0, -26.0)
    x[3 * FS:] += speech
    r = analyze_capture((x * 32768).astype(np.int16), FS)
    assert r.speech_heard and r.noise_method == "vad"
    assert r.noise_dbfs == pytest.approx(-60.0, abs=1.0)
    # Pauses shorter than P.56's 0.2 s hangover count as active: the level is the RMS of the
    # whole spoken stretch.
    level = dsp.rms_dbfs(speech)
    assert r.speech_level_dbfs == pytest.approx(level, abs=1.0)
    assert r.snr_db == pytest.approx(level + 60.0, abs=2.0)
    assert r.dropout_count == 0 and r.clipping_pct == 0.0 and r.hum_hz is None


def test_noise_alone_is_not_speech() -> None:
    r = analyze_capture((noise(-45.0, 6.0) * 32768).astype(np.int16), FS)
    assert not r.speech_heard and r.speech_level_dbfs is None and r.snr_db is None
    assert r.noise_dbfs == pytest.approx(-45.0, abs=0.5)


def test_a_muted_microphone_is_silent() -> None:
    r = analyze_capture(np.zeros(5 * FS, dtype=np.int16), FS)
    assert r.silent and r.noise_dbfs is None and r.dropout_count == 0


def test_too_short_a_capture_is_a_problem_not_a_crash() -> None:
    assert analyze_capture(np.zeros(100, dtype=np.int16), FS).problem


def test_energy_fallback_when_the_vad_library_is_missing(monkeypatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "webrtcvad", None)  # import raises ImportError
    x = noise(-60.0, seconds=4.0)
    x[2 * FS:] += speechlike(2.0, -26.0)
    flags, name = dsp.speech_frames(x, FS)
    assert name == "energy"
    assert flags[: 2 * FS // 960].mean() < 0.1 and flags[2 * FS // 960:].mean() > 0.5


def test_webrtc_vad_separates_speech_from_noise() -> None:
    x = noise(-60.0, seconds=4.0)
    x[2 * FS:] += speechlike(2.0, -26.0)
    flags, name = dsp.speech_frames(x, FS)
    assert name == "webrtcvad" and flags.size == 4 * FS // 960
    assert flags[: 2 * FS // 960].mean() < 0.1 and flags[2 * FS // 960:].mean() > 0.5
