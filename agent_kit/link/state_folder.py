"""Where the agent keeps its state (enrollment, heartbeat spool, gate state), per OS."""

from __future__ import annotations

import json
import os
import sys
from dataclasses import asdict, dataclass
from pathlib import Path


def state_dir() -> Path:
    """``$AGENT_KIT_HOME`` if set, else the OS's per-user application-state folder."""
    if env := os.environ.get("AGENT_KIT_HOME"):
        return Path(env)
    if sys.platform == "win32":
        return Path(os.environ.get("LOCALAPPDATA", Path.home() / "AppData" / "Local")) / "agent-kit"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Application Support" / "agent-kit"
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "agent-kit"


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
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(asdict(enrollment), fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    return path
