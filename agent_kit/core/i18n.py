"""Translation of every user-facing message (gettext), and messages kept as ids + parameters.

Write messages as ``_("CPU {load} % busy").format(load=...)``: the msgid stays constant so the
catalogs (``agent_kit/core/locale/<lang>/LC_MESSAGES/agent_kit.mo``) can translate it. The language
follows ``--lang`` (``set_language``), else the OS locale (LANGUAGE, LC_ALL, LC_MESSAGES, LANG).

What is stored or sent (check results in JSON, heartbeats, the monitor's state file, gate
reasons) is rendered by a reader that may use another language than the writer: there a message
is a :class:`Msg`, the gettext msgid and its parameters, made with ``M_("CPU {load:.0f} % busy",
load=...)`` and turned into text with :func:`render` in the reader's language. Numbers are
formatted with Babel for that language (``0,1 ms`` in Swedish) and a parameter may itself be a
:class:`Msg` (a reason inside a sentence); :func:`join` puts sentences one after another.
"""

from __future__ import annotations

import functools
import gettext as _gettext
import re
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Union

from agent_kit.core.os_language import os_ui_language

DOMAIN = "agent_kit"
LOCALE_DIR = Path(__file__).parent / "locale"
SUPPORTED = ("en", "ja", "ko", "sv")
# The language names as each language writes its own (the language selectors show these).
LANGUAGE_NAMES = {"en": "English", "ja": "日本語", "ko": "한국어", "sv": "Svenska"}

_translation: _gettext.NullTranslations = _gettext.NullTranslations()
_language = "en"


def supported_language(code: str | None) -> str | None:
    """``code`` ("sv_SE.UTF-8", "ko-KR", "JA") as one of :data:`SUPPORTED`, or None."""
    if not code:
        return None
    lang = code.replace("-", "_").split("_")[0].split(".")[0].strip().lower()
    return lang if lang in SUPPORTED else None


def set_language(code: str | None) -> str:
    """Use ``code`` (or the OS locale when None); unknown languages fall back to English."""
    global _translation, _language
    lang = supported_language(code or os_ui_language()) or "en"
    _language = lang
    _translation = translation(lang)
    return lang


def current_language() -> str:
    """The language :func:`_` translates into now."""
    return _language


@functools.cache
def translation(lang: str) -> _gettext.NullTranslations:
    """The catalog of ``lang`` (read once); English, or an unknown language, translates nothing."""
    return _gettext.translation(DOMAIN, LOCALE_DIR, languages=[lang], fallback=True)


def _(message: str) -> str:
    """The message in the current language (English when no translation exists)."""
    return _translation.gettext(message)


def ngettext(singular: str, plural: str, count: int) -> str:
    """The form of the message for ``count`` ("1 problem", "2 problems"), by the language's
    plural rule (the catalog's Plural-Forms); format ``count`` in after, like ``_()``."""
    return _translation.ngettext(singular, plural, count)


def N_(message: str) -> str:
    """Mark a message for extraction without translating it now (translated where shown)."""
    return message


# ---------------------------------------------------------------- messages as id + parameters

Param = Union[str, int, float, bool, None, "Msg"]
# The id of a message made by join(): its parameters "0", "1", ... are the sentences.
JOIN_ID = "+"
# Languages that write one sentence right after another, without a space.
_NO_SPACE_BETWEEN_SENTENCES = frozenset({"ja"})


@dataclass(frozen=True)
class Msg:
    """A message as its gettext msgid (the English text, ``str.format`` fields) and the values
    of its fields: numbers and names, or other messages. Rendered where it is read."""

    id: str
    params: Mapping[str, Param] = field(default_factory=dict)

    def format(self, **params: Param) -> Msg:
        """The same message with these parameters added (``str.format``'s place in a call)."""
        return Msg(self.id, {**self.params, **params})

    def to_json(self) -> dict[str, Any]:
        """``{"id": msgid, "params": {...}}``; a parameter that is a message nests the same way."""
        return {"id": self.id, "params": {k: v.to_json() if isinstance(v, Msg) else v
                                          for k, v in self.params.items()}}

    @classmethod
    def from_json(cls, data: object) -> Msg | None:
        """The message of :meth:`to_json`'s form, or None when ``data`` is not one (an older
        writer, a damaged file): the reader then shows the rendered text it has."""
        if not isinstance(data, Mapping) or not isinstance(data.get("id"), str):
            return None
        raw = data.get("params") or {}
        if not isinstance(raw, Mapping):
            return None
        params: dict[str, Param] = {}
        for key, value in raw.items():
            if isinstance(value, Mapping):
                nested = cls.from_json(value)
                if nested is None:
                    return None
                params[str(key)] = nested
            elif value is None or isinstance(value, (str, int, float, bool)):
                params[str(key)] = value
            else:
                return None
        return cls(data["id"], params)


def M_(message: str, /, **params: Param) -> Msg:
    """The message ``message`` (a constant msgid, extracted like ``_()``) with its parameters."""
    return Msg(message, params)


