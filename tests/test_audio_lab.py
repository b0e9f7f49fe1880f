"""Headset and room checks against a REAL PulseAudio server with a virtual headset (LAB.md).

The microphone is a PulseAudio pipe source described as a USB headset; a writer thread feeds
it espeak-ng speech and sox noise in real time, and the agent records the server's default
source through the server's own ``parec`` (``probes.audio.pulse_capture``), as on a workstation.
Ground truth: sox's own meter (``stats``) on the files fed, and, for the A-weighted floor, the
same file through an independent A-weighting IIR filter (scipy's bilinear transform of the
IEC 61672 analog poles) measured by sox.
One PulseAudio daemon serves the whole module.
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
from agent_kit.evaluate.audio import evaluate_headset, evaluate_room
from probes.audio.capture import measure_audio
from probes.audio.devices import list_audio_devices
from tests.lab.pulse import RATE, PulseServer, pulse_server, read_wav, sox, sox_rms_db, write_wav

pytestmark = [pytest.mark.lab, pytest.mark.timing]
ROOT = Path(__file__).resolve().parent.parent

QUIET_S, SPEECH_S = 2.0, 5.0
SENTENCE = "The quick brown fox jumps over the lazy dog while the agent answers the call"


def a_weight_iir(x: np.ndarray, fs: int) -> np.ndarray:
    """IEC 61672 A-weighting as a time-domain IIR filter: a method independent of the agent's."""
    from scipy import signal

    two_pi = 2 * np.pi
    zeros = [0.0] * 4
    poles = [-two_pi * 20.598997] * 2 + [-two_pi * 107.65265, -two_pi * 737.86223] + \
        [-two_pi * 12194.217] * 2
    z, p, k = signal.bilinear_zpk(zeros, poles, 1.0, fs)
    _, h = signal.freqz_zpk(z, p, k, worN=[1000.0], fs=fs)
    return signal.sosfilt(signal.zpk2sos(z, p, k / abs(h[0])), x)


class Signals:
    """The files fed to the microphone and sox's measurements of them."""

    def __init__(self, d: Path) -> None:
        raw = d / "speech22k.wav"
        subprocess.run(["espeak-ng", "-w", str(raw), SENTENCE], check=True, timeout=60,
                       capture_output=True)
        self.speech_file = d / "speech.wav"
        sox(str(raw), "-r", str(RATE), "-b", "16", str(self.speech_file), "vol", "0.5")
        self.speech = read_wav(self.speech_file)
        # The spoken stretch (leading/trailing silence trimmed): what P.56 calls active.
        trimmed = d / "speech_trimmed.wav"
        sox(str(self.speech_file), str(trimmed), "silence", "1", "0.02", "0.1%", "reverse",
            "silence", "1", "0.02", "0.1%", "reverse")
        self.speech_db = sox_rms_db(trimmed)
        self.quiet_file = d / "quiet.wav"
        sox("-n", "-r", str(RATE), "-c", "1", "-b", "16", str(self.quiet_file), "synth", "12",
            "pinknoise", "vol", "0.003")
        self.quiet = read_wav(self.quiet_file)
        self.quiet_db = sox_rms_db(self.quiet_file)
        weighted = write_wav(d / "quiet_a.wav", a_weight_iir(self.quiet, RATE))
        self.quiet_db_a = sox_rms_db(weighted)
        self.loud_file = d / "loud.wav"
        sox("-n", "-r", str(RATE), "-c", "1", "-b", "16", str(self.loud_file), "synth", "12",
            "pinknoise", "vol", "0.08")
        self.loud = read_wav(self.loud_file)
        self.loud_db = sox_rms_db(self.loud_file)

    def room_with_speech(self, room: np.ndarray, speech: np.ndarray | None = None) -> np.ndarray:
        """QUIET_S (+ the settle time) of room, then the sentence spoken over the room."""
        speech = self.speech if speech is None else speech
        lead = int((QUIET_S + 0.5) * RATE)
        total = lead + speech.size + RATE
        out = room[np.arange(total) % room.size].copy()
        out[lead:lead + speech.size] += speech
        return out


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    signals = Signals(tmp_path_factory.mktemp("audio"))
    with pulse_server() as server:
        server.add_speaker("headset_out", "Jabra Evolve2 40", bus="usb", form_factor="headset",
                           default=True)
        feed = server.add_microphone("headset_mic", "Jabra Evolve2 40", bus="usb",
                                     form_factor="headset", vendor_id="0b0e",
                                     product_id="24f1", default=True)
        server.add_microphone("builtin_mic", "Built-in Audio Analog Stereo", bus="pci",
                              form_factor="internal")
        server.add_microphone("webcam_mic", "HD Pro Webcam C920", bus="usb",
                              form_factor="webcam", vendor_id="046d", product_id="082d")
        feed.set_background(signals.quiet)
        yield server, feed, signals
        assert feed.error is None, f"the microphone feed failed: {feed.error}"


