"""The language of the OS's user interface, as a lowercase code (``"sv"``, ``"ja"``, ``"en"``).

The locale variables come first everywhere (LANGUAGE, LC_ALL, LC_MESSAGES, LANG): a terminal or
a test sets them. Without them, chosen once at import: Windows keeps the UI language outside the
environment, so its locale is asked; elsewhere an unset locale means English.
"""

from __future__ import annotations

import os
import sys

_LOCALE_VARIABLES = ("LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG")


def _from_environment() -> str | None:
    for var in _LOCALE_VARIABLES:
        value = os.environ.get(var)
        if value:
            return value.split(":")[0].split(".")[0].split("_")[0].lower() or "en"
    return None


if sys.platform == "win32":
    def os_ui_language() -> str:
        """The locale variables' language, else the Windows locale's, else ``"en"``."""
        import locale

        if (code := _from_environment()) is not None:
            return code
        return (locale.getlocale()[0] or "").split("_")[0].lower() or "en"

else:
    def os_ui_language() -> str:
        """The locale variables' language, else ``"en"``."""
        return _from_environment() or "en"
