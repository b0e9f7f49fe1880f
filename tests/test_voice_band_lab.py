"""Voice bandwidth against a REAL PulseAudio virtual USB headset (tests/lab/pulse.py, LAB.md).

Truth is the filter the test applies with sox to what the headset hears (the voice and the room
together, as a headset's own narrowband stage would): ``sinc -3400`` and ``rate 8k`` and back
(narrowband: a USB headset that is 8 kHz inside, Bluetooth hands-free CVSD), ``sinc -7000``
and ``rate 16k`` and back (wideband), ``sinc -16000`` (super-wideband). The microphone is
described as a USB headset every time: its properties do not reveal the band, only the sound
does.

Voices: a real 48 kHz recording of a human voice (alsa-utils' ``/usr/share/sounds/alsa``, a
woman naming the speaker channels: content up to 20 kHz), the same recording a fourth lower
(``sox pitch -500``: a lower voice, its pitch and formants moved down, its high tones still
reaching ~15 kHz), and espeak-ng's male voice (synthetic, 22.05 kHz, so content only up to
~10.5 kHz: it stands in for the narrowband and wideband paths only). Room: quiet pink noise
from sox under the voice; the alsa recording adds its own hiss, which rises to within ~15 dB of
the voice at 6-7 kHz (so a wideband edge may read ~5.7 kHz, noise-limited). One PulseAudio
daemon serves the module.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from agent_kit.core.policy import load_policy
from agent_kit.core.results import Status
from agent_kit.evaluate.audio import evaluate_headset, evaluate_voice_bandwidth
from probes.audio.capture import measure_audio
from probes.audio.devices import list_audio_devices
from tests.lab.netns import LabError
from tests.lab.pulse import RATE, pulse_server, read_wav, sox, write_wav

pytestmark = [pytest.mark.lab, pytest.mark.timing]

ALSA_SOUNDS = Path("/usr/share/sounds/alsa")
ALSA_WORDS = ("Front_Center", "Front_Left", "Rear_Right", "Side_Left")   # about 5 s of speech
QUIET_S = 2.0
LEAD_S = QUIET_S + 0.6        # room before the voice: the capture's quiet window and margin
SENTENCE = "Thank you for calling. Let me look up your account, it will take a moment."
# path -> (sox effects, or two rate steps), the class it must read
PATHS: dict[str, tuple[tuple[str, ...], str]] = {
    "sinc3400": (("sinc", "-3400"), "narrowband"),
    "rate8k": (("rate", "8000"), "narrowband"),
    "sinc7000": (("sinc", "-7000"), "wideband"),
    "rate16k": (("rate", "16000"), "wideband"),
    "sinc16000": (("sinc", "-16000"), "superwideband"),
}
CASES = [(voice, path) for voice in ("alsa", "alsa_lower") for path in PATHS] + \
    [("espeak_male", "sinc3400"), ("espeak_male", "sinc7000")]


def nominal_top_hz(path: str) -> tuple[float, float]:
    """(the filter's nominal top, the highest edge it can let through): a sinc filter's cutoff
    and its transition band (sox's default is steep: 12 % or 500 Hz is generous); a rate's
    Nyquist and a resampler's transition band (~12 % past it)."""
    effects, _ = PATHS[path]
    if effects[0] == "rate":
        top = int(effects[1]) / 2
        return top, top * 1.15
    top = -float(effects[1])
    return top, max(top * 1.12, top + 500)


def through_path(src: Path, dst: Path, path: str) -> Path:
    """``src`` through the path's filter, back at 48 kHz 16-bit mono."""
    effects, _ = PATHS[path]
    if effects[0] == "rate":   # the device's inside rate, then the 48 kHz stream it sends
        inside = dst.with_suffix(".inside.wav")
        sox(str(src), "-b", "16", str(inside), "rate", effects[1])
        sox(str(inside), "-b", "16", str(dst), "rate", str(RATE))
    else:
        sox(str(src), "-b", "16", str(dst), *effects)
    return dst


class Voices:
    """The voices (48 kHz, 16-bit mono files) and the room, made once per module."""

    def __init__(self, d: Path) -> None:
        self.dir = d
        missing = [w for w in ALSA_WORDS if not (ALSA_SOUNDS / f"{w}.wav").exists()]
        if missing:
            raise LabError(f"{ALSA_SOUNDS}/{missing[0]}.wav missing: install alsa-utils "
                           "(scripts/install-deps.sh test)")
        alsa = d / "alsa.wav"
        sox(*(str(ALSA_SOUNDS / f"{w}.wav") for w in ALSA_WORDS), "-r", str(RATE), "-c", "1",
            "-b", "16", str(alsa), "norm", "-8")
        lower = d / "alsa_lower.wav"
        sox(str(alsa), "-b", "16", str(lower), "pitch", "-500", "norm", "-8")
        raw = d / "espeak22k.wav"
        subprocess.run(["espeak-ng", "-v", "en", "-w", str(raw), SENTENCE], check=True,
                       timeout=60, capture_output=True)
        male = d / "espeak_male.wav"
        sox(str(raw), "-r", str(RATE), "-b", "16", str(male), "norm", "-8")
        self.voice = {"alsa": alsa, "alsa_lower": lower, "espeak_male": male}
        self.room_file = d / "room.wav"
        sox("-n", "-r", str(RATE), "-c", "1", "-b", "16", str(self.room_file), "synth", "12",
            "pinknoise", "vol", "0.003")
        self.room = read_wav(self.room_file)

    def heard(self, voice: str, path: str) -> tuple[np.ndarray, np.ndarray, float]:
        """(program, room loop after it, seconds of voice): room, the voice over the room,
        room again; all of it through the path, as the headset would send it."""
        speech = read_wav(self.voice[voice])
        lead = int(LEAD_S * RATE)
        total = lead + speech.size + RATE
        mix = self.room[np.arange(total) % self.room.size].copy()
        mix[lead:lead + speech.size] += speech
        mix_file = write_wav(self.dir / f"{voice}-mix.wav", mix)
        program = read_wav(through_path(mix_file, self.dir / f"{voice}-{path}.wav", path))
        room = read_wav(through_path(self.room_file, self.dir / f"room-{path}.wav", path))
        return program, room, speech.size / RATE


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    voices = Voices(tmp_path_factory.mktemp("voice_band"))
    with pulse_server() as server:
        server.add_speaker("band_out", "Jabra Evolve2 40", bus="usb", form_factor="headset",
                           default=True)
        feed = server.add_microphone("band_mic", "Jabra Evolve2 40", bus="usb",
                                     form_factor="headset", vendor_id="0b0e",
                                     product_id="24f1", default=True)
        feed.set_background(voices.room)
        yield server, feed, voices
        assert feed.error is None, f"the microphone feed failed: {feed.error}"


@pytest.mark.parametrize(("voice", "path"), CASES, ids=[f"{v}-{p}" for v, p in CASES])
def test_the_path_filter_is_classified_right(lab, voice, path):
    server, feed, voices = lab
    truth = PATHS[path][1]
    program, room, voice_s = voices.heard(voice, path)
    server.set_default_source("band_mic")
    # the device says "USB headset" whatever its band: the sound has to tell
    assert evaluate_headset(list_audio_devices(), load_policy()).status is Status.PASS
    feed.play(program, then=room)
    reading = measure_audio(quiet_s=QUIET_S, speech_s=voice_s + 0.6)
    assert reading.problem is None and reading.speech_heard, reading
    band = reading.voice_band
    assert band is not None and band.band == truth, (voice, path, band)
    # The alsa recording carries its own hiss, rising to ~15 dB under the voice at 6-7 kHz:
    # above ~5.7 kHz it hides the voice (a wideband edge, as a lower bound). Never so for a
    # narrowband path: its filter takes the hiss away with the voice, so the edge is a finding.
    assert not (truth == "narrowband" and band.noise_limited), band
    # and the edge lies where the filter put it: never past its transition band, and for a
    # narrowband path (or a wideband one the hiss did not cover) close to its nominal top
    top, upper = nominal_top_hz(path)
    assert band.edge_hz <= upper, band
    if truth == "narrowband" or (truth == "wideband" and not band.noise_limited):
        assert band.edge_hz >= 0.85 * top, band
    result = evaluate_voice_bandwidth(reading, load_policy())
    assert result.status is (Status.WARN if truth == "narrowband" else Status.PASS), \
        result.message
    assert result.details["band"] == truth and result.value == pytest.approx(band.edge_khz)


def test_check_json_reports_a_narrowband_usb_headset(lab, tmp_path):
    """`agent-kit check --only audio --json`: the 8 kHz-inside USB headset warns, with its
    edge, class and fix; the headset check itself passes (the properties look fine)."""
    server, feed, voices = lab
    server.set_default_source("band_mic")
    program, room, _ = voices.heard("alsa", "rate8k")
    # the command starts at an unknown moment: loop room and voice so any window holds both
    feed.set_background(program)
    policy = tmp_path / "short.toml"
    policy.write_text("[audio]\nquiet_s = 2\nspeech_s = 6\n")
    try:
        proc = subprocess.run([sys.executable, "-m", "agent_kit.face.cli", "check", "--only",
                               "audio", "--json", "--policy", str(policy)],
                              capture_output=True, text=True, timeout=120, env=server.env)
    finally:
        feed.set_background(room)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    checks = {c["id"]: c for c in json.loads(proc.stdout)["checks"]}
    assert checks["audio.headset"]["status"] == "pass"
    band = checks["audio.voice_bandwidth"]
    assert band["status"] == "warn" and band["unit"] == "kHz", band
    assert band["details"]["band"] == "narrowband" and 3.0 <= band["value"] <= 4.25, band
    assert "narrowband" in band["fix"] and "USB" in band["fix"]
