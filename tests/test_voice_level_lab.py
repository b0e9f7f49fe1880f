"""The voice's level (too quiet, too loud) against a REAL PulseAudio virtual USB headset.

The microphone is a pipe source described as a USB headset; the test plays the person into it
(espeak-ng speech over a quiet room) and turns its input volume with ``pactl
set-source-volume``, as a person does in the sound settings. PulseAudio applies a pipe
source's volume to the samples in software (``pa_source_post`` scales every chunk by the
source's soft volume: (percent / 100)^3 on its cubic curve), so what the agent records is the
file fed scaled by the volume the test set.

Ground truth, never the product's code: the level sox measures on the file fed ("RMS lev dB"
of the spoken stretch, and its "Pk lev dB"), plus the volume's gain 20 log10((v/100)^3) that
the test computes from the percentage it set; the volume the fix should suggest follows from
those two and the policy's target (the same cubic curve, written out here). One PulseAudio
daemon serves the module.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from agent_kit.core.i18n import set_language
from agent_kit.core.policy import load_policy
from agent_kit.core.results import Status
from agent_kit.evaluate.audio import evaluate_room
from agent_kit.run.microphone_step import recorded_microphone
from probes.audio.capture import measure_audio
from probes.audio.devices import default_input_device, parse_pactl_list, pulse_input_volume
from tests.lab.pulse import RATE, PulseServer, pulse_server, read_wav, sox, write_wav

pytestmark = [pytest.mark.lab, pytest.mark.timing]

QUIET_S, SPEECH_S = 2.0, 5.0
MIC = "Jabra Evolve2 65"
SENTENCE = "Good morning, and thank you for calling. How can I help you today?"
TARGET_DBFS = -26.0   # the default policy's audio.speech_level target


def sox_stats(path: Path) -> dict[str, float]:
    """sox's ``stats`` figures (RMS lev dB, Pk lev dB, ...) as numbers."""
    out: dict[str, float] = {}
    for line in sox(str(path), "-n", "stats").splitlines():
        key, _, value = line.rpartition(" ")
        try:
            out[key.strip()] = float(value)
        except ValueError:
            continue
    return out


def volume_gain_db(percent: float) -> float:
    """The truth for a PulseAudio soft volume: the samples are scaled by (percent/100)^3."""
    return 20.0 * math.log10((percent / 100.0) ** 3)


def expected_suggestion(level_dbfs: float, peak_dbfs: float, volume_pct: float) -> int:
    """The volume that brings ``level_dbfs`` (as recorded) to the target, keeping 6 dB of
    headroom over the peak, capped at 100 % and rounded to 5 %, on PulseAudio's curve."""
    gain = min(TARGET_DBFS - level_dbfs, -6.0 - peak_dbfs)
    wanted = 100.0 * ((volume_pct / 100.0) ** 3 * 10 ** (gain / 20.0)) ** (1 / 3)
    return int(5 * round(min(100.0, max(5.0, wanted)) / 5))


class Voice:
    """One version of the sentence: the samples fed and sox's level and peak of the file."""

    def __init__(self, d: Path, name: str, samples: np.ndarray) -> None:
        self.path = write_wav(d / f"{name}.wav", samples)
        self.samples = read_wav(self.path)
        trimmed = d / f"{name}_trimmed.wav"
        sox(str(self.path), str(trimmed), "silence", "1", "0.02", "0.1%", "reverse",
            "silence", "1", "0.02", "0.1%", "reverse")
        stats = sox_stats(trimmed)
        self.level_db = stats["RMS lev dB"]   # the spoken stretch: what P.56 calls active
        self.peak_db = stats["Pk lev dB"]


class Signals:
    def __init__(self, d: Path) -> None:
        raw = d / "speech22k.wav"
        subprocess.run(["espeak-ng", "-w", str(raw), SENTENCE], check=True, timeout=60,
                       capture_output=True)
        sox(str(raw), "-r", str(RATE), "-b", "16", str(d / "speech.wav"))
        base = read_wav(d / "speech.wav")
        ref = Voice(d, "ref", base)
        # The speech at the levels the scenarios need at the microphone (before the volume):
        # scaled by a plain gain, so sox's figures on each file are the truth.
        self.normal = Voice(d, "normal", base * 10 ** ((-26.0 - ref.level_db) / 20))
        self.near_clip = Voice(d, "near_clip", base * 10 ** ((-0.3 - ref.peak_db) / 20))
        # A hot voice held under full scale by a limiter, as headsets with an AGC deliver it:
        # sox's gain with its limiter (+8 dB): about -15 dBFS active, peaks at -0.1 dBFS.
        sox(str(d / "speech.wav"), str(d / "hot_sox.wav"), "gain", "-l", "8")
        self.hot = Voice(d, "hot", read_wav(d / "hot_sox.wav"))
        self.room_file = d / "room.wav"
        sox("-n", "-r", str(RATE), "-c", "1", "-b", "16", str(self.room_file), "synth", "12",
            "pinknoise", "vol", "0.01")
        self.room = read_wav(self.room_file)

    def speech_over_room(self, voice: Voice | None) -> np.ndarray:
        """QUIET_S (+ the settle time) of room, then the sentence over the room, then room."""
        lead = int((QUIET_S + 0.5) * RATE)
        size = voice.samples.size if voice is not None else int(3 * RATE)
        total = lead + size + RATE
        out = self.room[np.arange(total) % self.room.size].copy()
        if voice is not None:
            out[lead:lead + size] += voice.samples
        return out


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    set_language("en")
    signals = Signals(tmp_path_factory.mktemp("voice-level"))
    with pulse_server() as server:
        server.add_speaker("headset_out", MIC, bus="usb", form_factor="headset", default=True)
        feed = server.add_microphone("headset_mic", MIC, bus="usb", form_factor="headset",
                                     vendor_id="0b0e", product_id="24f9", default=True)
        feed.set_background(signals.room)
        yield server, feed, signals
        assert feed.error is None, f"the microphone feed failed: {feed.error}"


