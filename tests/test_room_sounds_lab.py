"""Voices in the room, steady noise and bangs, told apart on a REAL PulseAudio virtual headset.

The microphone is a pipe source described as a USB headset (tests/lab/pulse.py, its own daemon
for this module); what the room "plays" is fed in real time and the agent records it through
sounddevice's ``pulse`` device. The truth is what the test feeds: babble mixed from several
espeak-ng voices at a level sox measures, sox's pink and brown noise and a fan (brown noise and
its blade hum), a door-slam train of decaying noise bursts whose loudest 10 ms the test computes
itself, a quiet room, and a fan under far babble. The references never import the product.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from agent_kit.core.policy import load_policy
from agent_kit.core.results import Status
from probes.audio.capture import measure_audio
from tests.lab.pulse import RATE, PulseServer, pulse_server, sox_rms_db, write_wav
from tests.lab.room_signals import RoomSignals
from tests.test_audio_lab import a_weight_iir

pytestmark = [pytest.mark.lab, pytest.mark.timing]

QUIET_S = 3.0           # the default policy's quiet phase: what the guided check listens to


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    signals = RoomSignals(tmp_path_factory.mktemp("room"))
    with pulse_server() as server:
        feed = server.add_microphone("room_headset_mic", "Jabra Evolve2 40", bus="usb",
                                     form_factor="headset", vendor_id="0b0e",
                                     product_id="24f1", default=True)
        server.add_speaker("room_headset_out", "Jabra Evolve2 40", bus="usb",
                           form_factor="headset", default=True)
        feed.set_background(signals.floor)
        yield server, feed, signals
        assert feed.error is None, f"the microphone feed failed: {feed.error}"


def play(feed, room: np.ndarray) -> None:
    feed.set_background(room)
    time.sleep(0.3)      # what was in the pipe before has reached the source


def guided(feed, room: np.ndarray):
    """The guided check's capture (quiet phase, then a short speech phase) of this room."""
    play(feed, room)
    return measure_audio(quiet_s=QUIET_S, speech_s=1.0, interactive=True,
                         prompt=lambda _text: None)


def room_result(reading):
    from agent_kit.evaluate.room_sounds import evaluate_room_sounds

    return evaluate_room_sounds(reading, load_policy())


@pytest.mark.parametrize(("room", "kind"), [
    ("floor", "quiet"), ("pink", "steady"), ("brown", "steady"), ("fan", "steady"),
    ("babble", "voices"), ("talker", "voices"), ("slams", "impulses"),
    ("fan_and_far_babble", "voices")])
def test_the_quiet_phase_names_what_the_room_sends(lab, room, kind):
    from agent_kit.evaluate.room_sounds import fix_for

    _, feed, sig = lab
    reading = guided(feed, getattr(sig, room))
    assert reading.problem is None and reading.room is not None
    assert reading.room.seconds == pytest.approx(QUIET_S, abs=0.01)
    result = room_result(reading)
    assert result.value == kind, (result.message, result.details)
    if room == "pink":              # a hiss: a flat spectrum (white would be 1)
        assert reading.room.flatness > 0.3
    elif room in ("brown", "fan"):  # a rumble and a hum: energy in a few low bins
        assert reading.room.flatness < 0.15
    assert result.status is (Status.PASS if kind == "quiet" else Status.WARN)
    if kind != "quiet":
        assert result.fix_msg == fix_for(kind)


def test_levels_of_each_kind_match_what_was_fed(lab):
    _, feed, sig = lab
    babble = guided(feed, sig.babble).room
    assert babble is not None and babble.voices
    assert babble.voices_dbfs == pytest.approx(sig.babble_db, abs=3.0)
    pink = guided(feed, sig.pink).room
    assert pink is not None and not pink.voices and pink.impulses == 0
    # the steady background, A-weighted, against the independent IIR A-weighting measured by sox
    assert pink.floor_dbfs_a == pytest.approx(sox_rms_db_of(a_weight_iir(sig.pink, RATE)),
                                              abs=1.0)
    assert pink.spread_db < 2.0
    slams = guided(feed, sig.slams).room
    assert slams is not None and not slams.voices
    assert slams.impulses >= 2                      # 0.7-1.1 s apart in 3 s
    # the loudest 10 ms of the bangs in the window: between the quietest burst's peak (less
    # the 10 ms frames' alignment) and the loudest burst's
    assert min(sig.slam_peaks_db) - 3.0 <= slams.impulse_peak_dbfs <= max(sig.slam_peaks_db) + 0.5
    assert slams.floor_dbfs == pytest.approx(sig.floor_db, abs=3.0)


