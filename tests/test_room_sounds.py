"""audio.room_sounds without a sound server: the classifier's parts on synthetic signals whose
truth the test sets, and the judgement (levels, dominance, whose voice) on readings."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from agent_kit.core.policy import PolicyError, load_policy
from agent_kit.core.results import Status
from agent_kit.evaluate.audio import evaluate_room
from agent_kit.evaluate.room_sounds import evaluate_room_sounds, fix_for
from probes.audio import room_sounds as rs
from probes.audio.capture import AudioReading, analyze_capture
from probes.audio.room_sounds import RoomSounds, analyze_room

FS = 48000


def white(level_dbfs: float, seconds: float, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).normal(0.0, 10 ** (level_dbfs / 20), int(seconds * FS))


def bursts(times_s: list[float], peak_dbfs: float, seconds: float, seed: int = 2) -> np.ndarray:
    """Noise bursts with an instant attack and a 60 ms decay, starting at ``times_s``."""
    rng = np.random.default_rng(seed)
    out = np.zeros(int(seconds * FS))
    t = np.arange(int(0.4 * FS)) / FS
    for at in times_s:
        i = int(at * FS)
        burst = rng.normal(0.0, 10 ** (peak_dbfs / 20), t.size) * np.exp(-t / 0.06)
        out[i:i + t.size] += burst[: out.size - i]
    return out


def syllables(level_dbfs: float, seconds: float, rate_hz: float = 4.0, seed: int = 3):
    """Speech-band noise whose level rises and falls at a syllable rate (full modulation)."""
    x = white(level_dbfs, seconds, seed)
    spec = np.fft.rfft(x)
    f = np.fft.rfftfreq(x.size, 1 / FS)
    spec[(f < 300) | (f > 3400)] = 0
    band = np.fft.irfft(spec, n=x.size)
    t = np.arange(x.size) / FS
    return band * (0.5 - 0.5 * np.cos(2 * np.pi * rate_hz * t)) * 2


def test_steady_noise_has_no_bangs_no_rhythm_and_its_level():
    room = analyze_room(white(-45.0, 3.0), FS)
    assert room is not None and room.impulses == 0 and not room.voices
    assert room.syllabic_ratio < rs.SYLLABIC_RATIO
    assert room.floor_dbfs == pytest.approx(-45.0, abs=1.0)   # quietest 30 % reads a bit low
    assert room.spread_db < 1.0 and room.flatness > 0.8         # white: flat and steady


def test_bangs_are_counted_with_their_peak_and_kept_out_of_the_floor():
    x = white(-70.0, 3.0) + bursts([0.3, 1.2, 2.1], -20.0, 3.0)
    room = analyze_room(x, FS)
    assert room is not None and room.impulses == 3
    assert room.impulse_peak_dbfs == pytest.approx(-20.0, abs=2.0)
    assert room.floor_dbfs == pytest.approx(-70.0, abs=2.0)
    assert not room.voices


def test_a_held_sound_is_no_bang():
    """A sound that starts at once but holds its level (a syllable, a machine starting)."""
    x = white(-70.0, 3.0)
    x[int(1.0 * FS):int(1.4 * FS)] += white(-25.0, 0.4, seed=9)
    room = analyze_room(x, FS)
    assert room is not None and room.impulses == 0


def test_syllabic_rhythm_stands_out_from_steady_noise():
    steady = analyze_room(white(-50.0, 3.0), FS)
    rhythm = analyze_room(syllables(-45.0, 3.0) + white(-70.0, 3.0), FS)
    assert steady is not None and rhythm is not None
    assert rhythm.syllabic_ratio > 10 * rs.SYLLABIC_RATIO > steady.syllabic_ratio


def test_under_a_second_says_nothing():
    assert analyze_room(white(-50.0, 0.9), FS) is None


def test_the_guided_capture_listens_to_the_quiet_phase_only():
    quiet = white(-70.0, 2.0)
    talk = white(-70.0, 3.0) + bursts([0.5, 1.5], -20.0, 3.0)
    reading = analyze_capture(np.concatenate((quiet, talk)), FS, prompted=True, room_s=2.0)
    assert reading.room is not None and reading.room.seconds == pytest.approx(2.0)
    assert reading.room.impulses == 0
    whole = analyze_capture(np.concatenate((quiet, talk)), FS)
    assert whole.room is not None and whole.room.impulses == 2


# ------------------------------------------------------------------ the judgement

def sounds(**kw) -> RoomSounds:
    base = dict(seconds=3.0, floor_dbfs=-70.0, floor_dbfs_a=-72.0, spread_db=0.5,
                flatness=0.6, voices=False, voice_s=0.0, voices_dbfs=None, syllabic_ratio=1.0,
                impulses=0, impulse_peak_dbfs=None, vad="webrtcvad")
    return RoomSounds(**{**base, **kw})


def reading(room: RoomSounds | None, prompted: bool = True) -> AudioReading:
    return AudioReading("pulse", FS, 9.0, prompted, vad="webrtcvad", noise_dbfs_a=-60.0,
                        noise_dbfs=-58.0, noise_method="vad", noise_s=3.0, room=room)


VOICES = dict(voices=True, voice_s=2.0, voices_dbfs=-48.0, syllabic_ratio=20.0)
BANGS = dict(impulses=3, impulse_peak_dbfs=-22.0)
FAN = dict(floor_dbfs=-44.0, floor_dbfs_a=-46.0)


@pytest.mark.parametrize(("kw", "kind"), [
    ({}, "quiet"), (FAN, "steady"), (VOICES, "voices"), (BANGS, "impulses"),
    ({**FAN, **VOICES}, "voices"), ({**FAN, **BANGS}, "impulses"),
    ({**FAN, **BANGS, **VOICES}, "voices")])
def test_each_kind_and_the_dominant_one_with_its_fix(kw, kind):
    result = evaluate_room_sounds(reading(sounds(**kw)), load_policy())
    assert result.value == kind
    if kind == "quiet":
        assert result.status is Status.PASS and result.fix is None
    else:
        assert result.status is Status.WARN and result.fix_msg == fix_for(kind)
        assert result.details["kind"] == kind


def test_levels_under_the_policy_are_not_judged():
    faint = sounds(voices=True, voice_s=2.0, voices_dbfs=-60.0, syllabic_ratio=20.0,
                   impulses=2, impulse_peak_dbfs=-45.0, floor_dbfs_a=-55.0)
    result = evaluate_room_sounds(reading(faint), load_policy())
    assert (result.status, result.value) == (Status.PASS, "quiet")
    assert result.details["voices_dbfs"] == -60.0 and result.details["heard"] == []


def test_a_site_policy_sets_levels_and_statuses(tmp_path):
    site = tmp_path / "site.toml"
    site.write_text('[checks."audio.room_sounds"]\nvoices = "fail"\nvoices_dbfs = -65\n'
                    'steady = "pass"\n')
    policy = load_policy(site)
    faint = sounds(voices=True, voice_s=2.0, voices_dbfs=-60.0, syllabic_ratio=20.0, **FAN)
    result = evaluate_room_sounds(reading(faint), policy)
    assert (result.status, result.value) == (Status.FAIL, "voices")
    fan = evaluate_room_sounds(reading(sounds(**FAN)), policy)
    assert (fan.status, fan.value) == (Status.PASS, "steady")


@pytest.mark.parametrize("line", ['voices = "loud"', 'voices_dbfs = "-50"', "steady = true",
                                  "own_voice = -40"])
def test_a_malformed_policy_value_is_refused(tmp_path, line):
    site = tmp_path / "bad.toml"
    site.write_text(f'[checks."audio.room_sounds"]\n{line}\n')
    with pytest.raises(PolicyError):
        load_policy(site)


def test_the_agents_own_voice_in_an_unprompted_capture_is_talking_not_voices():
    own = sounds(voices=True, voice_s=2.5, voices_dbfs=-28.0, syllabic_ratio=30.0)
    monitor = evaluate_room_sounds(reading(own, prompted=False), load_policy())
    assert (monitor.status, monitor.value) == (Status.UNKNOWN, "talking")
    assert monitor.details["own_voice"] is True
    # asked to stay quiet, a voice this close is someone else's (or the agent did not)
    guided = evaluate_room_sounds(reading(own, prompted=True), load_policy())
    assert (guided.status, guided.value) == (Status.WARN, "voices")
    far = evaluate_room_sounds(reading(sounds(**VOICES), prompted=False), load_policy())
    assert far.value == "voices" and far.details["own_voice"] is False


def test_room_sounds_is_one_of_the_room_checks_and_unknown_without_a_reading():
    results = {r.id: r for r in evaluate_room(reading(None), load_policy())}
    assert results["audio.room_sounds"].status is Status.UNKNOWN
    broken = AudioReading(None, FS, 0.0, False, problem="no device")
    assert {r.id for r in evaluate_room(broken, load_policy())} >= {"audio.room_sounds"}


def test_far_voices_are_no_call_for_the_monitor_but_the_agents_are():
    from agent_kit.loop.monitor import call_in_progress

    policy = load_policy()
    talking = dataclasses.replace(
        reading(sounds(voices=True, voice_s=2.5, voices_dbfs=-28.0, syllabic_ratio=30.0),
                prompted=False),
        speech_s=3.0, speech_heard=True, speech_level_dbfs=-27.0, speech_activity=0.6,
        snr_db=30.0)
    assert call_in_progress(evaluate_room(talking, policy)) is True
    tv = dataclasses.replace(talking, room=sounds(**VOICES), speech_level_dbfs=-48.0)
    assert call_in_progress(evaluate_room(tv, policy)) is False


def test_the_monitor_does_not_judge_room_voices_during_a_call(tmp_path):
    """Two speech captures in a row are a call: audio.room_sounds is then 'not judged'."""
    import httpx

    from agent_kit.link.client import CenterClient
    from agent_kit.loop.monitor import Monitor, MonitorDeps
    from agent_kit.loop.spool import Spool
    from agent_kit.run.units import ProbeContext, ProbeUnit
    from tests.test_heartbeat_client import ENR, FakeCenter
    from tests.test_monitor import Clocks

    clocks = Clocks()
    speaking = {"now": False}

    def room(ctx: ProbeContext):
        if speaking["now"]:   # the agent's own voice, near the microphone
            own = sounds(voices=True, voice_s=2.5, voices_dbfs=-30.0, syllabic_ratio=30.0)
            audio = dataclasses.replace(reading(own, prompted=False), speech_s=3.0,
                                        speech_heard=True, speech_level_dbfs=-30.0,
                                        speech_activity=0.6, snr_db=30.0)
        else:                 # a TV across the room
            audio = reading(sounds(**VOICES), prompted=False)
        return evaluate_room(audio, ctx.policy)

    unit = ProbeUnit("room", room, timeout_s=5.0)
    client = CenterClient(ENR, transport=httpx.MockTransport(FakeCenter()),
                          clock=lambda: clocks.wall)
    monitor = Monitor(MonitorDeps(
        units=(unit,), policy=load_policy(), enrollment=ENR,
        context_factory=lambda pol: ProbeContext(policy=pol), client=client,
        spool=Spool(tmp_path / "spool.db", ENR.agent_id), notify=lambda *_: None,
        clock=lambda: clocks.wall, monotonic=lambda: clocks.mono,
        state_file=tmp_path / "gate.json"), interval_s=15.0)

    def cycle():
        clocks.advance(60.0)
        monitor.cycle()
        return monitor.latest["audio.room_sounds"]

    assert cycle().value == "voices" and not monitor.in_call     # a TV: no call
    speaking["now"] = True
    assert cycle().value == "talking" and not monitor.in_call
    judged = cycle()
    assert monitor.in_call and judged.status is Status.UNKNOWN and judged.value is None
    speaking["now"] = False
    assert cycle().value == "voices" and not monitor.in_call


def test_between_the_wearers_phrases_the_room_is_judged():
    own = sounds(voices=True, voice_s=2.5, voices_dbfs=-28.0, syllabic_ratio=30.0)
    gap_tv = sounds(seconds=1.4, **VOICES)
    talked = dataclasses.replace(reading(own, prompted=False), room_between_speech=gap_tv)
    result = evaluate_room_sounds(talked, load_policy())
    assert (result.status, result.value) == (Status.WARN, "voices")
    assert result.details["between_speech"] is True and result.details["own_voice"] is True
    assert result.details["room_s"] == 1.4
    # a gap that is the wearer again (or none): not judged
    again = dataclasses.replace(talked, room_between_speech=own)
    assert evaluate_room_sounds(again, load_policy()).value == "talking"


def test_an_unprompted_capture_finds_the_pause_between_loud_phrases():
    """Loud speech-band bursts the VAD calls speech, then 2 s of steady noise: the pause."""
    rng = np.random.default_rng(5)
    t = np.arange(2 * FS) / FS
    loud = syllables(-22.0, 2.0) * (1 + 0.2 * np.sin(2 * np.pi * 150 * t))
    x = np.concatenate((loud, white(-70.0, 0.3), white(-45.0, 2.0))) + rng.normal(0, 1e-4,
                                                                            int(4.3 * FS))
    reading = analyze_capture(x, FS)
    assert reading.room_between_speech is not None      # the VAD calls the bursts speech
    assert reading.room_between_speech.seconds >= 1.0
    assert not reading.room_between_speech.voices


def test_the_diagnosis_points_voices_and_bangs_at_the_room_with_their_fix():
    from agent_kit.core.results import CheckReport, overall_verdict
    from agent_kit.evaluate.diagnosis import rank_causes

    def report(room_result):
        checks = (room_result,)
        return CheckReport(verdict=overall_verdict(checks), policy_name="p",
                           policy_version="1", started_at="2026-12-02T07:00:00+00:00",
                           duration_s=9.0, checks=checks, version="0.1.0")

    policy = load_policy()
    voices = evaluate_room_sounds(reading(sounds(**VOICES)), policy)
    causes = rank_causes(report(voices))
    assert causes[0].key == "room" and causes[0].fix == voices.fix
    steady = evaluate_room_sounds(reading(sounds(**FAN)), policy)
    assert rank_causes(report(steady)) == ()    # audio.noise weighs steady noise
