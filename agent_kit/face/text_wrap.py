"""Text laid out for a terminal: display widths, word-aware wrapping, CJK line breaking.

Every terminal viewer (the check report, ``devices``, ``status``, the monitor's lines) wraps
through this module, so a message reads the same everywhere and in every language:

- widths are display columns (``wcwidth``): a Japanese or Korean character takes two columns,
  a combining mark none, so a CJK line never overflows and a table never loses a character;
- Latin text (English, Swedish) breaks only at spaces: no word is split unless it alone is wider
  than the line (a long path, an address);
- Korean breaks at spaces too (its words are space-separated: breaking inside one reads wrong);
- Japanese and Chinese break between characters, with the kinsoku rules of JIS X 4051: no line
  starts with closing punctuation or a small kana (。、」ー...), no line ends with an opening
  bracket, and a number is never split from its counter or unit ("5 秒", "3台", "45 ms");
- a continuation line has a hanging indent, and "Fix:" goes on a line of its own
  (``labelled``), indented under the problem it fixes.

The window uses the same rules (``wrap_measured``) with widths in pixels: it passes a
function that measures one character in its font, so this module stays free of Tk and Tk's
own wrapping (which starts a line with "、" and splits "5 秒") is never used for a sentence.

UAX #14 (``uniseg``) was considered: it allows a break between a digit and a following
ideograph ("5⏎秒"), which is the break this module must prevent, so the rules it would need on
top are most of the work; the kinsoku sets here are small, tested, and carry no dependency.
"""

from __future__ import annotations

import shutil
import unicodedata
from collections.abc import Callable
from typing import TextIO

from wcwidth import wcwidth

# JIS X 4051 line-start prohibited characters (gyoto kinsoku): closing brackets, stops, small
# kana, prolonged sound mark, iteration marks; with their ASCII and full-width counterparts.
NO_LINE_START = frozenset(
    "、。，．,.:;?!？！：；・ー‐゠–〜～…‥"
    "）)]｝}〕〉》」』】〙〗〟’”»›%％‰℃"
    "ぁぃぅぇぉっゃゅょゎゕゖァィゥェォッャュョヮヵヶㇰㇱㇲㇳㇴㇵㇶㇷㇸㇹㇺㇻㇼㇽㇾㇿ"
    "々〻ゝゞヽヾ")
# Line-end prohibited characters (gyomatsu kinsoku): opening brackets and quotes.
NO_LINE_END = frozenset("（([｛{〔〈《「『【〘〖〝‘“«‹")
# A number followed by a space keeps the next word when it is this narrow: a unit or a counter
# ("45 ms", "23405 MB", "3 台"), not a whole clause.
UNIT_MAX_WIDTH = 6


def char_width(char: str) -> int:
    """Display columns of one character: 2 for wide (CJK), 0 for combining or control."""
    w = wcwidth(char)
    return max(w, 0)


def display_width(text: str) -> int:
    """Display columns of ``text`` in a terminal (``len`` is wrong for CJK and combining)."""
    return sum(char_width(c) for c in text)


def terminal_width(stream: TextIO | None = None, default: int = 80) -> int:
    """Columns of the terminal ``stream`` is, else ``$COLUMNS``, else ``default``."""
    import os

    if stream is not None and stream.isatty():
        try:
            return max(os.get_terminal_size(stream.fileno()).columns, 20)
        except (OSError, ValueError):
            pass
    return max(shutil.get_terminal_size((default, 24)).columns, 20)


def _breaks_between_chars(char: str) -> bool:
    """Ideographic text (Japanese kana and kanji, Chinese, full-width forms) may break between
    any two characters; Hangul and Latin only at spaces."""
    if char_width(char) < 2:
        return False
    name = unicodedata.name(char, "")
    return not name.startswith(("HANGUL", "HALFWIDTH HANGUL"))


def _is_space(char: str) -> bool:
    # the no-break space (U+00A0) and U+202F are not places to break
    return char.isspace() and char not in "\u00a0\u202f\u2007"


def break_opportunities(text: str) -> list[bool]:
    """``result[i]``: whether a line may start at ``text[i]`` (never at 0 or at a space)."""
    n = len(text)
    allowed = [False] * n
    for i in range(1, n):
        prev, cur = text[i - 1], text[i]
        if _is_space(cur):
            continue
        if cur in NO_LINE_START:   # kinsoku before the after-space rule: "5 %", "「 」"
            continue
        if _is_space(prev):
            allowed[i] = not _keeps_number_with_unit(text, i)
            continue
        if prev in NO_LINE_END:
            continue
        if prev.isdigit() or (prev.isascii() and prev.isalpha()):
            # "5秒", "3台", "USB端子": a Latin run and the ideograph after it stay together
            continue
        if _breaks_between_chars(prev) or _breaks_between_chars(cur):
            allowed[i] = True
    return allowed