def sox_rms_db_of(x: np.ndarray) -> float:
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        return sox_rms_db(write_wav(Path(d) / "x.wav", x))


def test_faint_far_voices_are_ignored(lab):
    """Babble 10 dB under the policy's voices level is heard but not judged."""
    _, feed, sig = lab
    faint = sig.babble - sig.floor
    faint = faint * 10 ** (-20 / 20) + sig.floor       # -65 dBFS over a -70 dBFS floor
    result = room_result(guided(feed, faint))
    assert result.status is Status.PASS and result.value == "quiet", result.details


def agent_kit(server: PulseServer, *args: str, timeout: float = 90):
    return subprocess.run([sys.executable, "-m", "agent_kit.face.cli", *args],
                          capture_output=True, text=True, timeout=timeout, env=server.env)


def test_check_reports_voices_in_json_and_terminal(lab, tmp_path):
    server, feed, sig = lab
    policy = tmp_path / "short.toml"
    policy.write_text("[audio]\nquiet_s = 2\nspeech_s = 2\n")
    play(feed, sig.babble)
    try:
        proc = agent_kit(server, "check", "--only", "audio", "--json", "--policy", str(policy))
        text = agent_kit(server, "check", "--only", "audio", "--policy", str(policy))
    finally:
        feed.set_background(sig.floor)
    # Nobody reads aloud here: whether the babble's phrases also fill the speech window (and
    # then read as a voice 8 dB over the room, an SNR fail) depends on where the loop stands
    # when the check starts. The room's finding must not depend on it.
    assert proc.returncode in (0, 1), proc.stdout + proc.stderr
    checks = {c["id"]: c for c in json.loads(proc.stdout)["checks"]}
    failed = {i for i, c in checks.items() if c["status"] == "fail"}
    assert failed <= {"audio.snr"}, failed
    assert (proc.returncode == 1) == bool(failed)
    room = checks["audio.room_sounds"]
    assert (room["status"], room["value"]) == ("warn", "voices"), room
    assert room["details"]["voices_dbfs"] == pytest.approx(sig.babble_db, abs=3.0)
    assert room["details"]["own_voice"] is False
    assert "TV" in room["fix"] and room["fix_id"].startswith("Close the door")
    assert text.returncode in (0, 1), text.stdout + text.stderr
    assert "other people's voices reach your microphone" in text.stdout
    assert "move away from the TV" in text.stdout


def test_monitor_tells_a_tv_from_the_agent_talking_on_a_call(lab, tmp_path):
    """The monitor's unprompted room captures, through the real room unit: a TV across the room
    is voices (and no call); the agent's own speech is never voices in the room, and once two
    captures in a row make a call the room is not judged."""
    import httpx

    from agent_kit.link.client import CenterClient
    from agent_kit.loop.monitor import Monitor, MonitorDeps
    from agent_kit.loop.spool import Spool
    from agent_kit.run.units import UNITS, ProbeContext
    from tests.test_heartbeat_client import ENR, FakeCenter
    from tests.test_monitor import Clocks

    _, feed, sig = lab
    clocks = Clocks()
    room_unit = next(u for u in UNITS if u.name == "room")
    client = CenterClient(ENR, transport=httpx.MockTransport(FakeCenter()),
                          clock=lambda: clocks.wall)
    deps = MonitorDeps(units=(room_unit,), policy=load_policy(), enrollment=ENR,
                       context_factory=lambda pol: ProbeContext(policy=pol),
                       client=client, spool=Spool(tmp_path / "spool.db", ENR.agent_id),
                       notify=lambda *_: None, clock=lambda: clocks.wall,
                       monotonic=lambda: clocks.mono, state_file=tmp_path / "gate.json")
    monitor = Monitor(deps, interval_s=15.0)

    def capture(room: np.ndarray):
        play(feed, room)
        clocks.advance(60.0)
        monitor.cycle()
        return monitor.latest["audio.room_sounds"]

    try:
        tv = capture(sig.talker)
        assert (tv.status, tv.value) == (Status.WARN, "voices"), tv.details
        tv = capture(sig.talker)
        assert tv.value == "voices" and not monitor.in_call
        # the wearer talking: never voices in the room (the room is judged in a pause between
        # phrases when one lasts a second, else not judged)
        first = capture(sig.own_speech)
        assert first.value in ("talking", "quiet"), first.details
        assert first.details["own_voice"] is True and not monitor.in_call
        second = capture(sig.own_speech)
        assert monitor.in_call
        assert second.status is Status.UNKNOWN and second.value is None
        assert "during a call" in second.message
        quiet = capture(sig.floor)
        assert not monitor.in_call and quiet.value == "quiet"
    finally:
        feed.set_background(sig.floor)
