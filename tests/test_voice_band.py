"""The voice bandwidth math (probes/audio/voice_band.py) on synthetic captures with a known edge,
and its judgement (agent_kit/evaluate/audio.py).

Truth is the filter each test applies: speech-like sound (a harmonic series on a pitch, with a
breath-noise part, both falling with frequency like speech) band-limited with a brick wall at
the edge, or resampled from 8/16 kHz with scipy's polyphase resampler, with a room noise under
it, quantised to 16 bits as a microphone delivers it. The real-voice, real-PulseAudio version
is tests/test_voice_band_lab.py.
"""

from __future__ import annotations

import numpy as np
import pytest

from agent_kit.core.policy import PolicyError, load_policy
from agent_kit.core.results import Status
from agent_kit.evaluate.audio import evaluate_room, evaluate_voice_bandwidth
from probes.audio.capture import AudioReading
from probes.audio.voice_band import VoiceBand, band_class, measure_voice_band

FS = 48000
FRAME = 960                     # the capture's 20 ms frames
NOISE_S, SPEECH_S = (0.2, 1.8), (2.0, 6.0)
POLICY = load_policy()


def shaped(white: np.ndarray, tilt_db_per_octave: float) -> np.ndarray:
    """``white`` with a speech-like slope: flat to 500 Hz, then ``tilt`` dB per octave."""
    spec = np.fft.rfft(white)
    f = np.fft.rfftfreq(white.size, 1 / FS)
    gain = 10 ** (tilt_db_per_octave / 20 * np.log2(np.maximum(f, 500.0) / 500.0))
    gain[f < 80] = 0.0
    return np.fft.irfft(spec * gain, white.size)


