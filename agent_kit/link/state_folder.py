"""Where the agent keeps its state (enrollment, heartbeat spool, gate state), per OS.

The folder is platformdirs' per-user state folder for ``agent-kit`` (no author folder, not
roaming), the same paths agent-kit used before it took platformdirs, so an existing install
finds its enrollment and spool: ``$XDG_STATE_HOME/agent-kit`` or ``~/.local/state/agent-kit`` on
Linux, ``%LOCALAPPDATA%\\agent-kit`` on Windows, ``~/Library/Application Support/agent-kit`` on
macOS. ``$AGENT_KIT_HOME`` overrides it (tests, several agents on one machine).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from platformdirs import PlatformDirs
from platformdirs.api import PlatformDirsABC

from agent_kit.link.private_files import make_private_folder, write_private_file


def state_dir() -> Path:
    """``$AGENT_KIT_HOME`` if set, else the OS's per-user application-state folder."""
    if env := os.environ.get("AGENT_KIT_HOME"):
        return Path(env)
    return os_state_dir()


def os_state_dir(dirs: type[PlatformDirsABC] = PlatformDirs) -> Path:
    """The OS's per-user state folder for the agent; ``dirs`` is this OS's platformdirs class
    (tests pass another OS's, e.g. ``platformdirs.windows.Windows``)."""
    return dirs(appname="agent-kit", appauthor=False, roaming=False).user_state_path


@dataclass(frozen=True)
class Enrollment:
    """What ``agent-kit enroll`` received from the center. The secret never goes to a log."""

    center_url: str
    agent_id: str
    secret: str
    heartbeat_interval_s: float = 15.0

    def __repr__(self) -> str:  # keep the secret out of tracebacks and logs
        return f"Enrollment(center_url={self.center_url!r}, agent_id={self.agent_id!r})"


def enrollment_path() -> Path:
    return state_dir() / "enrollment.json"


def load_enrollment() -> Enrollment | None:
    path = enrollment_path()
    try:
        data = json.loads(path.read_text("utf-8"))
        return Enrollment(**data)
    except FileNotFoundError:
        return None
    except (OSError, ValueError, TypeError) as exc:
        raise ValueError(f"{path}: unreadable enrollment ({exc}); run 'agent-kit enroll' again") \
            from None


def save_enrollment(enrollment: Enrollment) -> Path:
    """Write atomically with owner-only permissions."""
    path = enrollment_path()
    make_private_folder(path.parent)
    write_private_file(path, json.dumps(asdict(enrollment)))
    return path
