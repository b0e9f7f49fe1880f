"""What text may cross the wire, declared once: the center refuses the rest, the agent's builders
clean their strings to it (so the center always accepts what they send).

Two kinds of text, decided per field where the field is declared (``core.wire.heartbeat``, the
center's request models):

- a **line** (a version, a unit, a hostname, a display name, a note, a search): no control
  character at all, that is no C0 (U+0000-U+001F), no DEL (U+007F), no C1 (U+0080-U+009F);
- **free text** (a check's message, a gate reason): the same, except tab, line feed and carriage
  return, which an exception's text or a command's output (CR LF on Windows) carries and which
  are harmless where free text is shown.

Why: PostgreSQL's text cannot hold NUL (one such heartbeat failed the whole group commit it was
in), and the other control characters make no sense in these fields and carry terminal escapes
(ESC, and CSI as U+009B) and line breaks into what IT reads. Lone surrogates (U+D800-U+DFFF) are
not text in any field: the center's JSON parser refuses them as ``\\ud800`` escapes, UTF-8 cannot
encode them, so they never reach a database; the cleaning functions here replace them too.

The patterns are regular expressions that JSON Schema (ECMA-262), pydantic's Rust engine and
Python's ``re`` read alike.
"""

import re

# What a line refuses: every C0 control, DEL and every C1 control.
LINE_PATTERN = r"^[^\x00-\x1f\x7f-\x9f]*$"
# Free text keeps tab (\x09), line feed (\x0a) and carriage return (\x0d).
FREE_TEXT_PATTERN = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]*$"

# A plain reason for each pattern, for the center's 422 answers (pydantic's own message quotes
# the pattern).
REASONS = {
    LINE_PATTERN: "must not contain control characters (U+0000-U+001F, U+007F-U+009F)",
    FREE_TEXT_PATTERN: "must not contain control characters other than tab, line feed and "
                       "carriage return (U+0000-U+001F, U+007F-U+009F)",
}

REPLACEMENT = "\ufffd"
_NOT_IN_LINE = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
_NOT_IN_FREE_TEXT = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")


def clean_line(text: str) -> str:
    """``text`` as a line: every control character and lone surrogate replaced by U+FFFD (one
    character for one, so a cut to a limit afterwards stays within it)."""
    return _NOT_IN_LINE.sub(REPLACEMENT, text)


def clean_free_text(text: str) -> str:
    """``text`` as free text: as :func:`clean_line`, but tab, LF and CR are kept."""
    return _NOT_IN_FREE_TEXT.sub(REPLACEMENT, text)


def line_refusal(text: str) -> str | None:
    """Why ``text`` is not a line (the first character it refuses, named), or None if it is."""
    found = _NOT_IN_LINE.search(text)
    if found is None:
        return None
    return f"has the character U+{ord(found.group()):04X} at position {found.start()}: a line " \
        "must not contain control characters (U+0000-U+001F, U+007F-U+009F) or lone surrogates"
