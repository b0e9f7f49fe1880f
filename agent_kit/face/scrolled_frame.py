"""A vertically scrolling frame for Tk: the window's problem list, however long it gets.

Tk has no scrolling frame; the usual construction is a canvas holding one frame (``inner``), a
scrollbar bound to the canvas, and the inner frame kept as wide as the canvas so labels wrap to
it. The scrollbar shows only when the content is taller than the space, and the mouse wheel
scrolls while the pointer is over the list (X11 sends buttons 4/5, Windows and macOS
``<MouseWheel>``).
"""

from __future__ import annotations

import tkinter as tk
from tkinter import ttk


class ScrolledFrame(ttk.Frame):
    """Put children in ``inner``; call ``clear()`` to empty it and go back to the top."""

    def __init__(self, parent: tk.Misc, *, background: str) -> None:
        super().__init__(parent)
        self.canvas = tk.Canvas(self, highlightthickness=0, borderwidth=0, background=background)
        self.scrollbar = ttk.Scrollbar(self, orient="vertical", command=self.canvas.yview)
        self.canvas.configure(yscrollcommand=self._on_scroll)
        self.inner = tk.Frame(self.canvas, background=background)
        self._item = self.canvas.create_window(0, 0, window=self.inner, anchor="nw")
        self.canvas.grid(row=0, column=0, sticky="nsew")
        self.columnconfigure(0, weight=1)
        self.rowconfigure(0, weight=1)
        self.inner.bind("<Configure>", self._content_changed)
        self.canvas.bind("<Configure>", self._space_changed)
        for widget in (self.canvas, self.inner):
            widget.bind("<Enter>", self._wheel_on, add="+")
            widget.bind("<Leave>", self._wheel_off, add="+")

    @property
    def content_width(self) -> int:
        """Width the children may use (labels wrap to it)."""
        return max(self.canvas.winfo_width(), 100)

    def clear(self) -> None:
        for child in self.inner.winfo_children():
            child.destroy()
        self.canvas.yview_moveto(0.0)

    def scrollable(self) -> bool:
        """Whether the content is taller than the space (the scrollbar is shown)."""
        return bool(self.scrollbar.winfo_ismapped())

    def _content_changed(self, _event: tk.Event[tk.Misc]) -> None:
        self.canvas.configure(scrollregion=(0, 0, self.inner.winfo_reqwidth(),
                                            self.inner.winfo_reqheight()))

    def _space_changed(self, event: tk.Event[tk.Misc]) -> None:
        self.canvas.itemconfigure(self._item, width=event.width)

    def _on_scroll(self, first: float, last: float) -> None:
        self.scrollbar.set(first, last)
        if float(first) <= 0.0 and float(last) >= 1.0:
            self.scrollbar.grid_remove()
        else:
            self.scrollbar.grid(row=0, column=1, sticky="ns")

    def _wheel_on(self, _event: tk.Event[tk.Misc]) -> None:
        self.canvas.bind_all("<MouseWheel>", self._wheel)
        self.canvas.bind_all("<Button-4>", self._wheel)
        self.canvas.bind_all("<Button-5>", self._wheel)

    def _wheel_off(self, _event: tk.Event[tk.Misc]) -> None:
        for sequence in ("<MouseWheel>", "<Button-4>", "<Button-5>"):
            self.canvas.unbind_all(sequence)

    def _wheel(self, event: tk.Event[tk.Misc]) -> None:
        if not self.scrollable():
            return
        if event.num == 4 or getattr(event, "delta", 0) > 0:
            self.canvas.yview_scroll(-2, "units")
        else:
            self.canvas.yview_scroll(2, "units")
