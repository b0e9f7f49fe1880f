"""The window's microphone step: which microphone, "put your headset on", countdown, level meter.

Tk widgets only, driven from the window's main thread (``agent_kit.face.window`` turns the
probe's callbacks, ``agent_kit.run.microphone_step.MicrophoneGuide``, into calls here). The
meter shows levels only: the samples never leave the capture probe.
"""

from __future__ import annotations

import math
import time
import tkinter as tk
from collections.abc import Callable
from tkinter import font as tkfont

from agent_kit.core.i18n import _
from agent_kit.face.microphone_guide import (
    METER_FLOOR_DBFS,
    METER_LOUD_DBFS,
    METER_SPEECH_DBFS,
    device_line,
    meter_fraction,
)
from agent_kit.run.microphone_step import MicrophoneInUse

PANEL_BG = "#eef3fb"
BLUE, GREEN, AMBER, RED, GREY = "#0d47a1", "#1b7f3a", "#a86b00", "#c62828", "#9e9e9e"


class MicrophonePanel(tk.Frame):
    """Shown in place of the problem list while the microphone is tested."""

    def __init__(self, parent: tk.Misc, *, fonts: dict[str, tkfont.Font],
                 on_ready: Callable[[], None], wrap: int) -> None:
        super().__init__(parent, background=PANEL_BG, padx=14, pady=10)
        self.device = tk.Label(self, font=fonts["bold"], background=PANEL_BG, justify="left",
                               anchor="w", wraplength=wrap)
        self.device.pack(fill="x")
        self.instruction = tk.Label(self, background=PANEL_BG, justify="left", anchor="w",
                                    wraplength=wrap, text=_(
                                        "Put your headset on and bring the microphone to the "
                                        "corner of your mouth. Then press “Start the microphone "
                                        "test”: you will be asked to stay quiet for a moment, "
                                        "then to read a sentence aloud."))
        self.ready_button = tk.Button(self, text=_("Start the microphone test"),
                                      command=on_ready, font=fonts["bold"], background=BLUE,
                                      foreground="white", activebackground="#1565c0",
                                      activeforeground="white", relief="flat", padx=14, pady=6)
        # The instructions of the running step ("stay quiet", "read this aloud").
        self.prompt = tk.Label(self, text="", font=fonts["prompt"], foreground="white",
                               background=BLUE, wraplength=wrap - 24, justify="center",
                               padx=12, pady=8)
        row = tk.Frame(self, background=PANEL_BG)
        self.countdown = tk.Label(row, text="", font=fonts["verdict"], background=PANEL_BG,
                                  foreground=BLUE, width=6, anchor="w")
        self.countdown.pack(side="left")
        meter_box = tk.Frame(row, background=PANEL_BG)
        meter_box.pack(side="left", fill="x", expand=True)
        self.meter_label = tk.Label(meter_box, text=_("Microphone level"), background=PANEL_BG,
                                    anchor="w")
        self.meter_label.pack(fill="x")
        self.meter = tk.Canvas(meter_box, height=20, background="#dcdcdc",
                               highlightthickness=0, borderwidth=0)
        self.meter.pack(fill="x")
        self._row = row
        self._ends_at: float | None = None
        self.last_level_dbfs: float | None = None
        self.peak_fraction = 0.0    # the highest the bar went during this test

    # ------------------------------------------------------------------ steps
    def ask_ready(self, microphone: MicrophoneInUse) -> None:
        """Name the microphone and wait for the button."""
        text, warning = device_line(microphone)
        self.device.configure(text=text, foreground=AMBER if warning else GREEN)
        self.prompt.pack_forget()
        self._row.pack_forget()
        self.instruction.pack(fill="x", pady=(6, 8))
        self.ready_button.pack(anchor="w")
        self.ready_button.configure(state="normal")
        self._ends_at = None
        self.last_level_dbfs = None
        self.peak_fraction = 0.0
        self.countdown.configure(text="")
        self._draw(0.0)

    def start_phase(self, text: str, seconds: float) -> None:
        """A recording step starts: its words, its countdown, the live meter."""
        self.instruction.pack_forget()
        self.ready_button.pack_forget()
        self.prompt.configure(text=text)
        self.prompt.pack(fill="x", pady=(8, 6))
        self._row.pack(fill="x")
        # no length known (plain instructions): no countdown rather than a wrong one
        self._ends_at = time.monotonic() + seconds if seconds > 0 else None
        self.countdown.configure(text="")
        self.tick()

    def pressed(self) -> None:
        self.ready_button.configure(state="disabled")

    def tick(self, level_dbfs: float | None = None) -> None:
        """Called every 50 ms by the window: the countdown, and the newest level."""
        if self._ends_at is not None:
            # never "0 s" while the step runs: the next step (or the end) replaces it
            left = max(1, math.ceil(self._ends_at - time.monotonic()))
            self.countdown.configure(text=_("{seconds} s").format(seconds=left))
        if level_dbfs is not None:
            self.last_level_dbfs = level_dbfs
            fraction = meter_fraction(level_dbfs)
            self.peak_fraction = max(self.peak_fraction, fraction)
            self._draw(fraction, level_dbfs)

    def _draw(self, fraction: float, level_dbfs: float = METER_FLOOR_DBFS) -> None:
        width = max(self.meter.winfo_width(), 200)
        height = 20
        colour = (RED if level_dbfs >= METER_LOUD_DBFS else GREEN
                  if level_dbfs >= METER_SPEECH_DBFS else GREY)
        self.meter.delete("all")
        self.meter.create_rectangle(0, 0, int(width * fraction), height, fill=colour, width=0,
                                    tags="bar")
        # marks where a voice starts to count and where it gets too loud
        for mark in (METER_SPEECH_DBFS, METER_LOUD_DBFS):
            x = int(width * meter_fraction(mark))
            self.meter.create_line(x, 0, x, height, fill="#555555")

    @property
    def bar_width(self) -> int:
        """Pixels of the bar drawn now (tests read the meter through this)."""
        items = self.meter.find_withtag("bar")
        if not items:
            return 0
        x0, _y0, x1, _y1 = self.meter.coords(items[0])
        return int(x1 - x0)