def verbatim(text: str) -> Msg:
    """Text that is no message id (a probe's English reason, a name) as a message: the same
    words in every language."""
    return Msg("{text}", {"text": text})


def join(*parts: Msg | str | None) -> Msg:
    """Sentences one after another (``None`` left out), as one message."""
    kept = [p if isinstance(p, Msg) else verbatim(p) for p in parts if p]
    return Msg(JOIN_ID, {str(i): p for i, p in enumerate(kept)})


def render(message: Msg | str | None, lang: str | None = None) -> str:
    """``message`` in ``lang`` (default: the current language), its numbers in that language's
    format; a plain string is returned as it is (text that was never a message id)."""
    if message is None:
        return ""
    if isinstance(message, str):
        return message
    lang = supported_language(lang) or (_language if lang is None else "en")
    return _render(message, lang)


def _render(message: Msg, lang: str) -> str:
    if message.id == JOIN_ID:
        sep = "" if lang in _NO_SPACE_BETWEEN_SENTENCES else " "
        parts = [_render(p, lang) if isinstance(p, Msg) else str(p)
                 for _k, p in sorted(message.params.items(), key=lambda kv: int(kv[0])
                                     if kv[0].isdigit() else 0)]
        return sep.join(p for p in parts if p)
    template = translation(lang).gettext(message.id) if message.id else ""
    try:
        return _LocaleFormatter(lang).vformat(template, (), dict(message.params))
    except (KeyError, IndexError, ValueError, TypeError):
        # A catalog or a stored message that does not fit (a field renamed since it was
        # written): the English text with what can be filled, rather than no text at all.
        try:
            return _LocaleFormatter(lang).vformat(message.id, (), dict(message.params))
        except (KeyError, IndexError, ValueError, TypeError):
            return message.id


_FIXED = re.compile(r"^\.(\d)f$")


class _LocaleFormatter(string.Formatter):
    """``str.format`` whose numbers come out in the locale's format (Babel) with the digits the
    field asks for, and whose message parameters are rendered in the same language."""

    def __init__(self, lang: str) -> None:
        self.lang = lang

    def format_field(self, value: Any, format_spec: str) -> str:
        if isinstance(value, Msg):
            return format(_render(value, self.lang), format_spec)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return format(value, format_spec)
        fixed = _FIXED.match(format_spec)
        if format_spec in ("", "d", "g") or fixed:
            return format_number(value, int(fixed.group(1)) if fixed else None, self.lang,
                                 spec=format_spec)
        return format(value, format_spec)


def format_number(value: float, digits: int | None, lang: str | None = None, *,
                  spec: str = "") -> str:
    """``value`` with ``digits`` decimals (None: as Python writes it) in the format of ``lang``
    (default: the current language): "0.1" in English, "0,1" in Swedish. The digits are
    Python's own (``format(value, ".1f")``), so every language rounds alike."""
    lang = supported_language(lang) or _language
    text = format(value, spec or (f".{digits}f" if digits is not None else ""))
    try:
        exact = Decimal(text)
    except InvalidOperation:
        return text   # nan, inf
    if lang == "en":
        return text
    places = len(text.split(".")[1]) if "." in text and "e" not in text.lower() else 0
    pattern = "0." + "0" * places if places else "0"
    try:
        from babel.numbers import format_decimal  # only when a message is rendered
    except ImportError:   # a build without Babel: Python's digits rather than no text
        return text
    return str(format_decimal(exact, format=pattern, locale=lang, decimal_quantization=False))


def format_timestamp(unix_s: float, lang: str | None = None) -> str:
    """A moment (unix seconds) as a medium date and time of ``lang``, in this machine's zone."""
    from datetime import datetime

    from babel.dates import format_datetime

    lang = supported_language(lang) or _language
    return str(format_datetime(datetime.fromtimestamp(unix_s).astimezone(), format="medium",
                               locale=lang))


def translate_help(command: Any, lang: str) -> None:
    """A command-line tree's help texts (a click/typer command: its ``help``, ``short_help``,
    its options' ``help`` and its subcommands') in ``lang``, where the catalog has them: the
    constant ``help=`` texts of ``agent_kit/face/cli.py`` are extracted like ``_()``'s."""
    t = translation(lang)
    for name in ("help", "short_help"):
        text = getattr(command, name, None)
        if isinstance(text, str) and text:
            setattr(command, name, t.gettext(text))
    for param in getattr(command, "params", ()):
        text = getattr(param, "help", None)
        if isinstance(text, str) and text:
            param.help = t.gettext(text)
    for sub in (getattr(command, "commands", None) or {}).values():
        translate_help(sub, lang)


def language_in_argv(argv: list[str]) -> str | None:
    """The value of ``--lang`` in a command line (``--lang sv``, ``--lang=sv``), if any."""
    for i, arg in enumerate(argv):
        if arg == "--lang" and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--lang="):
            return arg.split("=", 1)[1]
    return None
