"""Device classification and the audio judgements, on inventories and readings built by hand.

The lab (tests/test_audio_lab.py) covers the same path with a real PulseAudio server; here the
inputs a lab cannot make: Windows/macOS device names, Bluetooth profiles, a muted microphone.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent_kit.core.policy import load_policy
from agent_kit.core.results import Status
from agent_kit.evaluate.audio import ROOM_CHECKS, evaluate_headset, evaluate_room
from probes.audio.capture import AudioReading
from probes.audio.devices import AudioDevice, DeviceInventory, classify
from probes.audio.dsp import Dropout
from probes.audio.voice_band import VoiceBand
from probes.audio.room_sounds import RoomSounds

POLICY = load_policy()


@pytest.mark.parametrize(("props", "port", "kind"), [
    ({"device.bus": "usb", "device.form_factor": "headset"}, None, "usb_headset"),
    ({"device.bus": "usb", "device.form_factor": "webcam"}, None, "webcam"),
    ({"device.bus": "pci", "device.form_factor": "internal"}, None, "builtin"),
    ({"device.bus": "pci"}, "analog-input-internal-mic", "builtin"),
    ({"device.bus": "pci"}, "analog-input-headset-mic", "analog_headset"),
    ({"device.class": "abstract"}, None, "virtual"),
    ({"device.bus": "usb"}, None, "unknown"),
])
def test_pulseaudio_properties_classify(props, port, kind):
    got, evidence, _ = classify("input", "alsa_input.x", "Some device", props, port)
    assert got == kind
    if "device.bus" in props:
        assert f"device.bus={props['device.bus']}" in evidence


def test_bluetooth_microphone_is_always_hands_free_and_a2dp_output_is_not():
    props = {"device.bus": "bluetooth", "bluetooth.protocol": "a2dp_sink"}
    assert classify("output", "bluez_sink.AA", "WH-1000XM4", props) == (
        "bluetooth_headset", ("device.bus=bluetooth", "profile=a2dp_sink"), False)
    props = {"device.bus": "bluetooth", "bluetooth.protocol": "handsfree_head_unit"}
    assert classify("input", "bluez_source.AA", "WH-1000XM4", props)[2] is True
    assert classify("output", "bluez_sink.AA", "WH-1000XM4", props)[2] is True


@pytest.mark.parametrize(("name", "direction", "kind", "handsfree"), [
    ("Headset Microphone (Jabra Evolve2 40)", "input", "usb_headset", None),
    ("Microphone Array (Realtek(R) Audio)", "input", "builtin", None),
    ("MacBook Pro Microphone", "input", "builtin", None),
    ("Microphone (HD Pro Webcam C920)", "input", "webcam", None),
    ("Headset (WH-1000XM4 Hands-Free AG Audio)", "input", "bluetooth_headset", True),
    ("AirPods Pro", "output", "bluetooth_headset", False),
    ("CABLE Output (VB-Audio Virtual Cable)", "input", "virtual", None),
    ("pulse", "input", "virtual", None),
    ("Microphone (USB PnP Sound Device)", "input", "unknown", None),
])
def test_portaudio_names_classify(name, direction, kind, handsfree):
    got, _, hf = classify(direction, name, name)
    assert (got, hf) == (kind, handsfree)


def dev(name, kind, *, direction="input", default=False, handsfree=None, vid=None, pid=None):
    return AudioDevice(direction=direction, name=name, description=name, kind=kind,
                       evidence=(), is_default=default, handsfree=handsfree, vendor_id=vid,
                       product_id=pid)


def test_headset_default_passes_and_output_through_speakers_warns():
    inv = DeviceInventory("test", (dev("Jabra Evolve2 40", "usb_headset", default=True),
                                   dev("Jabra Evolve2 40", "usb_headset", direction="output"),
                                   dev("Speakers", "builtin", direction="output", default=True)))
    result = evaluate_headset(inv, POLICY)
    assert result.status is Status.WARN
    assert "Select 'Jabra Evolve2 40' as the default speaker" in result.fix


def test_bluetooth_hands_free_warns_by_default():
    inv = DeviceInventory("test", (dev("WH-1000XM4", "bluetooth_headset", default=True,
                                       handsfree=True),))
    result = evaluate_headset(inv, POLICY)
    assert result.status is Status.WARN and "hands-free" in result.message
    assert "USB headset" in result.fix


def test_builtin_default_with_no_headset_tells_to_plug_it_in():
    inv = DeviceInventory("test", (dev("Built-in Microphone", "builtin", default=True),))
    result = evaluate_headset(inv, POLICY)
    assert result.status is Status.FAIL and "unplug and replug the USB headset" in result.fix


def test_no_microphone_fails_and_no_sound_system_is_unknown():
    assert evaluate_headset(DeviceInventory("test", ()), POLICY).status is Status.FAIL
    result = evaluate_headset(DeviceInventory("", (), "PortAudio: library not found"), POLICY)
    assert result.status is Status.UNKNOWN and "PortAudio" in result.message


def test_approved_usb_id(tmp_path):
    path = tmp_path / "p.toml"
    path.write_text('[checks."audio.headset"]\napproved = ["0b0e:24f1"]\nunapproved = "fail"\n')
    policy = load_policy(path)
    ok = DeviceInventory("t", (dev("Jabra", "usb_headset", default=True, vid="0B0E",
                                   pid="24F1"),))
    other = DeviceInventory("t", (dev("Cheap headset", "usb_headset", default=True,
                                      vid="1234", pid="5678"),))
    assert evaluate_headset(ok, policy).status is Status.PASS
    assert evaluate_headset(other, policy).status is Status.FAIL


def reading(**kw) -> AudioReading:
    base = dict(device="pulse", sample_rate=48000, captured_s=9.0, prompted=False,
                vad="webrtcvad", noise_dbfs_a=-62.0, noise_dbfs=-58.0, noise_method="vad",
                noise_s=3.0, speech_s=4.0, speech_heard=True, speech_level_dbfs=-26.0,
                speech_activity=0.6, snr_db=32.0, hum_dbfs=-120.0,
                room=RoomSounds(3.0, -64.0, -66.0, 0.5, 0.6, False, 0.0, None, 1.0, 0, None,
                                "webrtcvad"))   # a quiet room (tests/test_room_sounds.py)
    base.update(kw)
    return AudioReading(**base)


def by_id(results):
    return {r.id: r for r in results}


def test_good_room_passes_every_check():
    results = by_id(evaluate_room(reading(voice_band=VoiceBand(7250.0, "wideband", False, 200,
                                                                 150)), POLICY))
    assert set(results) == {*ROOM_CHECKS, "audio.voice_bandwidth"}
    assert {r.status for r in results.values()} == {Status.PASS}
    assert results["audio.speech_level"].details["activity"] == 0.6


def test_each_problem_fails_its_own_check_with_a_fix():
    results = by_id(evaluate_room(reading(
        noise_dbfs_a=-35.0, clipping_pct=0.5, clipped_runs=40, hum_dbfs=-40.0, hum_hz=50,
        dropouts=(Dropout(2.0, 50.0), Dropout(4.0, 30.0)), speech_level_dbfs=-50.0,
        snr_db=8.0), POLICY))
    for cid in ROOM_CHECKS:
        if cid == "audio.room_sounds":   # a state check; its kinds: tests/test_room_sounds.py
            continue
        assert results[cid].status is Status.FAIL, cid
        assert results[cid].fix, cid
    assert "window" in results["audio.noise"].fix
    assert "replug the USB headset" in results["audio.dropouts"].fix


def test_no_speech_is_unknown_unprompted_and_fails_when_asked():
    quiet = dict(speech_heard=False, speech_level_dbfs=None, snr_db=None, speech_activity=None)
    unprompted = by_id(evaluate_room(reading(**quiet), POLICY))
    assert unprompted["audio.speech_level"].status is Status.UNKNOWN
    prompted = by_id(evaluate_room(reading(prompted=True, **quiet), POLICY))
    assert prompted["audio.speech_level"].status is Status.FAIL


def test_muted_microphone_and_failed_recording_say_why():
    muted = by_id(evaluate_room(reading(silent=True, noise_dbfs_a=None, noise_dbfs=None,
                                        prompted=True), POLICY))
    assert muted["audio.speech_level"].status is Status.FAIL
    assert "Unmute" in muted["audio.speech_level"].fix
    assert muted["audio.noise"].status is Status.UNKNOWN
    broken = evaluate_room(reading(problem="device unavailable"), POLICY)
    assert {r.status for r in broken} == {Status.UNKNOWN}
    assert all("device unavailable" in r.message for r in broken)

RANK = {Status.PASS: 0, Status.WARN: 1, Status.FAIL: 2}


@given(noise_a=st.floats(-100, 0), extra_noise=st.floats(0, 40), speech=st.floats(-80, 0),
       quieter=st.floats(0, 40), clip=st.floats(0, 50), more_clip=st.floats(0, 50))
def test_a_worse_room_never_gets_a_better_verdict(noise_a, extra_noise, speech, quieter, clip,
                                                  more_clip):
    good = reading(noise_dbfs_a=noise_a, speech_level_dbfs=speech, snr_db=speech - noise_a,
                   clipping_pct=clip)
    bad = reading(noise_dbfs_a=noise_a + extra_noise, speech_level_dbfs=speech - quieter,
                  snr_db=speech - quieter - noise_a - extra_noise, clipping_pct=clip + more_clip)
    before, after = by_id(evaluate_room(good, POLICY)), by_id(evaluate_room(bad, POLICY))
    # audio.speech_level is two-sided: a quieter voice is worse only where it was not too loud
    # (tests/test_voice_level.py holds the loud side)
    loud_warn = POLICY.check("audio.speech_level").params["loud_warn"]
    judged = ("audio.noise", "audio.snr", "audio.clipping") + (
        ("audio.speech_level",) if speech < loud_warn else ())
    for cid in judged:
        assert RANK[after[cid].status] >= RANK[before[cid].status], cid


PACTL_TEXT = """Source #0
\tState: SUSPENDED
\tName: alsa_output.pci-0000_00_1f.3.analog-stereo.monitor
\tDescription: Monitor of Built-in Audio Analog Stereo
\tMonitor of Sink: alsa_output.pci-0000_00_1f.3.analog-stereo
\tProperties:
\t\tdevice.description = "Monitor of Built-in Audio Analog Stereo"
\t\tdevice.class = "monitor"

