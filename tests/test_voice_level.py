"""The voice-level judgement and the volume suggestion on readings built by hand; the sound
server's volume curve and the peak meter against golden values. The lab with a real PulseAudio
headset is tests/test_voice_level_lab.py."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent_kit.core.i18n import set_language
from agent_kit.core.policy import PolicyError, load_policy
from agent_kit.core.results import Status
from agent_kit.evaluate.audio import evaluate_room
from agent_kit.evaluate.voice_level import suggest_volume
from probes.audio.capture import AudioReading
from probes.audio.devices import (
    AudioDevice,
    InputVolume,
    parse_pactl_list,
    pulse_input_volume,
    volume_db_to_pct,
    volume_pct_to_db,
)
from probes.audio.dsp import peaks

POLICY = load_policy()
MIC = "Jabra Evolve2 65"


@pytest.fixture(autouse=True)
def _english():
    set_language("en")


@pytest.mark.parametrize(("pct", "db"), [(100, 0.0), (50, -18.062), (30, -31.373),
                                         (70, -9.294), (20, -41.938), (150, 10.566)])
def test_cubic_volume_curve_golden_values(pct, db):
    # pa_sw_volume_to_dB(v) = 20 log10((v / PA_VOLUME_NORM)^3)
    assert volume_pct_to_db(pct) == pytest.approx(db, abs=0.001)
    assert volume_db_to_pct(db) == pytest.approx(pct, abs=0.01)


def test_zero_volume_is_silence_not_an_error():
    assert volume_pct_to_db(0) == -200.0


def test_pactl_volume_from_json_and_text_entries():
    json_entry = {"volume": {"front-left": {"value": 19661, "value_percent": "30%",
                                            "db": "-31.37 dB"},
                             "front-right": {"value": 13107, "value_percent": "20%",
                                             "db": "-41.94 dB"}},
                  "mute": False, "flags": ["HARDWARE", "DECIBEL_VOLUME", "LATENCY"]}
    vol = pulse_input_volume(json_entry)
    assert vol == InputVolume(percent=30.0, db=-31.37, muted=False)
    text = ("Source #3\n\tName: alsa_input.usb\n\tDescription: Jabra Evolve2 65\n"
            "\tMute: yes\n"
            "\tVolume: front-left: 19661 /  30% / -31.37 dB,   front-right: 13107 /  20% / "
            "-41.94 dB\n\t        balance -0.40\n"
            "\tBase Volume: 65536 / 100% / 0.00 dB\n"
            "\tFlags: HARDWARE HW_MUTE_CTRL HW_VOLUME_CTRL DECIBEL_VOLUME LATENCY \n")
    entry = parse_pactl_list(text)[0]
    assert pulse_input_volume(entry) == InputVolume(percent=30.0, db=-31.37, muted=True)


def test_a_volume_without_decibels_has_no_db():
    entry = {"volume": {"mono": {"value": 32768}}, "mute": False, "flags": ["HARDWARE"]}
    assert pulse_input_volume(entry) == InputVolume(percent=50.0, db=None, muted=False)
    assert pulse_input_volume({"name": "x"}) is None


def test_peaks_golden_values():
    fs = 48000
    t = np.arange(fs) / fs
    sine = 0.5 * np.sin(2 * np.pi * 1000 * t)
    p = peaks(sine, fs)
    assert p.peak_dbfs == pytest.approx(-6.02, abs=0.01) and p.near_full_scale_ms == 0.0
    hot = sine.copy()
    hot[:4800] *= 1.95   # 100 ms at 0.975 of full scale: -0.22 dBFS
    p = peaks(hot, fs)
    assert p.peak_dbfs == pytest.approx(20 * math.log10(0.975), abs=0.01)
    assert p.near_full_scale_ms == pytest.approx(100.0, abs=1.0)
    assert peaks(np.zeros(fs), fs).near_full_scale_ms == 0.0


def mic(percent: float | None = 30.0, *, db_mapped: bool = True, muted: bool = False):
    vol = None if percent is None else InputVolume(
        percent, volume_pct_to_db(percent) if db_mapped else None, muted)
    return AudioDevice(direction="input", name="alsa_input.usb-jabra", description=MIC,
                       kind="usb_headset", evidence=(), is_default=True, input_volume=vol)


def reading(level: float, *, peak: float | None = None, near_ms: float = 0.0, **kw):
    base = dict(device="pulse", sample_rate=48000, captured_s=9.0, prompted=False,
                vad="webrtcvad", noise_dbfs_a=-80.0, noise_dbfs=-78.0, noise_method="vad",
                noise_s=3.0, speech_s=4.0, speech_heard=True, speech_level_dbfs=level,
                speech_activity=0.6, snr_db=level + 78.0, hum_dbfs=-120.0,
                peak_dbfs=peak if peak is not None else level + 20.0,
                near_full_scale_ms=near_ms)
    base.update(kw)
    return AudioReading(**base)


def speech_level(r, microphone=None, policy=POLICY):
    return next(x for x in evaluate_room(r, policy, microphone) if x.id == "audio.speech_level")


def test_quiet_voice_at_30_percent_names_the_device_and_the_volume_to_set():
    # -44 dBFS at 30 %: +18 dB to the target is 30 % x 10^(18/60) = 59.9 % -> "about 60 %"
    result = speech_level(reading(-44.0), mic(30.0))
    assert result.status is Status.WARN
    assert result.fix == (f"Your microphone “{MIC}” is set to 30 %: raise its input volume to "
                          "about 60 % (Sound settings > Input), and keep the microphone at the "
                          "corner of your mouth, two fingers away.")
    assert result.details["suggested_volume_pct"] == 60
    assert result.details["voice"] == "too_quiet"
    assert "too quiet" in result.message


def test_a_very_quiet_voice_is_capped_at_100_percent():
    result = speech_level(reading(-58.0), mic(30.0))
    assert result.status is Status.FAIL
    assert result.details["suggested_volume_pct"] == 100
    assert "raise its input volume to about 100 %" in result.fix


def test_quiet_at_full_volume_says_move_the_microphone_and_ask_it():
    result = speech_level(reading(-50.0), mic(100.0))
    assert result.status is Status.FAIL
    assert "is already at 100 %" in result.fix and "ask IT" in result.fix


def test_without_a_volume_the_fix_names_the_device_and_without_a_device_stays_general():
    named = speech_level(reading(-50.0), mic(None))
    assert f"Raise the input volume of your microphone “{MIC}”" in named.fix
    assert named.details["input_volume_pct"] is None
    not_db = speech_level(reading(-50.0), mic(40.0, db_mapped=False))
    assert "Raise the input volume of your microphone" in not_db.fix
    general = speech_level(reading(-50.0))
    assert general.fix.startswith("Bring the headset's microphone to the corner of your mouth")


def test_too_loud_by_level_fails_and_says_how_far_to_lower():
    # -8 dBFS at 100 %: -18 dB to the target: 100 x 10^(-18/60) = 50.1 %
    result = speech_level(reading(-8.0, peak=0.0), mic(100.0))
    assert result.status is Status.FAIL
    assert result.details["voice"] == "too_loud"
    assert result.details["suggested_volume_pct"] == 50
    assert ("Your microphone “Jabra Evolve2 65” is set to 100 %: lower its input volume to "
            "about 50 %") in result.fix
    warn = speech_level(reading(-14.0, peak=0.0), mic(100.0))
    assert warn.status is Status.WARN and warn.details["voice"] == "too_loud"


def test_peaks_at_the_limit_warn_even_at_a_normal_level():
    result = speech_level(reading(-20.0, peak=-0.2, near_ms=25.0), mic(100.0))
    assert result.status is Status.WARN
    assert "peaks come within 1 dB" in result.message
    # headroom: -6 - (-0.2) = -5.8 dB -> 100 x 10^(-5.8/60) = 80 %
    assert result.details["suggested_volume_pct"] == 80
    few = speech_level(reading(-20.0, peak=-0.2, near_ms=1.0), mic(100.0))
    assert few.status is Status.PASS


def test_a_normal_voice_passes_with_no_fix_and_keeps_the_activity_detail():
    result = speech_level(reading(-26.0), mic(70.0))
    assert result.status is Status.PASS and result.fix is None
    assert result.details["activity"] == 0.6 and result.details["voice"] == "ok"


def test_a_muted_microphone_says_so_by_name():
    silent = reading(-120.0, silent=True, speech_heard=False, speech_level_dbfs=None,
                     snr_db=None, noise_dbfs_a=None, noise_dbfs=None)
    results = evaluate_room(silent, POLICY, mic(70.0, muted=True))
    fixes = [r.fix for r in results if r.fix and r.id != "audio.dropouts"]
    assert fixes and all(f"“{MIC}” is muted" in fix for fix in fixes)


@given(st.floats(-70, -1), st.floats(1, 150))
def test_the_suggestion_moves_the_level_towards_the_target(level, pct):
    vol = InputVolume(pct, volume_pct_to_db(pct), False)
    advice = suggest_volume(level, level + 15.0, -26.0, vol)
    assert advice is not None and 5 <= advice.suggested_pct <= 100
    if level < -27 and pct < 95:
        assert advice.suggested_pct >= round(pct / 5) * 5 - 5
    if level > -20:
        assert advice.suggested_pct <= pct + 5


def test_policy_keys_are_validated(tmp_path):
    site = tmp_path / "site.toml"
    site.write_text('[checks."audio.speech_level"]\nloud_warn = -18\ntarget = -24\n')
    params = load_policy(site).check("audio.speech_level").params
    assert (params["loud_warn"], params["target"], params["loud_fail"]) == (-18, -24, -10)
    for bad in ('loud_warn = "loud"', "near_clip_ms = true", "target = [1]"):
        site.write_text(f'[checks."audio.speech_level"]\n{bad}\n')
        with pytest.raises(PolicyError) as err:
            load_policy(site)
        assert "audio.speech_level" in str(err.value) and "must be" in str(err.value)


RANK = {Status.PASS: 0, Status.WARN: 1, Status.FAIL: 2}


@given(st.floats(-80, 0), st.floats(0, 30), st.floats(0, 50), st.floats(0, 50))
def test_further_from_the_target_is_never_better(level, away, near_ms, more_ms):
    """Quieter below the target, or louder (and longer at the limit) above it, never
    improves the verdict."""
    target = POLICY.check("audio.speech_level").params["target"]
    base = speech_level(reading(level, peak=min(0.0, level + 20), near_ms=near_ms), mic(50.0))
    if level <= target:
        worse = speech_level(reading(level - away, peak=min(0.0, level - away + 20),
                                     near_ms=near_ms), mic(50.0))
    else:
        louder = min(0.0, level + away)
        worse = speech_level(reading(louder, peak=min(0.0, louder + 20),
                                     near_ms=near_ms + more_ms), mic(50.0))
    assert RANK[worse.status] >= RANK[base.status]


def synthetic_capture(voice_dbfs: float | None, room_dbfs: float, seed: int = 1) -> np.ndarray:
    """9 s like the onboarding window: a white-noise room, and from 3 s on a harmonic voice
    (140 Hz +- 20 Hz, 19 harmonics, syllables at 4 Hz) of the given RMS level."""
    fs = 48000
    rng = np.random.default_rng(seed)
    t = np.arange(9 * fs) / fs
    x = rng.normal(0, 10 ** (room_dbfs / 20), t.size)
    if voice_dbfs is not None:
        phase = 2 * np.pi * np.cumsum(140 + 20 * np.sin(2 * np.pi * 0.7 * t)) / fs
        voice = sum(np.sin(k * phase) / k for k in range(1, 20)) * (
            np.sin(2 * np.pi * 4 * t) > -0.2)
        voice *= 10 ** (voice_dbfs / 20) / np.sqrt(np.mean(voice[3 * fs:] ** 2))
        x[3 * fs:] += voice[3 * fs:]
    return (np.clip(x, -1, 1 - 1 / 32768) * 32768).astype(np.int16)


def test_a_quiet_talker_with_the_room_turned_down_too_is_heard_and_a_room_alone_is_not():
    """A microphone turned down lowers voice and room together: the VAD hears the capture as
    if the volume were normal. Before, a -58 dBFS voice over a -82 dBFS room was "no speech"."""
    from probes.audio.capture import analyze_capture

    quiet = analyze_capture(synthetic_capture(-58.0, -82.0), 48000)
    assert quiet.speech_heard and quiet.speech_s >= 5.0
    assert quiet.speech_level_dbfs == pytest.approx(-58.0, abs=0.5)
    assert quiet.noise_dbfs == pytest.approx(-82.0, abs=1.5)
    assert quiet.vad_gain_db > 20
    assert speech_level(quiet, mic(30.0)).status is Status.FAIL
    for room in (-95.0, -82.0, -60.0, -45.0):
        alone = analyze_capture(synthetic_capture(None, room), 48000)
        assert not alone.speech_heard and alone.speech_s < 1.0, room
    normal = analyze_capture(synthetic_capture(-26.0, -60.0), 48000)
    assert normal.speech_heard and normal.speech_level_dbfs == pytest.approx(-26.0, abs=0.5)


def test_an_alsa_route_is_not_named_as_the_microphone(monkeypatch):
    from probes.audio import devices

    route = AudioDevice(direction="input", name="default", description="default", kind="virtual",
                        evidence=(), is_default=True, backend="portaudio")
    monkeypatch.setattr(devices, "_sound_server_present", lambda: False)
    monkeypatch.setattr(devices, "portaudio_inventory",
                        lambda: devices.DeviceInventory("portaudio", (route,)))
    assert devices.default_input_device() is None
    named = AudioDevice(direction="input", name="Headset Microphone (Jabra Evolve2 65)",
                        description="Headset Microphone (Jabra Evolve2 65)", kind="usb_headset",
                        evidence=(), is_default=True, backend="portaudio")
    monkeypatch.setattr(devices, "portaudio_inventory",
                        lambda: devices.DeviceInventory("portaudio", (named,)))
    assert devices.default_input_device() is named
    # Windows/macOS: the OS mixer's volume is not read yet (a typed placeholder, no guess)
    assert devices.os_mixer_input_volume(named.name) is None