def record(lab, voice: Voice | None, volume_pct: float):
    """Set the input volume, play the person, capture and judge as ``agent-kit check``'s room
    unit does (unprompted: a silent speech phase is "no speech heard")."""
    server, feed, signals = lab
    server.pactl("set-source-volume", "headset_mic", f"{volume_pct:g}%")
    feed.play(signals.speech_over_room(voice), then=signals.room)
    reading = measure_audio(quiet_s=QUIET_S, speech_s=SPEECH_S)
    microphone = recorded_microphone(reading)
    results = {r.id: r for r in evaluate_room(reading, load_policy(), microphone)}
    return reading, microphone, results


def test_the_volume_the_test_sets_is_what_the_agent_reads(lab):
    server, _, _ = lab
    for pct in (30, 55, 100):
        server.pactl("set-source-volume", "headset_mic", f"{pct}%")
        mic = default_input_device()
        assert mic is not None and mic.description == MIC
        assert mic.input_volume is not None and not mic.input_volume.muted
        assert mic.input_volume.percent == pytest.approx(pct, abs=0.01)
        assert mic.input_volume.db == pytest.approx(volume_gain_db(pct), abs=0.01)


def test_pactl_text_and_json_read_the_same_volume(lab):
    """pactl < 16 has no JSON: the text parser must give the same volume and mute state."""
    server, _, _ = lab
    server.pactl("set-source-volume", "headset_mic", "42%")
    try:
        server.pactl("set-source-mute", "headset_mic", "1")
        as_json = {e["name"]: pulse_input_volume(e)
                   for e in json.loads(server.pactl("-f", "json", "list", "sources"))}
        text = subprocess.run(["pactl", "list", "sources"], capture_output=True, text=True,
                              timeout=10, env={**server.env, "LC_ALL": "C"}).stdout
        as_text = {e["name"]: pulse_input_volume(e) for e in parse_pactl_list(text)}
    finally:
        server.pactl("set-source-mute", "headset_mic", "0")
    assert as_text == as_json
    assert as_json["headset_mic"].muted
    assert as_json["headset_mic"].percent == pytest.approx(42, abs=0.01)


def test_a_muted_microphone_is_named_in_the_fix(lab):
    server, _, sig = lab
    server.pactl("set-source-mute", "headset_mic", "1")
    try:
        reading, mic, results = record(lab, sig.normal, 100)
    finally:
        server.pactl("set-source-mute", "headset_mic", "0")
    assert reading.silent, reading
    assert mic is not None and mic.input_volume is not None and mic.input_volume.muted
    assert f"Your microphone “{MIC}” is muted in the sound settings" in \
        results["audio.noise"].fix


def test_a_quiet_voice_at_a_low_input_volume_is_too_quiet_with_the_volume_to_set(lab):
    """Normal speech at the microphone (-26 dBov), the input volume at 30 %: about -58 dBov
    recorded. Too quiet (not "no speech heard"), and the fix names the headset, the 30 % the
    test set and the volume that brings the voice back to the target."""
    sig = lab[2]
    reading, mic, results = record(lab, sig.normal, 30)
    truth = sig.normal.level_db + volume_gain_db(30)
    assert -59.5 < truth < -56.5
    assert reading.speech_heard, reading
    assert reading.speech_level_dbfs == pytest.approx(truth, abs=1.0)
    level = results["audio.speech_level"]
    assert level.status is Status.FAIL, level.message
    assert level.details["voice"] == "too_quiet"
    assert level.details["input_volume_pct"] == pytest.approx(30, abs=0.1)
    suggested = expected_suggestion(truth, sig.normal.peak_db + volume_gain_db(30), 30)
    assert level.details["suggested_volume_pct"] == pytest.approx(suggested, abs=5)
    assert f"Your microphone “{MIC}” is set to 30 %" in level.fix
    assert f"raise its input volume to about {level.details['suggested_volume_pct']} %" \
        in level.fix
    assert "too quiet" in level.message