Source #1
\tState: RUNNING
\tName: alsa_input.pci-0000_00_1f.3.analog-stereo
\tDescription: Built-in Audio Analog Stereo
\tMonitor of Sink: n/a
\tProperties:
\t\tdevice.bus = "pci"
\t\tdevice.description = "Built-in Audio Analog Stereo"
\tPorts:
\t\tanalog-input-internal-mic: Internal Microphone (type: Mic, priority: 8900)
\t\tanalog-input-headset-mic: Headset Microphone (type: Headset, priority: 8800)
\tActive Port: analog-input-headset-mic
"""


def test_pactl_text_output_is_parsed_and_the_jack_port_decides():
    from probes.audio.devices import _from_pulse_entry, parse_pactl_list

    entries = parse_pactl_list(PACTL_TEXT)
    assert [e["name"] for e in entries] == ["alsa_output.pci-0000_00_1f.3.analog-stereo.monitor",
                                           "alsa_input.pci-0000_00_1f.3.analog-stereo"]
    assert entries[1]["active_port"] == "analog-input-headset-mic"
    assert entries[1]["properties"]["device.bus"] == "pci"
    assert _from_pulse_entry(entries[0], "input", None) is None   # a monitor is no microphone
    mic = _from_pulse_entry(entries[1], "input", "alsa_input.pci-0000_00_1f.3.analog-stereo")
    assert mic is not None and mic.kind == "analog_headset" and mic.is_default


def test_windows_devices_are_read_from_wasapi_once():
    from probes.audio.devices import _preferred_hostapi

    apis = [{"name": "MME", "devices": [0, 1, 2], "default_input_device": 1},
            {"name": "Windows DirectSound", "devices": [3, 4], "default_input_device": 3},
            {"name": "Windows WASAPI", "devices": [5, 6], "default_input_device": 6}]
    assert _preferred_hostapi(apis, 1) == 2
    assert _preferred_hostapi([{"name": "Core Audio", "devices": [0, 1]}], 1) == 0
    assert _preferred_hostapi([{"name": "ALSA", "devices": [0]}], -1) is None


def test_devices_command_rejects_a_bad_policy_with_exit_2(tmp_path):
    import subprocess
    import sys

    bad = tmp_path / "bad.toml"
    bad.write_text('[checks."audio.headset"]\nbuiltin = "maybe"\n')
    proc = subprocess.run([sys.executable, "-m", "agent_kit.face.cli", "devices", "--policy", str(bad)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "builtin" in proc.stderr


def test_a_recording_that_cannot_start_is_a_reason_not_a_crash(monkeypatch):
    import probes.audio.capture as audio

    def no_device():
        raise RuntimeError("no microphone: the system has no default input device")

    monkeypatch.setattr(audio, "call_input_device", no_device)
    got = audio.measure_audio(quiet_s=0.1, speech_s=0.1)
    assert got.problem and "no default input device" in got.problem
    assert {r.status for r in evaluate_room(got, POLICY)} == {Status.UNKNOWN}