def _keeps_number_with_unit(text: str, start: int) -> bool:
    """At a word start after spaces: is the word before a number and this word its unit?"""
    j = start - 1
    while j >= 0 and _is_space(text[j]):
        j -= 1
    if j < 0 or not text[j].isdigit():
        return False
    if char_width(text[start]) == 2:   # "45 ミリ秒", "3 台": a counter, however long the run
        return True
    end = start
    while end < len(text) and not _is_space(text[end]):
        end += 1
    word = text[start:end].rstrip(",.;:)")
    return 0 < display_width(word) <= UNIT_MAX_WIDTH and not word[0].isdigit()


def _wrap_paragraph(text: str, width: int,
                    width_of: Callable[[str], int] = char_width) -> list[str]:
    """Greedy filling of lines no wider than ``width`` at the allowed breaks; ``width_of``
    gives one character's width (display columns, or pixels for the window)."""
    width = max(width, 2)
    allowed = break_opportunities(text)
    lines: list[str] = []
    start = 0
    n = len(text)
    while start < n:
        # skip the spaces a break leaves at the start of a line
        while start < n and _is_space(text[start]):
            start += 1
        if start >= n:
            break
        used = 0
        last_break = -1
        i = start
        while i < n:
            w = width_of(text[i])
            if used + w > width and not _is_space(text[i]):
                break
            if i > start and allowed[i]:
                last_break = i
            used += w
            i += 1
        if i >= n:
            lines.append(text[start:].rstrip())
            break
        cut = i if allowed[i] else (last_break if last_break > start else i)
        if cut == i and i > start + 1 and text[i] in NO_LINE_START:
            cut = i - 1   # a forced break still keeps "。" with the character before it
        if cut <= start:
            cut = start + 1
        lines.append(text[start:cut].rstrip())
        start = cut
    return lines or [""]


def wrap(text: str, width: int, *, first: str = "", rest: str | None = None) -> list[str]:
    """``text`` in lines of at most ``width`` display columns.

    ``first`` prefixes the first line and ``rest`` (default: as many spaces as ``first`` is
    wide) every further one: a hanging indent. Newlines in ``text`` start new lines.
    """
    rest = " " * display_width(first) if rest is None else rest
    lines: list[str] = []
    for paragraph in text.split("\n"):
        prefix = first if not lines else rest
        room = width - max(display_width(first), display_width(rest))
        for line in _wrap_paragraph(paragraph, room):
            lines.append((prefix + line).rstrip())
            prefix = rest
    return lines


def wrap_measured(text: str, width: int, measure: Callable[[str], int]) -> list[str]:
    """``text`` in lines of at most ``width`` units of ``measure`` (pixels, for the window),
    with the same breaking rules as ``wrap``: words kept whole, CJK kinsoku, a number kept
    with its counter. ``measure`` gives the width of one character (e.g. Tk's
    ``Font.measure``); it is asked once per distinct character. Newlines start new lines."""
    widths: dict[str, int] = {}

    def width_of(char: str) -> int:
        if char not in widths:
            widths[char] = 0 if char == "\n" else max(int(measure(char)), 0)
        return widths[char]

    lines: list[str] = []
    for paragraph in text.split("\n"):
        lines += _wrap_paragraph(paragraph, width, width_of)
    return lines


def labelled(label: str, text: str, width: int, *, indent: str = "") -> list[str]:
    """``indent + label + text`` with every further line aligned under the text, so
    ``labelled("Fix: ", fix, 80, indent="   ")`` is a fix on its own indented line."""
    return wrap(text, width, first=indent + label,
                rest=" " * (display_width(indent) + display_width(label)))


def pad(text: str, columns: int) -> str:
    """``text`` padded with spaces to ``columns`` display columns (``str.ljust`` counts
    characters, which misaligns CJK)."""
    return text + " " * max(columns - display_width(text), 0)


def truncate(text: str, columns: int, ellipsis: str = "…") -> str:
    """``text`` cut to ``columns`` display columns, with ``ellipsis`` when it was cut."""
    if display_width(text) <= columns:
        return text
    out, used = [], display_width(ellipsis)
    for c in text:
        w = char_width(c)
        if used + w > columns:
            break
        out.append(c)
        used += w
    return "".join(out) + ellipsis


def lines_for(stream: TextIO, text: str, *, first: str = "", rest: str | None = None
              ) -> list[str]:
    """``text`` wrapped to the terminal ``stream`` is, or as one line when ``stream`` is not a
    terminal (a service's log, journald, a pipe: one event, one line, for grep and parsers).
    For the viewers that print events as they come (the monitor's gate lines)."""
    if not getattr(stream, "isatty", lambda: False)():
        return [first + text.replace("\n", " ")]
    return wrap(text, min(terminal_width(stream), 120), first=first, rest=rest)