def test_a_silent_speech_phase_is_no_speech_heard_at_any_volume(lab):
    for pct in (30, 100):
        reading, _, results = record(lab, None, pct)
        assert not reading.speech_heard, (pct, reading)
        level = results["audio.speech_level"]
        assert level.status is Status.UNKNOWN and "no speech heard" in level.message, pct


def test_normal_speech_passes(lab):
    sig = lab[2]
    reading, _, results = record(lab, sig.normal, 100)
    assert reading.speech_level_dbfs == pytest.approx(sig.normal.level_db, abs=1.0)
    level = results["audio.speech_level"]
    assert level.status is Status.PASS and level.fix is None, level.message
    assert level.details["voice"] == "ok"
    assert level.details["input_volume_pct"] == pytest.approx(100, abs=0.1)


def test_speech_near_clipping_is_too_loud_with_the_volume_to_lower_to(lab):
    """The sentence with its peaks 0.3 dB under full scale (sox: Pk lev dB), at 100 %: no
    headroom. Too loud, and the fix says how far to lower the volume."""
    sig = lab[2]
    reading, _, results = record(lab, sig.near_clip, 100)
    assert reading.peak_dbfs == pytest.approx(sig.near_clip.peak_db, abs=0.1)
    assert reading.clipped_runs == 0
    level = results["audio.speech_level"]
    assert level.status in (Status.WARN, Status.FAIL), level.message
    assert level.details["voice"] == "too_loud"
    suggested = expected_suggestion(sig.near_clip.level_db, sig.near_clip.peak_db, 100)
    assert suggested < 100
    assert level.details["suggested_volume_pct"] == pytest.approx(suggested, abs=5)
    assert f"Your microphone “{MIC}” is set to 100 %: lower its input volume to about " \
        f"{level.details['suggested_volume_pct']} %" in level.fix
    assert "too loud" in level.message


def test_a_hot_voice_is_too_loud_by_its_level(lab):
    sig = lab[2]
    assert -16.0 <= sig.hot.level_db < -10.0   # between the default loud_warn and loud_fail
    reading, _, results = record(lab, sig.hot, 100)
    assert reading.speech_level_dbfs == pytest.approx(sig.hot.level_db, abs=1.0)
    level = results["audio.speech_level"]
    assert level.status is Status.WARN, level.message
    assert level.details["voice"] == "too_loud"
    assert level.message.startswith("your voice is too loud: ")
    suggested = expected_suggestion(sig.hot.level_db, sig.hot.peak_db, 100)
    assert level.details["suggested_volume_pct"] == pytest.approx(suggested, abs=5)
    assert f"lower its input volume to about {level.details['suggested_volume_pct']} %" \
        in level.fix


def agent_kit(server: PulseServer, *args: str, env: dict[str, str], cwd: Path):
    return subprocess.run([sys.executable, "-m", "agent_kit.face.cli", *args],
                          capture_output=True, text=True, timeout=90,
                          env={**server.env, **env}, cwd=cwd)


def test_check_command_reports_a_quiet_voice_with_the_device_and_volume_and_writes_nothing(
        lab, tmp_path):
    """``agent-kit check --only audio --json`` end to end at 30 %: the JSON carries the fix with
    the device and the volumes, and no audio reaches any file (the privacy test of the new
    code: peaks, the quiet-talker rule, the volume read)."""
    server, feed, sig = lab
    server.pactl("set-source-volume", "headset_mic", "30%")
    policy = tmp_path / "short.toml"
    policy.write_text("[audio]\nquiet_s = 2\nspeech_s = 4\n")
    # The command starts at an unknown moment: room and sentence in a loop, so any 6 s window
    # holds both.
    gap = sig.room[: int(1.5 * RATE)]
    speech = sig.normal.samples + sig.room[: sig.normal.samples.size]
    feed.set_background(np.concatenate((gap, speech)))
    places = {name: tmp_path / name for name in ("home", "state", "tmp", "cwd")}
    for place in places.values():
        place.mkdir()
    try:
        proc = agent_kit(server, "check", "--only", "audio", "--json", "--policy", str(policy),
                         "--lang", "en",
                         env={"HOME": str(places["home"]), "AGENT_KIT_HOME": str(places["state"]),
                              "TMPDIR": str(places["tmp"])}, cwd=places["cwd"])
    finally:
        feed.set_background(sig.room)
        server.pactl("set-source-volume", "headset_mic", "100%")
    for name, place in places.items():
        written = [p for p in place.rglob("*") if p.is_file()
                   and p.relative_to(place).parts != (".config", "pulse", "cookie")]
        assert not written, f"the check wrote to {name}: {written}"
    assert len(proc.stdout) + len(proc.stderr) < 20000  # numbers, not samples
    report = json.loads(proc.stdout)
    level = next(c for c in report["checks"] if c["id"] == "audio.speech_level")
    assert level["status"] == "fail", level
    assert level["fix_id"].startswith("Your microphone “{name}” is set to {volume:.0f} %")
    assert level["fix_params"]["name"] == MIC
    assert level["fix_params"]["volume"] == pytest.approx(30, abs=0.1)
    assert f"“{MIC}” is set to 30 %" in level["fix"]
    assert proc.returncode == 1
