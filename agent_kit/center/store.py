"""Every query of the center, on top of :mod:`agent_kit.center.database` (both dialects).

Intake (the hot path) lives in :mod:`agent_kit.center.intake`; this module holds the rest:
center secrets, enrollment tokens, workstations, gate keys, sessions, reports, the overview.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from typing import Any

from agent_kit.center import credentials
from agent_kit.center.database import Database
from agent_kit.center.fleet import AGENT_COLUMNS, AgentRow
from agent_kit.center.migrations import migrate

SESSION_TTL_S = 12 * 3600
SORTS = {
    "agent_id": "agent_id",
    "-agent_id": "agent_id DESC",
    "hostname": "hostname, agent_id",
    "-hostname": "hostname DESC, agent_id",
    "last_seen": "last_seen IS NULL, last_seen, agent_id",
    "-last_seen": "last_seen IS NULL, last_seen DESC, agent_id",
    "since": "ready_since IS NULL, ready_since, agent_id",
    "-since": "ready_since IS NULL, ready_since DESC, agent_id",
}
STATES = ("online", "offline", "never_seen", "retired")


@dataclass(frozen=True)
class AgentFilter:
    state: str | None = None
    ready: bool | None = None
    q: str | None = None
    failing: str | None = None
    team: str | None = None


@dataclass(frozen=True)
class TokenRow:
    token_id: str
    note: str | None
    uses_max: int
    uses: int
    created_at: float
    expires_at: float
    revoked_at: float | None
    team: str | None = None


class ReportQuota(Exception):
    """A report upload over the workstation's quota; ``retry_after_s``: when it may fit."""

    def __init__(self, reason: str, retry_after_s: float) -> None:
        super().__init__(reason)
        self.retry_after_s = max(1.0, retry_after_s)


