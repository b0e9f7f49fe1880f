"""Translation of every user-facing message (gettext).

Write messages as ``_("CPU {load} % busy").format(load=...)``: the msgid stays constant so the
catalogs (``agent_kit/core/locale/<lang>/LC_MESSAGES/agent_kit.mo``) can translate it. The language
follows ``--lang`` (``set_language``), else the OS locale (LANGUAGE, LC_ALL, LC_MESSAGES, LANG).
"""

from __future__ import annotations

import gettext as _gettext
from pathlib import Path

from agent_kit.core.os_language import os_ui_language

DOMAIN = "agent_kit"
LOCALE_DIR = Path(__file__).parent / "locale"
SUPPORTED = ("en", "ja", "ko", "sv")

_translation: _gettext.NullTranslations = _gettext.NullTranslations()
_language = "en"


def set_language(code: str | None) -> str:
    """Use ``code`` (or the OS locale when None); unknown languages fall back to English."""
    global _translation, _language
    lang = (code or os_ui_language()).replace("-", "_").split("_")[0].lower()
    if lang not in SUPPORTED:
        lang = "en"
    _language = lang
    _translation = _gettext.translation(DOMAIN, LOCALE_DIR, languages=[lang], fallback=True)
    return lang


def current_language() -> str:
    return _language


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