def speechlike(f0: float, tilt: float, seconds: float, seed: int) -> np.ndarray:
    """A voiced part (harmonics of ``f0`` with a wobbling pitch) and a breath/fricative part."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * FS)) / FS
    pitch = f0 * (1 + 0.05 * np.sin(2 * np.pi * 3 * t))
    phase = 2 * np.pi * np.cumsum(pitch) / FS
    voiced = sum(np.sin(k * phase + rng.uniform(0, 2 * np.pi)) for k in range(1, int(20000 / f0)))
    syllables = 0.5 + 0.5 * np.sin(2 * np.pi * 4 * t) ** 2
    x = shaped(voiced * syllables, tilt) + 0.5 * shaped(rng.normal(size=t.size), tilt)
    return x / np.sqrt(np.mean(x**2))


def brick_wall(x: np.ndarray, edge_hz: float) -> np.ndarray:
    spec = np.fft.rfft(x)
    spec[np.fft.rfftfreq(x.size, 1 / FS) > edge_hz] = 0.0
    return np.fft.irfft(spec, x.size)


def through_rate(x: np.ndarray, rate: int) -> np.ndarray:
    """A path that runs at ``rate`` inside: down and back up with a polyphase FIR (scipy)."""
    from scipy import signal

    down = signal.resample_poly(x, rate // 1000, FS // 1000)
    return signal.resample_poly(down, FS // 1000, rate // 1000)[: x.size]


def pink(level_db: float, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    spec = np.fft.rfft(rng.normal(size=n))
    f = np.fft.rfftfreq(n, 1 / FS)
    spec[1:] /= np.sqrt(f[1:])
    spec[0] = 0
    x = np.fft.irfft(spec, n)
    return x / np.sqrt(np.mean(x**2)) * 10 ** (level_db / 20)


def capture(path, *, speech_db: float = -26.0, room_db: float = -60.0, f0: float = 120.0,
            tilt: float = -6.0, seed: int = 1, room_after_path: bool = False,
            speech_s: tuple[float, float] = SPEECH_S):
    """(samples, speech flags, noise flags): room noise all along, the voice in ``speech_s``;
    ``path`` filters what the microphone hears (voice and room together, as a headset's
    narrowband stage does), or only the voice when ``room_after_path``."""
    n = int(7.0 * FS)
    a, b = (int(s * FS) for s in speech_s)
    voice = np.zeros(n)
    voice[a:b] = speechlike(f0, tilt, (b - a) / FS, seed) * 10 ** (speech_db / 20)
    room = pink(room_db, n, seed + 100)
    x = path(voice) + room if room_after_path else path(voice + room)
    x = np.round(x * 32768) / 32768          # 16-bit samples, as the microphone sends them
    frames = np.arange(n // FRAME) * FRAME / FS
    speech = (frames >= speech_s[0]) & (frames < speech_s[1] - 0.02)
    noise = (frames >= NOISE_S[0]) & (frames < NOISE_S[1])
    return x, speech, noise


def band_of(path, **kw) -> VoiceBand:
    x, speech, noise = capture(path, **kw)
    got = measure_voice_band(x, FS, FRAME, speech, noise)
    assert got is not None
    return got


def full(x: np.ndarray) -> np.ndarray:
    return x


@pytest.mark.parametrize(("edge_hz", "band"), [(3400, "narrowband"), (7000, "wideband"),
                                               (14000, "superwideband")])
@pytest.mark.parametrize(("f0", "tilt"), [(110.0, -7.0), (220.0, -5.0)])  # lower / higher voice
@pytest.mark.parametrize("speech_db", [-20.0, -40.0])
def test_a_brick_wall_edge_is_found_for_any_voice_and_level(edge_hz, band, f0, tilt,
                                                            speech_db):
    got = band_of(lambda x: brick_wall(x, edge_hz), f0=f0, tilt=tilt, speech_db=speech_db)
    assert got.band == band and not got.noise_limited
    assert edge_hz - 250 <= got.edge_hz <= edge_hz + 500, got


def test_an_unfiltered_path_is_fullband():
    got = band_of(full, tilt=-4.0)
    assert got.band == "fullband" and got.edge_hz >= 20000


@pytest.mark.parametrize(("rate", "band", "top"), [(8000, "narrowband", 4000),
                                                   (16000, "wideband", 8000),
                                                   (32000, "superwideband", 16000)])
def test_a_path_that_runs_at_a_lower_rate_inside_shows_the_resamplers_edge(rate, band, top):
    """The USB headset that is 8 kHz inside: its 48 kHz stream still stops at 4 kHz."""
    got = band_of(lambda x: through_rate(x, rate))
    assert got.band == band and not got.noise_limited
    # a polyphase resampler's transition band reaches ~12 % past the old Nyquist before its
    # stop band is 40 dB down (scipy's Kaiser window): the edge lies there, below the next class
    assert top * 0.8 <= got.edge_hz <= top * 1.15, got


@pytest.mark.parametrize("room_after_path", [False, True])
@pytest.mark.parametrize("room_db", [-75.0, -55.0])
def test_room_noise_under_the_voice_does_not_move_the_edge(room_after_path, room_db):
    for edge_hz, band in ((3400, "narrowband"), (7000, "wideband")):
        got = band_of(lambda x, e=edge_hz: brick_wall(x, e), room_db=room_db,
                      room_after_path=room_after_path)
        assert got.band == band, (edge_hz, room_db, room_after_path, got)


def test_a_room_loud_enough_to_hide_the_high_tones_is_not_called_narrowband():
    """Wideband voice under loud full-band noise: never a plain "narrowband" finding."""
    got = band_of(lambda x: brick_wall(x, 7000), room_db=-36.0, room_after_path=True,
                  tilt=-9.0)
    assert got.band != "narrowband" or got.noise_limited, got
    assert evaluate_voice_bandwidth(reading(got), POLICY).status is not Status.WARN


def test_weak_resampler_images_above_a_gap_do_not_widen_the_band():
    """A narrowband path whose up-sampler leaves images of the voice 30 dB down at 4.6-7.4 kHz
    (within the 40 dB speech range): the empty stretch at 3.4-4.6 kHz ends the band."""
    def imaged(x: np.ndarray) -> np.ndarray:
        nb = brick_wall(x, 3400)
        t = np.arange(x.size) / FS
        image = brick_wall(nb * np.cos(2 * np.pi * 8000 * t), 7400)  # mirrors 0-3.4k to 4.6k+
        return nb + image * 10 ** (-30 / 20)
    got = band_of(imaged)
    assert got.band == "narrowband" and got.edge_hz <= 3750, got


def test_too_little_speech_or_no_room_is_no_measurement():
    x, speech, noise = capture(full, speech_s=(2.0, 2.8))
    assert measure_voice_band(x, FS, FRAME, speech, noise) is None      # 0.78 s of speech
    x, speech, noise = capture(full)
    assert measure_voice_band(x, FS, FRAME, speech, noise & False) is None


def test_a_voice_buried_in_noise_everywhere_is_no_measurement():
    x, speech, noise = capture(full, speech_db=-50.0, room_db=-30.0, room_after_path=True)
    assert measure_voice_band(x, FS, FRAME, speech, noise) is None


@pytest.mark.parametrize(("edge", "band"), [(3500, "narrowband"), (4999, "narrowband"),
                                            (5000, "wideband"), (8000, "wideband"),
                                            (10000, "superwideband"), (18000, "superwideband"),
                                            (19000, "fullband"), (24000, "fullband")])
def test_class_boundaries(edge, band):
    assert band_class(edge) == band


# ------------------------------------------------------------------ the judgement

def reading(band: VoiceBand | None, **kw) -> AudioReading:
    base = dict(device="pulse", sample_rate=48000, captured_s=9.0, prompted=True,
                vad="webrtcvad", noise_dbfs_a=-62.0, noise_dbfs=-58.0, noise_method="vad",
                noise_s=3.0, speech_s=4.0, speech_heard=True, speech_level_dbfs=-26.0,
                speech_activity=0.6, snr_db=32.0, hum_dbfs=-120.0, voice_band=band)
    base.update(kw)
    return AudioReading(**base)


def vb(edge_hz: float, *, noise_limited: bool = False) -> VoiceBand:
    return VoiceBand(edge_hz, band_class(edge_hz), noise_limited, 200, 80)


def test_narrowband_warns_with_a_fix_and_wideband_or_more_passes():
    nb = evaluate_voice_bandwidth(reading(vb(3500)), POLICY)
    assert nb.status is Status.WARN and nb.value == 3.5 and nb.unit == "kHz"
    assert nb.details["band"] == "narrowband" and nb.details["edge_hz"] == 3500
    assert "telephone-quality (narrowband)" in nb.fix and "USB cable" in nb.fix
    assert "3.5 kHz" in nb.message
    for edge in (7250, 14000, 20000):
        result = evaluate_voice_bandwidth(reading(vb(edge)), POLICY)
        assert result.status is Status.PASS and result.fix is None, edge


def test_the_policy_sets_the_status_of_each_class(tmp_path):
    strict = tmp_path / "strict.toml"
    strict.write_text('[checks."audio.voice_bandwidth"]\nnarrowband = "fail"\n'
                      'wideband = "warn"\n')
    policy = load_policy(strict)
    assert evaluate_voice_bandwidth(reading(vb(3500)), policy).status is Status.FAIL
    wide = evaluate_voice_bandwidth(reading(vb(7250)), policy)
    assert wide.status is Status.WARN and wide.fix
    bad = tmp_path / "bad.toml"
    bad.write_text('[checks."audio.voice_bandwidth"]\nnarrowband = "block"\n')
    with pytest.raises(PolicyError, match="must be one of"):
        load_policy(bad)


def test_no_speech_too_little_speech_and_a_noisy_room_are_unknown():
    quiet = dict(speech_heard=False, speech_level_dbfs=None, snr_db=None, speech_activity=None)
    for prompted in (True, False):   # the guided test, the monitor between calls
        got = evaluate_voice_bandwidth(reading(None, prompted=prompted, **quiet), POLICY)
        assert got.status is Status.UNKNOWN and "no speech heard" in got.message
    short = evaluate_voice_bandwidth(reading(None, speech_s=1.2), POLICY)
    assert short.status is Status.UNKNOWN and "too little speech" in short.message
    hidden = evaluate_voice_bandwidth(reading(vb(3500, noise_limited=True)), POLICY)
    assert hidden.status is Status.UNKNOWN and "window" in hidden.fix
    # a wide band seen through noise is still a finding (a lower bound)
    assert evaluate_voice_bandwidth(reading(vb(7250, noise_limited=True)),
                                    POLICY).status is Status.PASS


def test_the_room_unit_reports_it_after_the_room_checks_even_when_recording_failed():
    ids = [r.id for r in evaluate_room(reading(vb(7250)), POLICY)]
    assert ids[-1] == "audio.voice_bandwidth"
    broken = evaluate_room(reading(None, problem="device unavailable"), POLICY)
    assert broken[-1].id == "audio.voice_bandwidth" and broken[-1].status is Status.UNKNOWN
    muted = evaluate_room(reading(None, silent=True, noise_dbfs_a=None, noise_dbfs=None),
                          POLICY)
    assert muted[-1].id == "audio.voice_bandwidth" and "muted" in muted[-1].message


def test_a_narrowband_voice_points_the_diagnosis_at_the_headset_with_its_own_fix():
    from agent_kit.core.results import CheckReport, overall_verdict
    from agent_kit.evaluate.diagnosis import rank_causes

    results = tuple(evaluate_room(reading(vb(3750)), POLICY))
    report = CheckReport(verdict=overall_verdict(list(results)), policy_name="p",
                         policy_version="1", started_at="2026-12-02T07:00:00+00:00",
                         duration_s=9.0, checks=results)
    top = rank_causes(report)[0]
    assert top.key == "headset" and top.evidence[0] == "audio.voice_bandwidth"
    assert top.fix is not None and "USB cable" in top.fix
