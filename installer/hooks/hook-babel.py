"""PyInstaller hook for ``babel``: only the locale data of the languages agent-kit ships.

Overrides the contrib hook, which copies every locale Babel knows (about 35 MB). The agent
formats numbers and dates (``agent_kit.core.i18n``) for ``agent_kit.core.i18n.SUPPORTED``
only; each locale also reads ``root.dat`` and the shared ``global.dat``.
"""

from pathlib import Path

from PyInstaller.utils.hooks import collect_data_files

_KEPT = {"root", "en", "ja", "ko", "sv", "global"}   # agent_kit.core.i18n.SUPPORTED + shared

datas = [(src, dest) for src, dest in collect_data_files("babel")
         if not src.endswith(".dat") or Path(src).stem in _KEPT]
