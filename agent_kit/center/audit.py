"""The audit log: who did what, when, from where, in the center's database (``audit_log``).

An event is written in the same transaction as the change it records (``Store`` methods take
an ``audit`` argument), so a change is never without its event nor an event without its change.
Failed logins are written alone. What is recorded never holds a secret: no token, key, password
or session, only ids (a token's ``token_id``, a user's name) and the parameters of the change.

``actor`` is the principal's subject (``principals.Principal.subject``: "admin-token",
"user:alice", "oidc:...", "gate-key:<id>") or ``cli:<OS user>`` for ``agent-center``'s own
subcommands, or "anonymous" for a failed login; ``source`` the client's address ("local" for
the CLI). ``action`` is one of :data:`AUDIT_ACTIONS`.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from typing import Any

from agent_kit.center.database import Tx

AUDIT_ACTIONS = (
    "login", "login_failed", "logout",
    "token.create", "token.revoke",
    "agent.retire", "agent.move",
    "gate_key.create", "gate_key.revoke",
    "user.create", "user.change", "user.new_key", "user.delete",
    "policy.change", "policy.rollback",
)
ACTION_PATTERN = r"^(" + "|".join(a.replace(".", r"\.") for a in AUDIT_ACTIONS) + ")$"


@dataclass(frozen=True)
class AuditEvent:
    """One thing done: by ``actor`` from ``source``, ``action`` on ``target``, with ``detail``
    (the change's parameters: ids, names, roles; never a secret)."""

    actor: str
    source: str
    action: str
    target: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class AuditRow:
    event_id: str
    at: float
    actor: str
    source: str
    action: str
    target: str | None
    detail: dict[str, Any]


@dataclass(frozen=True)
class AuditFilter:
    since: float | None = None    # epoch seconds, inclusive
    until: float | None = None    # exclusive
    actor: str | None = None
    action: str | None = None


def record(tx: Tx, event: AuditEvent, now: float) -> None:
    """Write ``event`` in the transaction ``tx`` (the one that makes the change)."""
    assert event.action in AUDIT_ACTIONS, event.action
    tx.execute("INSERT INTO audit_log (event_id, at, actor, source, action, target, detail) "
               "VALUES (?, ?, ?, ?, ?, ?, ?)",
               (secrets.token_hex(8), now, event.actor[:200], event.source[:100], event.action,
                None if event.target is None else event.target[:200],
                json.dumps(event.detail, ensure_ascii=False, sort_keys=True)
                if event.detail else None))


def read(tx: Tx, flt: AuditFilter, limit: int, offset: int) -> tuple[int, list[AuditRow]]:
    """The filtered count and one page of events, newest first."""
    parts: list[str] = []
    params: list[Any] = []
    if flt.since is not None:
        parts.append("at >= ?")
        params.append(flt.since)
    if flt.until is not None:
        parts.append("at < ?")
        params.append(flt.until)
    if flt.actor is not None:
        parts.append("actor = ?")
        params.append(flt.actor)
    if flt.action is not None:
        parts.append("action = ?")
        params.append(flt.action)
    where = (" WHERE " + " AND ".join(parts)) if parts else ""
    total_row = tx.one(f"SELECT COUNT(*) FROM audit_log{where}", params)
    rows = tx.all(f"SELECT event_id, at, actor, source, action, target, detail FROM audit_log"
                  f"{where} ORDER BY at DESC, event_id DESC LIMIT {int(limit)} "
                  f"OFFSET {int(offset)}", params)
    return int(total_row[0]) if total_row else 0, [
        AuditRow(str(r[0]), float(r[1]), str(r[2]), str(r[3]), str(r[4]), r[5],
                 json.loads(r[6]) if r[6] else {}) for r in rows]
