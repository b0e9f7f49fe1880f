"""Small inline SVG charts for the HTML report: no script, no font file, no network to view.

Two shapes: a level bar (one reading against its warn/fail levels, coloured zones) and a line
chart (a series over the test, with the levels as dashed lines). Output is an ``<svg>`` string
ready to paste into HTML; every text is escaped.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

GREEN, AMBER, RED, GREY, INK = "#2e7d32", "#f9a825", "#c62828", "#9e9e9e", "#212121"
_ZONE = {GREEN: "#e8f5e9", AMBER: "#fff8e1", RED: "#ffebee"}
_STATUS_COLOUR = {"pass": GREEN, "warn": AMBER, "fail": RED, "unknown": GREY}


def _num(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".") if abs(value) < 1000 else f"{value:.0f}"


def _scale_max(values: Sequence[float]) -> float:
    top = max((abs(v) for v in values), default=1.0)
    return top * 1.25 if top > 0 else 1.0


def _nice_ceiling(value: float) -> float:
    """The smallest 1, 2, 3, 4, 5, 6, 8 or 10 times a power of ten at or above ``value``: the
    top of an axis whose middle tick is a round number too (400 and 200 ms, not 312.5)."""
    import math

    if value <= 0:
        return 1.0
    power = 10.0 ** math.floor(math.log10(value))
    return next(m * power for m in (1, 2, 3, 4, 5, 6, 8, 10) if m * power >= value - 1e-9)


def level_bar(value: float, warn: float | None, fail: float | None, *, direction: str,
              status: str, unit: str | None, width: int = 360, height: int = 30) -> str:
    """One reading on a bar coloured by the policy's zones (good, warn, fail); "" when the
    policy sets no level: a bar with nothing to compare against would read as "full"."""
    if warn is None and fail is None:
        return ""
    levels = [v for v in (value, warn, fail) if v is not None]
    if max(levels) <= 0:     # levels in dBFS: the scale ends at full scale (0)
        lo, hi = min(levels) * 1.25 if min(levels) < 0 else -1.0, 0.0
    else:
        lo, hi = min(0.0, *levels), _scale_max(levels)
    if hi <= lo:
        hi = lo + 1.0

    def x(v: float) -> float:
        return 4 + (width - 8) * (min(max(v, lo), hi) - lo) / (hi - lo)

    bar_y, bar_h = 4, height - 16
    zones: list[tuple[float, float, str]] = []
    if direction == "higher_is_worse":
        w = warn if warn is not None else (fail if fail is not None else hi)
        f = fail if fail is not None else hi
        zones = [(lo, w, GREEN), (w, f, AMBER), (f, hi, RED)]
    else:  # lower_is_worse
        f = fail if fail is not None else lo
        w = warn if warn is not None else f
        zones = [(lo, f, RED), (f, w, AMBER), (w, hi, GREEN)]
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(_num(value))}">']
    for a, b, colour in zones:
        if b > a:
            parts.append(f'<rect x="{x(a):.1f}" y="{bar_y}" width="{x(b) - x(a):.1f}" '
                         f'height="{bar_h}" fill="{_ZONE[colour]}"/>')
    labelled: list[float] = []
    for level in (warn, fail):
        if level is not None:
            parts.append(f'<line x1="{x(level):.1f}" x2="{x(level):.1f}" y1="{bar_y}" '
                         f'y2="{bar_y + bar_h}" stroke="{GREY}" stroke-dasharray="3,2"/>')
            if all(abs(x(level) - done) >= 22 for done in labelled):  # no overlapping labels
                labelled.append(x(level))
                parts.append(f'<text x="{x(level):.1f}" y="{height - 1}" font-size="9" '
                             f'text-anchor="middle" fill="{GREY}">{escape(_num(level))}</text>')
    colour = _STATUS_COLOUR.get(status, GREY)
    parts.append(f'<rect x="{x(lo):.1f}" y="{bar_y + bar_h / 2 - 3:.1f}" '
                 f'width="{max(x(value) - x(lo), 2):.1f}" height="6" rx="3" fill="{colour}"/>'
                 f'<circle cx="{x(value):.1f}" cy="{bar_y + bar_h / 2:.1f}" r="5" '
                 f'fill="{colour}"/>')
    parts.append("</svg>")
    return "".join(parts)


def line_chart(points: Sequence[float], *, title: str, unit: str | None,
               warn: float | None = None, fail: float | None = None,
               x_label: str = "", warn_label: str = "", fail_label: str = "",
               width: int = 560, height: int = 190) -> str:
    """A series over the test (sample index on x), titled "title (unit)", the y axis labelled
    with the unit and the x axis with ``x_label``; the policy's levels as dashed lines, each
    named (``warn_label``, ``fail_label``) at its right end."""
    left, right, top, bottom = 56, 8, 24, 34
    values = [float(v) for v in points]
    levels = [v for v in (warn, fail) if v is not None]
    lo = min(0.0, *values)
    hi = _nice_ceiling(_scale_max(values + levels)) if lo >= 0 else _scale_max(values + levels)
    span = hi - lo if hi > lo else 1.0
    n = max(len(values) - 1, 1)
    plot_w, plot_h = width - left - right, height - top - bottom

    def xy(i: int, v: float) -> str:
        return f"{left + plot_w * i / n:.1f},{top + plot_h * (1 - (v - lo) / span):.1f}"

    heading = f"{title} ({unit})" if unit else title
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(heading)}">',
             f'<text x="{left}" y="15" font-size="13" font-weight="600" fill="{INK}">'
             f'{escape(heading)}</text>',
             f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="none" '
             f'stroke="#e0e0e0"/>']
    for frac in (0.0, 0.5, 1.0):
        v = lo + span * frac
        y = top + plot_h * (1 - frac)
        parts.append(f'<text x="{left - 4}" y="{y + 3:.1f}" font-size="9" text-anchor="end" '
                     f'fill="{GREY}">{escape(_num(v))}</text>')
    if unit:   # the y axis says what its numbers are
        cy = top + plot_h / 2
        parts.append(f'<text x="12" y="{cy:.1f}" font-size="10" text-anchor="middle" '
                     f'fill="{GREY}" transform="rotate(-90 12 {cy:.1f})" class="y-axis">'
                     f'{escape(unit)}</text>')
    for level, colour, label in ((warn, AMBER, warn_label), (fail, RED, fail_label)):
        if level is not None and lo <= level <= hi:
            y = top + plot_h * (1 - (level - lo) / span)
            parts.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{y:.1f}" y2="{y:.1f}" '
                         f'stroke="{colour}" stroke-dasharray="4,3" class="threshold"/>')
            if label:
                parts.append(f'<text x="{left + plot_w - 2}" y="{y - 3:.1f}" font-size="9" '
                             f'text-anchor="end" fill="{colour}">{escape(label)}</text>')
    if values:
        path = " ".join(xy(i, v) for i, v in enumerate(values))
        parts.append(f'<polyline points="{path}" fill="none" stroke="#1565c0" '
                     f'stroke-width="1.5"/>')
    axis_y = top + plot_h + 11
    parts.append(f'<text x="{left}" y="{axis_y}" font-size="9" fill="{GREY}">1</text>'
                 f'<text x="{left + plot_w}" y="{axis_y}" font-size="9" text-anchor="end" '
                 f'fill="{GREY}">{len(values)}</text>')
    if x_label:
        parts.append(f'<text x="{left + plot_w / 2:.1f}" y="{height - 4}" font-size="10" '
                     f'text-anchor="middle" fill="{GREY}" class="x-axis">{escape(x_label)}'
                     f'</text>')
    parts.append("</svg>")
    return "".join(parts)