class Store:
    def __init__(self, db: Database) -> None:
        self.db = db

    # -- schema and center secrets --------------------------------------------------------
    def setup(self) -> None:
        migrate(self.db)

    def secret(self, name: str, make: Any, now: float) -> str:
        """The named center secret, created once (first writer wins across processes)."""
        with self.db.transaction() as tx:
            row = tx.one("SELECT value FROM center_secrets WHERE name = ?", (name,))
        if row:
            return str(row[0])
        value = make()
        with self.db.transaction(write=True) as tx:
            tx.execute("INSERT INTO center_secrets (name, value, created_at) VALUES (?, ?, ?) "
                       "ON CONFLICT (name) DO NOTHING", (name, value, now))
            row = tx.one("SELECT value FROM center_secrets WHERE name = ?", (name,))
        assert row is not None
        return str(row[0])

    def set_secret(self, name: str, value: str, now: float) -> None:
        with self.db.transaction(write=True) as tx:
            tx.execute("INSERT INTO center_secrets (name, value, created_at) VALUES (?, ?, ?) "
                       "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                       (name, value, now))

    def replace_secret(self, name: str, old: str, new: str) -> bool:
        """Compare-and-swap: set ``new`` only if the stored value is still ``old``. On SQLite
        the old value's bytes are zeroed (``secure_delete``) and the WAL emptied afterwards, so
        no copy of it stays behind in a free page or an old WAL frame."""
        sqlite = self.db.dialect == "sqlite"
        with self.db.transaction(write=True) as tx:
            if sqlite:
                tx.execute("PRAGMA secure_delete = ON")
            try:
                swapped = tx.rowcount("UPDATE center_secrets SET value = ? WHERE name = ? AND "
                                      "value = ?", (new, name, old)) == 1
            finally:
                if sqlite:
                    tx.execute("PRAGMA secure_delete = OFF")
        if swapped and sqlite:
            self.db.checkpoint_truncate()
        return swapped

    def get_secret(self, name: str) -> str | None:
        with self.db.transaction() as tx:
            row = tx.one("SELECT value FROM center_secrets WHERE name = ?", (name,))
        return str(row[0]) if row else None

    # -- enrollment tokens ----------------------------------------------------------------
    def create_token(self, uses: int, ttl_s: float, note: str | None, now: float,
                     team: str | None = None) -> tuple[str, str, float]:
        """A new enrollment token (shown once); every workstation enrolled with it joins
        ``team`` (a name ``teams.team_refusal`` accepts, or None)."""
        token = credentials.new_token("enr")
        token_id = secrets.token_hex(6)
        expires = now + ttl_s
        with self.db.transaction(write=True) as tx:
            tx.execute("INSERT INTO enrollment_tokens (token_id, token_hash, note, uses_max, uses,"
                       " created_at, expires_at, team) VALUES (?, ?, ?, ?, 0, ?, ?, ?)",
                       (token_id, credentials.token_hash(token), note, uses, now, expires,
                        team))
        return token, token_id, expires

    def tokens(self) -> list[TokenRow]:
        with self.db.transaction() as tx:
            rows = tx.all("SELECT token_id, note, uses_max, uses, created_at, expires_at, "
                          "revoked_at, team FROM enrollment_tokens ORDER BY created_at, "
                          "token_id")
        return [TokenRow(*r) for r in rows]

    def token(self, token_id: str) -> TokenRow | None:
        with self.db.transaction() as tx:
            row = tx.one("SELECT token_id, note, uses_max, uses, created_at, expires_at, "
                         "revoked_at, team FROM enrollment_tokens WHERE token_id = ?",
                         (token_id,))
        return TokenRow(*row) if row else None

    def revoke_token(self, token_id: str, now: float) -> bool:
        with self.db.transaction(write=True) as tx:
            return tx.rowcount("UPDATE enrollment_tokens SET revoked_at = ? WHERE token_id = ? "
                               "AND revoked_at IS NULL", (now, token_id)) == 1 or \
                tx.one("SELECT 1 FROM enrollment_tokens WHERE token_id = ?", (token_id,)) \
                is not None

    def enroll(self, token: str, hostname: str, display_name: str | None,
               now: float) -> tuple[str, str] | None:
        """Spend one use of ``token``; a new workstation ``(agent_id, nonce)`` or None."""
        with self.db.transaction(write=True) as tx:
            row = tx.one("SELECT token_id, team FROM enrollment_tokens WHERE token_hash = ? AND "
                         "revoked_at IS NULL AND expires_at > ? AND uses < uses_max",
                         (credentials.token_hash(token), now))
            if row is None:
                return None
            if tx.rowcount("UPDATE enrollment_tokens SET uses = uses + 1 WHERE token_id = ? "
                           "AND uses < uses_max", (row[0],)) != 1:
                return None
            agent_id, nonce = credentials.new_agent_id(), secrets.token_hex(16)
            tx.execute("INSERT INTO agents (agent_id, hostname, display_name, nonce, token_id, "
                       "enrolled_at, team) VALUES (?, ?, ?, ?, ?, ?, ?)",
                       (agent_id, hostname, display_name, nonce, row[0], now, row[1]))
        return agent_id, nonce

    # -- workstations ---------------------------------------------------------------------
    def agent_auth(self, agent_id: str) -> tuple[str, bool] | None:
        """``(nonce, retired)`` of a workstation, None if unknown."""
        with self.db.transaction() as tx:
            row = tx.one("SELECT nonce, retired_at FROM agents WHERE agent_id = ?", (agent_id,))
        return (str(row[0]), row[1] is not None) if row else None

    def agent_team(self, agent_id: str) -> str | None:
        """The workstation's team, whose policy override it runs (None: the fleet's)."""
        with self.db.transaction() as tx:
            row = tx.one("SELECT team FROM agents WHERE agent_id = ?", (agent_id,))
        return str(row[0]) if row and row[0] is not None else None

    def retired_since(self, since: float) -> list[str]:
        """Workstations retired at or after ``since`` (epoch seconds)."""
        with self.db.transaction() as tx:
            return [str(r[0]) for r in tx.all("SELECT agent_id FROM agents WHERE retired_at >= ?",
                                              (since,))]

    def retire(self, agent_id: str, now: float) -> bool:
        with self.db.transaction(write=True) as tx:
            tx.execute("UPDATE agents SET retired_at = ? WHERE agent_id = ? AND retired_at IS "
                       "NULL", (now, agent_id))
            return tx.one("SELECT 1 FROM agents WHERE agent_id = ?", (agent_id,)) is not None

    def set_team(self, agent_id: str, team: str | None) -> bool:
        """Move a workstation to ``team`` (None: no team); False when there is no such one."""
        with self.db.transaction(write=True) as tx:
            return tx.rowcount("UPDATE agents SET team = ? WHERE agent_id = ?",
                               (team, agent_id)) == 1

    def agent(self, agent_id: str) -> AgentRow | None:
        with self.db.transaction() as tx:
            row = tx.one(f"SELECT {AGENT_COLUMNS} FROM agents WHERE agent_id = ?", (agent_id,))
        return AgentRow(*row) if row else None

    def latest_heartbeat(self, agent_id: str) -> dict[str, Any] | None:
        with self.db.transaction() as tx:
            row = tx.one("SELECT h.body, h.received_at FROM heartbeats h JOIN agents a ON "
                         "a.agent_id = h.agent_id AND a.last_seq = h.seq WHERE a.agent_id = ?",
                         (agent_id,))
        return _heartbeat_out(row) if row else None

    def heartbeats(self, agent_id: str, since_seq: int, limit: int) -> list[dict[str, Any]]:
        with self.db.transaction() as tx:
            rows = tx.all("SELECT body, received_at FROM heartbeats WHERE agent_id = ? AND "
                          "seq > ? ORDER BY seq LIMIT ?", (agent_id, since_seq, limit))
        return [_heartbeat_out(r) for r in rows]

    def overview(self, flt: AgentFilter, sort: str, limit: int | None, offset: int,
                 now: float) -> tuple[int, dict[str, int], list[AgentRow]]:
        """Filtered total, whole-fleet counts, and one page of rows (``limit`` None: all)."""
        where, params = _where(flt, now)
        order = SORTS[sort]
        with self.db.transaction() as tx:
            c = tx.one(
                "SELECT COUNT(*),"
                " SUM(CASE WHEN retired_at IS NOT NULL THEN 1 ELSE 0 END),"
                " SUM(CASE WHEN retired_at IS NULL AND last_seen IS NULL THEN 1 ELSE 0 END),"
                " SUM(CASE WHEN retired_at IS NULL AND deadline < ? THEN 1 ELSE 0 END),"
                " SUM(CASE WHEN retired_at IS NULL AND deadline >= ? THEN 1 ELSE 0 END),"
                " SUM(CASE WHEN retired_at IS NULL AND deadline >= ? AND ready = 1 THEN 1 "
                "ELSE 0 END) FROM agents", (now, now, now))
            assert c is not None
            _, retired, never, offline, online, ready = (int(v or 0) for v in c)
            counts = {"online": online, "offline": offline, "never_seen": never,
                      "retired": retired, "ready": ready, "not_ready": online - ready + offline}
            if where:
                t = tx.one(f"SELECT COUNT(*) FROM agents WHERE {where}", params)
                total = int(t[0]) if t else 0
            else:
                total = int(c[0])
            page = f" LIMIT {int(limit)} OFFSET {int(offset)}" if limit is not None else ""
            rows = tx.all(f"SELECT {AGENT_COLUMNS} FROM agents"
                          f"{' WHERE ' + where if where else ''} ORDER BY {order}{page}", params)
        return total, counts, [AgentRow(*r) for r in rows]

    # -- gate keys and sessions -----------------------------------------------------------
    def create_gate_key(self, note: str | None, now: float) -> tuple[str, str]:
        key, key_id = credentials.new_token("gate"), secrets.token_hex(6)
        with self.db.transaction(write=True) as tx:
            tx.execute("INSERT INTO gate_keys (key_id, key_hash, note, created_at) VALUES "
                       "(?, ?, ?, ?)", (key_id, credentials.token_hash(key), note, now))
        return key, key_id

    def gate_keys(self) -> list[tuple[str, str | None, float, float | None]]:
        """Every gate key: ``(key_id, note, created_at, revoked_at)``; never the key."""
        with self.db.transaction() as tx:
            rows = tx.all("SELECT key_id, note, created_at, revoked_at FROM gate_keys "
                          "ORDER BY created_at, key_id")
        return [(str(r[0]), r[1], float(r[2]), None if r[3] is None else float(r[3]))
                for r in rows]

    def revoke_gate_key(self, key_id: str, now: float) -> bool:
        """Revoke a gate key (at once, for every process: each request checks the database);
        False when there is no such key."""
        with self.db.transaction(write=True) as tx:
            return tx.rowcount("UPDATE gate_keys SET revoked_at = ? WHERE key_id = ? "
                               "AND revoked_at IS NULL", (now, key_id)) == 1 or \
                tx.one("SELECT 1 FROM gate_keys WHERE key_id = ?", (key_id,)) is not None

    def gate_key_valid(self, key_hash: str) -> bool:
        with self.db.transaction() as tx:
            return tx.one("SELECT 1 FROM gate_keys WHERE key_hash = ? AND revoked_at IS NULL",
                          (key_hash,)) is not None

    def create_session(self, now: float, admin_tag: str) -> str:
        """A new dashboard session, valid while the admin token is the one ``admin_tag``
        names (``CenterRuntime.session_tag``)."""
        session = credentials.new_token("ses", 32)
        with self.db.transaction(write=True) as tx:
            tx.execute("DELETE FROM sessions WHERE expires_at < ?", (now,))
            tx.execute("INSERT INTO sessions (session_hash, created_at, expires_at, admin_tag) "
                       "VALUES (?, ?, ?, ?)", (credentials.token_hash(session), now,
                                               now + SESSION_TTL_S, admin_tag))
        return session

    def session_valid(self, session: str, now: float, admin_tag: str) -> bool:
        with self.db.transaction() as tx:
            return tx.one("SELECT 1 FROM sessions WHERE session_hash = ? AND expires_at > ? "
                          "AND admin_tag = ?", (credentials.token_hash(session), now,
                                                admin_tag)) is not None

    # -- single-use signatures ------------------------------------------------------------
    def use_signature(self, signature: str, expires_at: float, sweep_before: float | None
                      ) -> bool:
        """Record a workstation request's signature as used; False when it already was (a
        replay). ``sweep_before``: also forget signatures that expired before then."""
        with self.db.transaction(write=True) as tx:
            if sweep_before is not None:
                tx.execute("DELETE FROM used_signatures WHERE expires_at < ?", (sweep_before,))
            return tx.rowcount("INSERT INTO used_signatures (signature, expires_at) VALUES "
                               "(?, ?) ON CONFLICT DO NOTHING", (signature, expires_at)) == 1

    def delete_session(self, session: str) -> None:
        with self.db.transaction(write=True) as tx:
            tx.execute("DELETE FROM sessions WHERE session_hash = ?",
                       (credentials.token_hash(session),))

    # -- reports --------------------------------------------------------------------------
    def add_report(self, agent_id: str, html: str, now: float, *, per_hour: int,
                   storage_bytes: int) -> str:
        """Store a report within the workstation's quotas: at most ``per_hour`` uploads in the
        last hour, and at most ``storage_bytes`` kept (its oldest reports, older than an hour,
        are deleted to make room); raises :class:`ReportQuota` otherwise."""
        size = len(html.encode())
        report_id = secrets.token_hex(8)
        with self.db.transaction(write=True) as tx:
            if self.db.dialect == "postgresql":  # one upload at a time per workstation
                tx.execute("SELECT 1 FROM agents WHERE agent_id = ? FOR UPDATE", (agent_id,))
            rows = tx.all("SELECT report_id, created_at, size_bytes FROM reports WHERE "
                          "agent_id = ? ORDER BY created_at DESC, report_id", (agent_id,))
            hour_ago = now - 3600
            recent = [(float(at), int(n)) for _, at, n in rows if float(at) > hour_ago]
            if len(recent) >= per_hour:
                raise ReportQuota(f"at most {per_hour} reports per hour from one workstation",
                                  min(at for at, _ in recent) + 3600 - now)
            kept = size + sum(n for _, n in recent)
            if kept > storage_bytes:
                raise ReportQuota(f"this workstation's reports of the last hour and this one "
                                  f"would take more than the {storage_bytes} bytes it may keep",
                                  min((at for at, _ in recent), default=now) + 3600 - now)
            tx.execute("INSERT INTO reports (report_id, agent_id, created_at, size_bytes, body) "
                       "VALUES (?, ?, ?, ?, ?)", (report_id, agent_id, now, size, html))
            for old_id, at, n in rows:   # newest first: keep while they fit
                if float(at) > hour_ago:
                    continue
                kept += int(n)
                if kept > storage_bytes:
                    tx.execute("DELETE FROM reports WHERE report_id = ?", (old_id,))
        return report_id

    def reports(self, agent_id: str) -> list[tuple[str, float, int]]:
        with self.db.transaction() as tx:
            rows = tx.all("SELECT report_id, created_at, size_bytes FROM reports WHERE "
                          "agent_id = ? ORDER BY created_at DESC LIMIT 100", (agent_id,))
        return [(str(a), float(b), int(c)) for a, b, c in rows]

    def report(self, agent_id: str, report_id: str) -> str | None:
        with self.db.transaction() as tx:
            row = tx.one("SELECT body FROM reports WHERE agent_id = ? AND report_id = ?",
                         (agent_id, report_id))
        return str(row[0]) if row else None

    # -- metrics and alerts ---------------------------------------------------------------
    def failing_tally(self, now: float) -> dict[str, int]:
        """Online workstations failing each check id."""
        tally: dict[str, int] = {}
        with self.db.transaction() as tx:
            rows = tx.all("SELECT failing, COUNT(*) FROM agents WHERE retired_at IS NULL AND "
                          "deadline >= ? AND failing <> '' GROUP BY failing", (now,))
        for failing, n in rows:
            for check_id in str(failing).split(","):
                if check_id:
                    tally[check_id] = tally.get(check_id, 0) + int(n)
        return tally

    def counter(self, name: str) -> int:
        with self.db.transaction() as tx:
            row = tx.one("SELECT value FROM counters WHERE name = ?", (name,))
        return int(row[0]) if row else 0

    def alert_candidates(self, now: float) -> list[tuple[str, str, str, str, str]]:
        """Workstations whose alert state differs from their derived condition:
        ``(agent_id, hostname, old, new, failing)`` with states ok / offline / not_ready."""
        with self.db.transaction() as tx:
            rows = tx.all(
                "SELECT agent_id, hostname, COALESCE(alert_state, 'ok'), cond, failing FROM ("
                " SELECT agent_id, hostname, alert_state, failing, CASE WHEN deadline < ? THEN"
                " 'offline' WHEN ready = 0 THEN 'not_ready' ELSE 'ok' END AS cond FROM agents"
                " WHERE retired_at IS NULL AND last_seen IS NOT NULL) s"
                " WHERE cond <> COALESCE(alert_state, 'ok')", (now,))
        return [(str(a), str(b), str(c), str(d), str(e)) for a, b, c, d, e in rows]

    def claim_alert(self, agent_id: str, old: str, new: str) -> bool:
        """Move the alert state; True for the one process that did (no double alerts)."""
        with self.db.transaction(write=True) as tx:
            return tx.rowcount("UPDATE agents SET alert_state = ? WHERE agent_id = ? AND "
                               "COALESCE(alert_state, 'ok') = ?", (new, agent_id, old)) == 1


def _where(flt: AgentFilter, now: float) -> tuple[str, list[Any]]:
    parts: list[str] = []
    params: list[Any] = []
    if flt.state == "online":
        parts.append("retired_at IS NULL AND deadline >= ?")
        params.append(now)
    elif flt.state == "offline":
        parts.append("retired_at IS NULL AND deadline < ?")
        params.append(now)
    elif flt.state == "never_seen":
        parts.append("retired_at IS NULL AND last_seen IS NULL")
    elif flt.state == "retired":
        parts.append("retired_at IS NOT NULL")
    if flt.ready is True:
        parts.append("retired_at IS NULL AND deadline >= ? AND ready = 1")
        params.append(now)
    elif flt.ready is False:
        parts.append("retired_at IS NULL AND (deadline < ? OR ready = 0)")
        params.append(now)
    if flt.q:
        pattern = "%" + _like_escape(flt.q.lower()) + "%"
        parts.append("(lower(agent_id) LIKE ? ESCAPE '\\' OR lower(hostname) LIKE ? ESCAPE '\\'"
                     " OR lower(COALESCE(display_name, '')) LIKE ? ESCAPE '\\')")
        params += [pattern, pattern, pattern]
    if flt.failing:
        parts.append("failing LIKE ? ESCAPE '\\'")
        params.append("%," + _like_escape(flt.failing) + ",%")
    if flt.team:
        parts.append("team = ?")
        params.append(flt.team)
    return " AND ".join(f"({p})" for p in parts), params


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _heartbeat_out(row: tuple[Any, ...]) -> dict[str, Any]:
    from agent_kit.center.fleet import iso

    out: dict[str, Any] = json.loads(row[0])
    out["received_at"] = iso(float(row[1]))
    return out
