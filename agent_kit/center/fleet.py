"""Fleet state of one workstation, derived from its own heartbeat interval plus a grace.

A workstation is *online* until ``last_seen + interval + grace``; then *offline*. With grace =
two intervals (at least 10 s, at most 5 min), an agent heartbeating every 15 s is offline 45 s
after its last heartbeat, so the alert checker (every 5 s) reports it within 60 s, as the issue
asks. *never_seen*: enrolled, no heartbeat yet; *retired*: its credential was revoked.

*ready* is the last heartbeat's gate (open = ready) while the workstation is online. An offline
workstation is neither ready nor not ready *now*: its ``ready`` is null, its last known gate is
``last_ready`` (a past fact: "offline, last: not ready"), and its "since" is the moment it went
offline (the gate still denies it a login). ``status`` says it in one word, and is what "since"
refers to: ``not_ready``, ``ready``, ``offline``, ``never_seen`` or ``retired``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

GRACE_INTERVALS = 2
GRACE_MIN_S = 10.0
GRACE_MAX_S = 300.0


def grace_s(interval_s: float) -> float:
    return min(max(GRACE_INTERVALS * interval_s, GRACE_MIN_S), GRACE_MAX_S)


def deadline(received_at: float, interval_s: float) -> float:
    """Epoch seconds after which a workstation that sent nothing more is offline."""
    return received_at + interval_s + grace_s(interval_s)


def iso(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds")


@dataclass(frozen=True)
class AgentRow:
    """One row of the ``agents`` table, as the overview reads it."""

    agent_id: str
    hostname: str
    display_name: str | None
    retired_at: float | None
    last_seen: float | None
    deadline: float | None
    last_seq: int | None
    interval_s: float | None
    agent_version: str | None
    verdict: str | None
    ready: int | None
    ready_since: str | None
    failing: str
    team: str | None = None


AGENT_COLUMNS = ("agent_id, hostname, display_name, retired_at, last_seen, deadline, last_seq, "
                 "interval_s, agent_version, verdict, ready, ready_since, failing, team")


def state_of(row: AgentRow, now: float) -> str:
    if row.retired_at is not None:
        return "retired"
    if row.last_seen is None or row.deadline is None:
        return "never_seen"
    return "offline" if row.deadline < now else "online"


def status_of(state: str, ready: int | None) -> str:
    """One word for the row: its state, or for an online workstation its readiness."""
    if state != "online":
        return state
    return "ready" if ready else "not_ready"


def agent_view(row: AgentRow, now: float) -> dict[str, object]:
    """The API's Agent object (docs/center-api.md)."""
    state = state_of(row, now)
    ready: bool | None
    since: str | None
    if state in ("retired", "never_seen"):
        ready, since = None, None
    elif state == "offline":
        ready, since = None, iso(row.deadline)
    else:
        ready, since = bool(row.ready), row.ready_since
    last_ready = None if row.last_seen is None or row.ready is None else bool(row.ready)
    return {
        "agent_id": row.agent_id, "hostname": row.hostname, "display_name": row.display_name,
        "team": row.team,
        "state": state, "status": status_of(state, row.ready), "ready": ready,
        "last_ready": last_ready, "verdict": row.verdict,
        "failing": [f for f in row.failing.split(",") if f],
        "last_seen": iso(row.last_seen), "since": since, "interval_s": row.interval_s,
        "agent_version": row.agent_version, "last_seq": row.last_seq,
    }
