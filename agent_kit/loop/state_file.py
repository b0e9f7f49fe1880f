"""The small state file the monitor rewrites every cycle; ``status`` and ``login`` read it.

JSON in the state folder (``gate.json``), replaced atomically (write a temporary file, fsync,
rename), so a reader never sees half a file and a killed monitor leaves the last whole one. It
holds no secret. A state older than three heartbeat intervals (at least 60 s) means the monitor
is not running: ``status`` and ``login`` then do not trust it.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from agent_kit.core.i18n import Msg, render
from agent_kit.link.state_folder import state_dir

STALE_INTERVALS = 3
STALE_MIN_S = 60.0


STOPPED_BY_SIGNAL = "stopped"   # ``MonitorState.stopped`` after a clean stop (SIGTERM)


@dataclass(frozen=True)
class GateProblem:
    """One thing the gate says, kept apart so ``status`` shows the check's title and its fix
    on their own (``reasons`` holds the same as finished sentences)."""

    message: str
    check_id: str | None = None   # None: no check (a full check is due, the monitor stopped)
    fix: str | None = None
    blocking: bool = True         # False: failing now, not for long enough to close the gate
    # the message and the fix as message ids + parameters (``core.i18n.Msg.to_json``), so
    # ``status --lang`` renders them in its own language; None: kept as text only
    message_ref: dict[str, Any] | None = None
    fix_ref: dict[str, Any] | None = None

    def message_in(self, lang: str | None = None) -> str:
        """The message in ``lang`` (default: the current language), else as it was written."""
        msg = Msg.from_json(self.message_ref) if self.message_ref is not None else None
        return render(msg, lang) if msg is not None else self.message

    def fix_in(self, lang: str | None = None) -> str | None:
        """The fix in ``lang`` (default: the current language), else as it was written."""
        msg = Msg.from_json(self.fix_ref) if self.fix_ref is not None else None
        return render(msg, lang) if msg is not None else self.fix

@dataclass(frozen=True)
class DeliveryState:
    pending: int = 0                       # heartbeats waiting in the spool
    last_success_at: float | None = None   # unix seconds
    error: str | None = None               # why the last delivery failed, if it did
    next_seq: int = 1
    dropped_total: int = 0
    rejected_total: int = 0
    # the last renumbering after the center's highest seq (a lost or replaced spool)
    resynced_at: float | None = None       # unix seconds
    resynced_after_seq: int | None = None  # the center's highest stored seq then
    resynced_count: int = 0                # waiting heartbeats renumbered and sent again


@dataclass(frozen=True)
class MonitorState:
    agent_id: str
    pid: int
    updated_at: float                       # unix seconds, this machine's clock
    interval_s: float
    gate_open: bool
    gate_since: float
    reasons: tuple[str, ...]
    blocking: tuple[str, ...]               # check ids holding the gate closed
    watching: tuple[str, ...]               # failing now, not for long enough to close it
    awaiting_full_check: bool
    full_check_at: float | None
    in_call: bool = False
    clock_offset_s: float = 0.0             # the center's clock minus ours
    stopped: str | None = None              # why the monitor stopped ("retired", ...), if so
    delivery: DeliveryState = field(default_factory=DeliveryState)
    # None: written by an older agent-kit, which kept ``reasons`` only
    problems: tuple[GateProblem, ...] | None = None
    # ``reasons`` as message ids + parameters (``core.i18n.Msg.to_json``), index for index, so
    # ``status --lang`` shows them in its own language whatever language the monitor ran in;
    # empty in a file written before they were kept.
    reason_messages: tuple[dict[str, Any], ...] = ()

    def reasons_in(self, lang: str | None = None) -> tuple[str, ...]:
        """The reasons in ``lang`` (default: the current language); a reason kept only as text
        (an older monitor's file) as it was written."""
        out = []
        for i, text in enumerate(self.reasons):
            msg = Msg.from_json(self.reason_messages[i]) if i < len(self.reason_messages) \
                else None
            out.append(render(msg, lang) if msg is not None else text)
        return tuple(out)

    def is_fresh(self, now: float) -> bool:
        """Written by a monitor that is still running (not stopped, not too old)."""
        limit = max(STALE_MIN_S, STALE_INTERVALS * self.interval_s)
        return self.stopped is None and -limit <= now - self.updated_at <= limit

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def state_path() -> Path:
    return state_dir() / "gate.json"


def write_state(state: MonitorState, path: Path | None = None) -> None:
    path = path or state_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        # 0600 like the rest of the state folder (no secret here, but whose gate it is and
        # when, which is nobody else's business), whatever the umask
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(state.to_json(), fh, indent=1)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError:
        tmp.unlink(missing_ok=True)   # a full disk must not also fill up with half files
        raise


def read_state(path: Path | None = None) -> MonitorState | None:
    """The last state written, or None when there is none or it cannot be read."""
    path = path or state_path()
    try:
        data = json.loads(path.read_text("utf-8"))
        delivery = DeliveryState(**data.pop("delivery", {}))
        for key in ("reasons", "blocking", "watching", "reason_messages"):
            data[key] = tuple(data.get(key) or ())
        problems = data.pop("problems", None)
        if problems is not None:
            data["problems"] = tuple(GateProblem(**p) for p in problems)
        return MonitorState(**data, delivery=delivery)
    except (OSError, ValueError, TypeError):
        return None
