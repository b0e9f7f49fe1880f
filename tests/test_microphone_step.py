"""The guided microphone test without a sound card: levels, phases, the "not started" answer,
and what the window's panel says about the device. The real capture is in test_window.py."""

from __future__ import annotations

import io
import math
import time
from typing import Any

import numpy as np
import pytest

from agent_kit.core.checks import ids_owned_by
from agent_kit.core.i18n import set_language
from agent_kit.core.policy import load_policy
from agent_kit.core.results import Status
from agent_kit.face.microphone_guide import (
    TerminalMicrophoneGuide,
    device_line,
    meter_fraction,
    meter_text,
)
from agent_kit.face.window import window_size
from agent_kit.run import microphone_step
from agent_kit.run.microphone_step import MicrophoneInUse, room_results
from agent_kit.run.units import ProbeContext
from probes.audio import capture
from probes.audio.capture import LEVEL_FLOOR_DBFS, block_level_dbfs


def test_block_level_golden_values():
    square = np.array([32767, -32768] * 500, dtype=np.int16)
    assert block_level_dbfs(square) == pytest.approx(0.0, abs=0.01)
    half = (square // 2).astype(np.int16)
    assert block_level_dbfs(half) == pytest.approx(-6.02, abs=0.01)
    t = np.arange(4800) / 48000
    sine = np.round(32767 * 0.1 * np.sin(2 * np.pi * 1000 * t)).astype(np.int16)
    assert block_level_dbfs(sine) == pytest.approx(-23.01, abs=0.05)   # -20 dB peak, -3 dB RMS
    assert block_level_dbfs(np.zeros(480, dtype=np.int16)) == LEVEL_FLOOR_DBFS
    assert block_level_dbfs(np.zeros(0, dtype=np.int16)) == LEVEL_FLOOR_DBFS


def test_meter_fraction_is_clamped_and_linear_in_db():
    assert meter_fraction(-60.0) == 0.0 and meter_fraction(-100.0) == 0.0
    assert meter_fraction(0.0) == 1.0 and meter_fraction(3.0) == 1.0
    assert meter_fraction(-30.0) == pytest.approx(0.5)
    assert meter_fraction(math.nan) == 0.0


def test_device_line_names_the_headset_and_warns_about_the_laptop():
    set_language("en")
    assert device_line(MicrophoneInUse("Jabra Evolve2 40", "usb_headset")) == (
        "Testing: Jabra Evolve2 40", False)
    text, warning = device_line(MicrophoneInUse("Built-in Audio Analog Stereo", "builtin"))
    assert warning and "built-in microphone" in text and "Built-in Audio" not in text
    assert device_line(MicrophoneInUse("Logitech C920", "webcam"))[1]
    assert device_line(MicrophoneInUse(None, None))[1]
    assert device_line(MicrophoneInUse("Some USB Audio", "unknown")) == (
        "Testing: Some USB Audio", True)


@pytest.mark.parametrize(("screen", "fits"), [((1280, 800), (860, 640)),
                                              ((1366, 768), (860, 640)),
                                              ((1920, 1080), (860, 640)),
                                              ((1024, 600), (860, 472))])
def test_window_size_fits_the_screen_with_its_task_bar(screen, fits):
    assert window_size(*screen) == fits
    width, height = window_size(*screen)
    assert width <= screen[0] - 40 and height <= screen[1] - 48 - 32


class Guide:
    def __init__(self, answer: bool) -> None:
        self.answer = answer
        self.calls: list[tuple[str, Any]] = []

    def ready(self, microphone: MicrophoneInUse, timeout_s: float) -> bool:
        self.calls.append(("ready", timeout_s))
        return self.answer

    def phase(self, text: str, seconds: float) -> None:
        self.calls.append(("phase", (text, seconds)))

    def level(self, dbfs: float) -> None:
        self.calls.append(("level", dbfs))

    def finished(self) -> None:
        self.calls.append(("finished", None))


def test_nobody_pressed_ready_means_unknown_with_a_fix_and_nothing_recorded(monkeypatch):
    set_language("en")

    def no_recording(*_a: Any, **_k: Any) -> Any:
        raise AssertionError("recorded although nobody said they were ready")

    monkeypatch.setattr(capture, "record", no_recording)
    monkeypatch.setattr(microphone_step, "microphone_in_use",
                        lambda: MicrophoneInUse("Jabra Evolve2 40", "usb_headset"))
    guide = Guide(answer=False)
    ctx = ProbeContext(policy=load_policy(None), interactive=True, microphone=guide)
    results = room_results(ctx)
    assert {r.id for r in results} == set(ids_owned_by("room"))
    assert all(r.status is Status.UNKNOWN and r.message == "the microphone test was not started"
               and r.fix and "Start the microphone test" in r.fix for r in results)
    assert [c[0] for c in guide.calls] == ["ready", "finished"]


def test_no_microphone_at_all_asks_nobody_to_get_ready(monkeypatch):
    """Nothing to put on: the guide is not shown, the recording is tried at once and its reason
    stands (a person is not kept waiting two minutes for a device that is not there)."""
    set_language("en")

    def no_device(*_a: Any, **_k: Any) -> Any:
        raise OSError("no input device")

    monkeypatch.setattr(capture, "record", no_device)
    monkeypatch.setattr(microphone_step, "microphone_in_use", lambda: MicrophoneInUse(None, None))
    guide = Guide(answer=True)
    ctx = ProbeContext(policy=load_policy(None), interactive=True, microphone=guide)
    results = room_results(ctx)
    assert guide.calls == []
    assert {r.id for r in results} == set(ids_owned_by("room"))
    assert all(r.status is Status.UNKNOWN for r in results)


def test_guided_capture_reports_each_step_with_its_length_and_live_levels(monkeypatch):
    """The sound card is the boundary faked here: ``record`` plays a quiet then a loud block."""
    set_language("en")

    def fake_record(seconds: float, *, on_mark: Any = None, marks: Any = (), device: Any = None,
                    sample_rate: int = 48000, on_level: Any = None) -> Any:
        for _at, text in marks:
            on_mark(text)
            on_level(-70.0)
        rng = np.random.default_rng(1)
        samples = (rng.standard_normal(int(seconds * sample_rate)) * 300).astype(np.int16)
        return samples, 0

    monkeypatch.setattr(capture, "record", fake_record)
    monkeypatch.setattr(capture, "call_input_device", lambda: (0, "pulse (default)"))
    steps: list[tuple[str, float]] = []
    levels: list[float] = []
    reading = capture.measure_audio(quiet_s=2.0, speech_s=4.0, interactive=True,
                                    prompt=lambda _t: None, device_label="Jabra Evolve2 40",
                                    on_phase=lambda t, s: steps.append((t, s)),
                                    on_level=levels.append)
    assert [s for _t, s in steps] == [2.0, 4.0]
    assert "2 seconds" in steps[0][0] and "read this sentence aloud" in steps[1][0]
    assert levels == [-70.0, -70.0]
    assert reading.device == "Jabra Evolve2 40" and reading.prompted


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_terminal_guide_names_the_device_waits_for_enter_and_draws_the_meter():
    set_language("en")
    out = Tty()
    guide = TerminalMicrophoneGuide(stream=out, stdin=io.StringIO("\n"))
    assert guide.ready(MicrophoneInUse("Jabra Evolve2 40", "usb_headset"), 5.0)
    guide.phase("Now read this sentence aloud", 1.0)
    guide.level(-30.0)
    time.sleep(0.35)
    guide.finished()
    text = out.getvalue()
    assert ">>> Testing: Jabra Evolve2 40" in text and "press Enter" in text
    assert ">>> Now read this sentence aloud" in text
    assert "\r" + meter_text(-30.0, 1) + "\x1b[K" in text     # the line rewrites itself
    assert meter_text(-30.0, 1).count("█") == 15 and text.endswith("\n")
    # end of input (no person at the keyboard): the test is not started
    assert not TerminalMicrophoneGuide(stream=io.StringIO(), stdin=io.StringIO("")).ready(
        MicrophoneInUse(None, None), 5.0)
