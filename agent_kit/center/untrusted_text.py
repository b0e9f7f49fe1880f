"""Text a workstation wrote (its hostname, display name, version...), made harmless where IT
reads it: a spreadsheet cell of the CSV export, a line of ``agent-center`` output.

The center refuses control characters in what it stores (``core.wire.text``), but rows stored
before it did may hold them, and a spreadsheet formula needs no control character at all: so
every place that hands agent-written text to a spreadsheet or a terminal goes through here.
"""

from __future__ import annotations

import re

# OWASP "CSV Injection": a cell starting with one of these is read as a formula (or, for tab,
# CR and LF, shifted so that the next character starts one) by Excel, LibreOffice and Sheets.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n")

# What a terminal would act on instead of showing: C0 controls (ESC starts every escape
# sequence, BEL, BS and CR rewrite the line), DEL, C1 controls (U+009B is CSI on its own), lone
# surrogates (which no output encoding takes), and the bidirectional embeddings, overrides and
# isolates, which reorder how the rest of the line reads ("Trojan Source", CVE-2021-42574).
_NOT_FOR_TERMINALS = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff\u202a-\u202e\u2066-\u2069]")


def csv_cell(text: str) -> str:
    """``text`` as a CSV cell that a spreadsheet shows as text: a leading ``'`` when it would
    start a formula (the csv module quotes what needs quoting)."""
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def terminal_text(text: str) -> str:
    """``text`` with every character a terminal would act on shown as its escape (``\\x1b``,
    ``\\x9b``, ``\\u202e``), so what is printed is exactly what is stored, and nothing more."""
    return _NOT_FOR_TERMINALS.sub(_escape, text)


def _escape(found: re.Match[str]) -> str:
    code = ord(found.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"
