"""``agent-kit check`` in a real terminal (a pty) with the virtual headset: the microphone step
names the device, waits for Enter, counts down and draws the level meter on one line.

The person is played by the test: it presses Enter when asked, and plays espeak-ng's sentence
into the microphone when the terminal says to read it aloud.
"""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tests.lab.pulse import RATE, MicFeed, pulse_server, read_wav, sox

pytestmark = [pytest.mark.lab, pytest.mark.timing]
ROOT = Path(__file__).resolve().parents[1]
SENTENCE = "Good morning, and thank you for calling. How can I help you today?"


@pytest.fixture(scope="module")
def headset(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[MicFeed, np.ndarray]]:
    d = tmp_path_factory.mktemp("terminal-audio")
    raw = d / "speech22k.wav"
    subprocess.run(["espeak-ng", "-w", str(raw), SENTENCE], check=True, timeout=60,
                   capture_output=True)
    sox(str(raw), "-r", str(RATE), "-b", "16", str(d / "speech.wav"), "vol", "0.5")
    sox("-n", "-r", str(RATE), "-c", "1", "-b", "16", str(d / "quiet.wav"), "synth", "12",
        "pinknoise", "vol", "0.003")
    with pulse_server() as server:
        server.add_speaker("headset_out", "Jabra Evolve2 40", bus="usb", form_factor="headset",
                           default=True)
        feed = server.add_microphone("headset_mic", "Jabra Evolve2 40", bus="usb",
                                     form_factor="headset", vendor_id="0b0e",
                                     product_id="24f1", default=True)
        feed.set_background(read_wav(d / "quiet.wav"))
        yield feed, read_wav(d / "speech.wav")
        assert feed.error is None, f"the microphone feed failed: {feed.error}"


def test_check_in_a_terminal_guides_the_microphone_test(headset, tmp_path):
    feed, speech = headset
    policy = tmp_path / "policy.toml"
    policy.write_text('[audio]\nquiet_s = 2\nspeech_s = 4\n')
    master, slave = pty.openpty()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "AGENT_KIT_HOME": str(tmp_path / "home"),
           "TERM": "xterm"}
    proc = subprocess.Popen([sys.executable, "-m", "agent_kit.face.cli", "check", "--only",
                             "audio", "--details", "--policy", str(policy), "--lang", "en"],
                            stdin=slave, stdout=subprocess.PIPE, stderr=slave, env=env)
    os.close(slave)
    seen = b""
    entered = played = False
    deadline = time.monotonic() + 90
    try:
        while proc.poll() is None and time.monotonic() < deadline:
            ready, _w, _x = select.select([master], [], [], 0.05)
            if ready:
                try:
                    seen += os.read(master, 4096)
                except OSError:   # the child closed the terminal
                    break
            if not entered and b"press Enter" in seen:
                time.sleep(0.5)   # a person takes a moment; the test must wait for them
                os.write(master, b"\n")
                entered = True
            if not played and b"read this sentence aloud" in seen:
                feed.play(speech)
                played = True
        out = proc.communicate(timeout=30)[0].decode()
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)
    text = seen.decode(errors="replace")
    (ROOT / "test-artifacts").mkdir(exist_ok=True)   # what the agent saw, to be looked at
    (ROOT / "test-artifacts" / "terminal-microphone-step.txt").write_text(text + "\n" + out)
    assert entered and played, text
    assert ">>> Testing: Jabra Evolve2 40" in text, text
    # the sentence is asked for only after Enter, and the meter line rewrites itself
    assert text.index("press Enter") < text.index("stay quiet") < text.index("read this")
    meter = [part for part in text.split("\r") if "█" in part or "·" * 10 in part]
    assert len(meter) >= 10, text
    assert any("3 s" in m for m in meter) and any("1 s" in m for m in meter), meter
    assert max(m.count("█") for m in meter) >= 10, meter   # the voice moved the bar
    assert proc.returncode in (0, 1), (proc.returncode, out)
    assert "Speech level" in out, out   # --details: every check, the speech level's included
