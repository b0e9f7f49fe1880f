"""The microphone step's words and meter scale, and its terminal guide (no Tk here).

``device_line`` and ``meter_fraction`` are shared with the window's panel
(``agent_kit.face.microphone_panel``). ``TerminalMicrophoneGuide`` is the terminal's
``agent_kit.run.microphone_step.MicrophoneGuide``: it names the device the test records (or
warns that it is the laptop's own microphone), waits for Enter, then shows each step's words
and, on one line that rewrites itself, the seconds left and the live level. Levels only: the
samples never leave the capture probe.
"""

from __future__ import annotations

import math
import sys
import threading
import time
from typing import TextIO

from agent_kit.core.i18n import _
from agent_kit.run.microphone_step import MicrophoneInUse

METER_FLOOR_DBFS = -60.0   # the empty bar: a quiet room's floor reads about -60 dBFS here
METER_SPEECH_DBFS = -40.0  # from here on the bar is green: a voice the test will hear
METER_LOUD_DBFS = -6.0     # and red from here: close to clipping


def device_line(microphone: MicrophoneInUse) -> tuple[str, bool]:
    """What the panel says about the microphone, and whether it is a warning."""
    if microphone.kind == "builtin":
        return _("Warning: this test would record the computer's built-in microphone, not a "
                 "headset. Plug in your headset and select it as the microphone in the sound "
                 "settings."), True
    if microphone.kind == "webcam":
        return _("Warning: this test would record the webcam's microphone, not a headset. "
                 "Select your headset as the microphone in the sound settings."), True
    if microphone.name is None:
        return _("Warning: no microphone is selected in the sound settings."), True
    return _("Testing: {device}").format(device=microphone.name), not microphone.is_headset


def meter_fraction(dbfs: float) -> float:
    """Where a level sits on the meter, 0 (floor) to 1 (0 dBFS)."""
    if math.isnan(dbfs):
        return 0.0
    return min(1.0, max(0.0, (dbfs - METER_FLOOR_DBFS) / -METER_FLOOR_DBFS))


METER_CELLS = 30
TICK_S = 0.1


def meter_text(level_dbfs: float | None, seconds_left: int) -> str:
    """One line: the countdown, then the level as a bar (``█`` filled, ``·`` empty)."""
    filled = round(METER_CELLS * meter_fraction(level_dbfs)) if level_dbfs is not None else 0
    bar = "█" * filled + "·" * (METER_CELLS - filled)
    return f"  {_('{seconds} s').format(seconds=seconds_left):>10}  {bar}"


class TerminalMicrophoneGuide:
    """Guides the test on ``stream`` (stderr), reading Enter from ``stdin``."""

    def __init__(self, stream: TextIO | None = None, stdin: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.stdin = stdin or sys.stdin
        self._level: float | None = None
        self._ends_at: float | None = None
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None
        self._live = bool(getattr(self.stream, "isatty", lambda: False)())
        self._lock = threading.Lock()     # the ticker and the probe thread share the line
        self._meter_on_line = False

    def ready(self, microphone: MicrophoneInUse, timeout_s: float) -> bool:
        text, _warning = device_line(microphone)
        self._say(f"\n>>> {text}\n    " + _(
            "Put your headset on and bring the microphone to the corner of your mouth, then "
            "press Enter to start the microphone test."))
        answered = threading.Event()
        pressed: list[bool] = []

        def wait_enter() -> None:
            try:
                pressed.append(self.stdin.readline() != "")   # "": end of input, nobody there
            except (OSError, ValueError):
                pressed.append(False)
            answered.set()

        threading.Thread(target=wait_enter, name="microphone-enter", daemon=True).start()
        return answered.wait(timeout_s) and pressed == [True]

    def phase(self, text: str, seconds: float) -> None:
        self._end_line()
        self._say(f"\n>>> {text}")
        with self._lock:
            self._ends_at = time.monotonic() + seconds
        self._level = None
        if self._live and self._ticker is None:
            self._stop.clear()
            self._ticker = threading.Thread(target=self._tick, name="microphone-meter",
                                            daemon=True)
            self._ticker.start()

    def level(self, dbfs: float) -> None:
        self._level = dbfs

    def finished(self) -> None:
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join(timeout=1.0)
            self._ticker = None
        self._end_line()

    def _tick(self) -> None:
        while not self._stop.wait(TICK_S):
            with self._lock:
                if self._ends_at is None:
                    continue
                left = max(1, math.ceil(self._ends_at - time.monotonic()))
                # back to the line's start and clear to its end: the meter rewrites itself
                self.stream.write("\r" + meter_text(self._level, left) + "\x1b[K")
                self.stream.flush()
                self._meter_on_line = True

    def _end_line(self) -> None:
        with self._lock:
            if self._meter_on_line:
                self.stream.write("\n")
                self.stream.flush()
                self._meter_on_line = False

    def _say(self, text: str) -> None:
        print(text, file=self.stream, flush=True)
