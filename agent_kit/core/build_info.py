"""What ``agent-kit --version`` says: the version, and in a frozen build where it was built from.

The PyInstaller build (``installer/agent-kit.spec``) generates a module ``agent_kit._build_info``
(``VERSION``, ``COMMIT``, ``DIRTY``, ``BUILD_DATE``, ``PLATFORM``, ``MODE``) and puts it into the
binary only; it is never written into the source tree. Run from source, the import fails at
once and the line is just the version: no git call, nothing slow on the start-up path.
"""

from __future__ import annotations

from importlib import import_module
from types import ModuleType

from agent_kit import __version__

BUILD_INFO_MODULE = "agent_kit._build_info"


def _stamp() -> ModuleType | None:
    try:
        return import_module(BUILD_INFO_MODULE)
    except ImportError:
        return None


def version_line() -> str:
    """``agent-kit 0.1.0`` from source; with the build's commit, date and mode when frozen."""
    info = _stamp()
    if info is None:
        return f"agent-kit {__version__}"
    commit = str(getattr(info, "COMMIT", "unknown"))[:12]
    if getattr(info, "DIRTY", False):
        commit += "+dirty"
    return (f"agent-kit {getattr(info, 'VERSION', __version__)} (commit {commit}, built "
            f"{getattr(info, 'BUILD_DATE', 'unknown')}, {getattr(info, 'PLATFORM', '?')}, "
            f"{getattr(info, 'MODE', '?')})")