def capture(server: PulseServer, feed, program: np.ndarray, background: np.ndarray,
            prompt=None):
    server.set_default_source("headset_mic")
    feed.play(program, then=background)
    return measure_audio(quiet_s=QUIET_S, speech_s=SPEECH_S, interactive=prompt is not None,
                         prompt=prompt)


def statuses(results) -> dict[str, Status]:
    return {r.id: r.status for r in results}


# ------------------------------------------------------------------ the room

def test_quiet_room_and_clear_speech_match_sox_and_pass(lab):
    server, feed, sig = lab
    reading = capture(server, feed, sig.room_with_speech(sig.quiet), sig.quiet)
    assert reading.problem is None and reading.device.startswith("pulse")
    assert reading.speech_heard
    assert reading.noise_dbfs == pytest.approx(sig.quiet_db, abs=1.0)
    assert reading.noise_dbfs_a == pytest.approx(sig.quiet_db_a, abs=1.0)
    assert reading.speech_level_dbfs == pytest.approx(sig.speech_db, abs=1.0)
    assert reading.snr_db == pytest.approx(sig.speech_db - sig.quiet_db, abs=2.0)
    assert reading.dropout_count == 0 and reading.clipping_pct == 0.0
    results = evaluate_room(reading, load_policy())
    assert set(statuses(results).values()) == {Status.PASS}, [r.message for r in results]


def test_noisy_room_fails(lab):
    server, feed, sig = lab
    reading = capture(server, feed, sig.room_with_speech(sig.loud), sig.loud)
    assert reading.noise_dbfs == pytest.approx(sig.loud_db, abs=1.0)
    st = statuses(evaluate_room(reading, load_policy()))
    assert st["audio.noise"] is Status.FAIL
    assert st["audio.snr"] in (Status.FAIL, Status.UNKNOWN)
    noise = next(r for r in evaluate_room(reading, load_policy()) if r.id == "audio.noise")
    assert "window" in noise.fix


def test_clipped_speech_is_detected(lab):
    """Interactive, with a person who does as told: quiet at "Please stay quiet", then reads
    the sentence (too loud, clipped) when the agent asks for it."""
    server, feed, sig = lab
    loud_voice = np.clip(sig.speech * 8.0, -1.0, 32767 / 32768)
    prompts: list[tuple[float, str]] = []

    def person(text: str) -> None:
        prompts.append((time.monotonic(), text))
        if text.startswith("Now"):
            feed.play(loud_voice, then=sig.quiet)

    reading = capture(server, feed, sig.quiet, sig.quiet, prompt=person)
    # interactive: "stay quiet" at the start, the sentence to read after the quiet window
    assert [text.split(":")[0].split()[0] for _, text in prompts] == ["Please", "Now"]
    # never asked before the quiet window is over: the agent holds the sentence back for
    # SETTLE_S + QUIET_S after the first prompt (a lower bound only: a busy machine can make
    # the second prompt later, never earlier)
    assert prompts[1][0] - prompts[0][0] >= QUIET_S, prompts
    # the sentence asked for while the recording still ran: the voice was heard, clipped
    assert reading.prompted and reading.speech_heard and reading.clipped_runs > 0
    # the quiet window before the sentence is the room's floor
    assert reading.noise_dbfs == pytest.approx(sig.quiet_db, abs=1.0)
    st = statuses(evaluate_room(reading, load_policy()))
    assert st["audio.clipping"] is Status.FAIL


def test_a_50_ms_dropout_is_detected(lab):
    server, feed, sig = lab
    program = sig.room_with_speech(sig.quiet)
    at = int((QUIET_S + 0.5 + 1.5) * RATE)
    program[at:at + int(0.05 * RATE)] = 0.0
    reading = capture(server, feed, program, sig.quiet)
    assert [round(d.duration_ms) for d in reading.dropouts] == [50]
    st = statuses(evaluate_room(reading, load_policy()))
    assert st["audio.dropouts"] in (Status.WARN, Status.FAIL)


def test_50_hz_hum_is_detected(lab):
    server, feed, sig = lab
    t = np.arange(sig.quiet.size) / RATE
    hum_room = sig.quiet + 10 ** (-37 / 20) * np.sqrt(2) * np.sin(2 * np.pi * 50 * t)  # -40 dBFS
    reading = capture(server, feed, sig.room_with_speech(hum_room), hum_room)
    assert reading.hum_hz == 50
    assert reading.hum_dbfs == pytest.approx(-37.0, abs=1.0)
    assert statuses(evaluate_room(reading, load_policy()))["audio.hum"] is Status.FAIL


def test_no_speech_in_a_non_interactive_run_is_unknown_not_fail(lab):
    server, feed, sig = lab
    reading = capture(server, feed, sig.quiet[: RATE], sig.quiet)
    assert not reading.speech_heard
    st = statuses(evaluate_room(reading, load_policy()))
    assert st["audio.speech_level"] is Status.UNKNOWN and st["audio.snr"] is Status.UNKNOWN
    assert st["audio.noise"] is Status.PASS


# ------------------------------------------------------------------ the headset

def headset_result(server: PulseServer, source: str, policy=None):
    server.set_default_source(source)
    return evaluate_headset(list_audio_devices(), policy or load_policy())


def test_usb_headset_passes(lab):
    server, _, _ = lab
    result = headset_result(server, "headset_mic")
    assert result.status is Status.PASS, result.message
    assert result.value == "usb_headset"


@pytest.mark.parametrize(("source", "kind"), [("builtin_mic", "builtin"),
                                              ("webcam_mic", "webcam")])
def test_builtin_or_webcam_microphone_fails_with_a_fix_naming_the_headset(lab, source, kind):
    server, _, _ = lab
    result = headset_result(server, source)
    assert result.status is Status.FAIL and result.value == kind
    assert "Select 'Jabra Evolve2 40' as the default microphone" in result.fix


def test_approved_list_by_usb_id_and_by_name(lab, tmp_path):
    server, _, _ = lab
    by_id = tmp_path / "id.toml"
    by_id.write_text('[checks."audio.headset"]\napproved = ["0b0e:24f1"]\n')
    assert headset_result(server, "headset_mic", load_policy(by_id)).status is Status.PASS
    other = tmp_path / "other.toml"
    other.write_text('[checks."audio.headset"]\napproved = ["Plantronics*"]\n')
    result = headset_result(server, "headset_mic", load_policy(other))
    assert result.status is Status.WARN and "approved" in result.message


# ------------------------------------------------------------------ the commands

def agent_kit(server: PulseServer, *args: str, timeout: float = 90,
              env: dict[str, str] | None = None, cwd: Path | None = None):
    return subprocess.run([sys.executable, "-m", "agent_kit.face.cli", *args], capture_output=True,
                          text=True, timeout=timeout, env={**server.env, **(env or {})}, cwd=cwd)


def test_devices_command_lists_and_classifies(lab):
    server, _, _ = lab
    server.set_default_source("headset_mic")
    proc = agent_kit(server, "devices", "--json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    kinds = {d["name"]: (d["kind"], d["default"]) for d in data["devices"]}
    assert kinds["headset_mic"] == ("usb_headset", True)
    assert kinds["builtin_mic"] == ("builtin", False)
    assert kinds["webcam_mic"] == ("webcam", False)
    assert kinds["headset_out"] == ("usb_headset", True)
    assert data["headset_check"]["status"] == "pass"
    text = agent_kit(server, "devices")
    assert text.returncode == 0
    assert "* Jabra Evolve2 40  [USB headset, USB 0b0e:24f1]" in text.stdout
    assert "why: device.bus=pci, device.form_factor=internal" in text.stdout


def test_check_only_audio_in_a_quiet_room_with_speech_is_ready(lab, tmp_path):
    server, feed, sig = lab
    server.set_default_source("headset_mic")
    policy = tmp_path / "short.toml"
    policy.write_text("[audio]\nquiet_s = 2\nspeech_s = 4\n")
    # The command starts at an unknown moment: loop room and sentence so any 6 s window holds
    # both background and speech.
    gap = sig.quiet[: int(1.5 * RATE)]
    loop = np.concatenate((gap, sig.speech + sig.quiet[: sig.speech.size]))
    feed.set_background(loop)
    # Privacy: every place the agent could write to is empty afterwards (no audio file).
    places = {name: tmp_path / name for name in ("home", "state", "tmp", "cwd")}
    for place in places.values():
        place.mkdir()
    try:
        proc = agent_kit(server, "check", "--only", "audio", "--json", "--policy", str(policy),
                         env={"HOME": str(places["home"]), "AGENT_KIT_HOME": str(places["state"]),
                              "TMPDIR": str(places["tmp"])}, cwd=places["cwd"])
    finally:
        feed.set_background(sig.quiet)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for name, place in places.items():
        written = [p for p in place.rglob("*") if p.is_file()
                   and p.relative_to(place).parts != (".config", "pulse", "cookie")]
        # (libpulse's own client cookie is the one file allowed: 256 bytes, no audio)
        assert not written, f"the check wrote to {name}: {written}"
    assert len(proc.stdout) + len(proc.stderr) < 20000  # numbers, not samples
    report = json.loads(proc.stdout)
    checks = {c["id"]: c for c in report["checks"]}
    assert set(checks) == {"audio.headset", "audio.noise", "audio.speech_level", "audio.snr",
                           "audio.clipping", "audio.dropouts", "audio.hum",
                           "audio.voice_bandwidth", "audio.room_sounds"}
    # unprompted, the looped sentence at the headset is its wearer talking, never voices in the
    # room: the room is judged in the pause between the sentences when the window holds a whole
    # one, else not judged (tests/test_room_sounds_lab.py has the rooms themselves)
    room = checks.pop("audio.room_sounds")
    assert (room["status"], room["value"]) in {("pass", "quiet"), ("unknown", "talking")}, room
    assert room["details"]["own_voice"] is True
    assert {c["status"] for c in checks.values()} == {"pass"}, checks
    assert report["verdict"] == ("pass" if room["status"] == "pass" else "warn")


def test_pactl_text_fallback_reads_what_json_reads(lab):
    """pactl < 16 (Ubuntu 22.04's PipeWire) has no JSON: the text parser must see the same."""
    from probes.audio.devices import parse_pactl_list

    server, _, _ = lab
    for kind in ("sources", "sinks"):
        as_json = json.loads(server.pactl("-f", "json", "list", kind))
        as_text = parse_pactl_list(subprocess.run(
            ["pactl", "list", kind], capture_output=True, text=True, timeout=10,
            env={**server.env, "LC_ALL": "C"}).stdout)
        assert [(e["name"], e["description"], e["properties"]) for e in as_text] == \
            [(e["name"], e["description"], e["properties"]) for e in as_json]


# ------------------------------------------------------------------ the capture backend

SOUND_SERVER_CAPTURE = """
import json, sys
from probes.audio import capture
device, label = capture.call_input_device()
samples, overflows = capture.record(capture.SETTLE_S + 1.5, device=device)
samples = samples[int(capture.SETTLE_S * capture.SAMPLE_RATE):]   # as measure_audio does
maps = open('/proc/self/maps').read()
print(json.dumps({'backend': type(device).__name__, 'label': label,
                  'samples': samples.tolist(), 'overflows': overflows,
                  'portaudio': [m for m in ('sounddevice', '_sounddevice') if m in sys.modules],
                  'libraries': [lib for lib in ('libasound', 'libportaudio', 'libpulse')
                                if lib in maps]}))
"""


def test_the_call_input_is_the_sound_servers_default_source_sample_for_sample(lab):
    """A fresh process records the default source through the sound server's ``parec``: neither
    PortAudio, ALSA nor libpulse is loaded in it, and the samples are the ones written into the
    microphone, each once, in order, from the settle time on (a counting ramp: any sample
    lost, repeated or zero-padded breaks the count; the settle time holds the stream's start,
    where the lab's FIFO still has up to 62 ms of what was written when the last recording
    stopped)."""
    server, feed, sig = lab
    ramp = np.arange(-12000, 12000) / 32768     # exactly representable: to_pcm keeps them
    server.set_default_source("headset_mic")
    feed.play(np.zeros(0), then=ramp)   # ends a program a previous test left playing
    time.sleep(1.0)   # the previous room still in flight (the FIFO holds up to 0.7 s) drains
    try:
        proc = subprocess.run([sys.executable, "-c", SOUND_SERVER_CAPTURE], capture_output=True,
                              text=True, timeout=60, env={**server.env, "PYTHONPATH": str(ROOT)})
    finally:
        feed.set_background(sig.quiet)
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout)
    assert (got["backend"], got["label"]) == ("PulseSource", "pulse (the system's default source)")
    assert got["portaudio"] == [] and got["libraries"] == [], got
    samples = np.asarray(got["samples"])
    assert samples.size == int(1.5 * RATE) and got["overflows"] == 0
    steps = np.diff(samples)
    bad = np.flatnonzero((steps != 1) & (steps != -23999))
    assert bad.size == 0, (bad.size, bad[:5], bad[-5:])
    assert -12000 <= samples[0] < 12000


def test_without_a_sound_server_the_capture_falls_back_to_portaudio(lab, tmp_path):
    """No server answers (PULSE_SERVER names a socket nobody listens on): the call input is
    PortAudio's (this machine has no sound card, so: no microphone, said as a reason)."""
    env = {**lab[0].env, "PULSE_SERVER": f"unix:{tmp_path}/nobody", "PYTHONPATH": str(ROOT)}
    code = ("import sys\nfrom probes.audio import pulse_capture, capture\n"
            "assert not pulse_capture.server_answers()\n"
            "r = capture.measure_audio(quiet_s=0.5, speech_s=0.5)\n"
            "print(r.problem or r.device)\nprint('sounddevice' in sys.modules)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, env=env)
    assert proc.returncode == 0, proc.stderr
    problem, portaudio = proc.stdout.strip().splitlines()
    assert portaudio == "True", proc.stdout
    assert "cannot open the audio system" in problem or "recording from" in problem, problem
