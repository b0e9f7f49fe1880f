"""Every query of the center, on top of :mod:`agent_kit.center.database` (both dialects).

Intake (the hot path) lives in :mod:`agent_kit.center.intake`; this module holds the rest:
center secrets, enrollment tokens, workstations, gate keys, sessions, users, the audit log,
reports, the overview.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from typing import Any

from agent_kit.center import audit, credentials
from agent_kit.center.audit import AuditEvent, AuditFilter, AuditRow
from agent_kit.center.database import Database, Tx
from agent_kit.center.fleet import AGENT_COLUMNS, AgentRow
from agent_kit.center.migrations import migrate
from agent_kit.center.principals import ADMIN_TOKEN_SUBJECT, Principal, Role

SESSION_TTL_S = 12 * 3600
# "attention", the dashboard's order: who cannot take calls first. Rank 0: online and not ready,
# the longest first; 1: offline, the most recent first (a workstation that just dropped out is
# news, one gone for days is off shift); 2: online and ready, those with warnings first; 3: never
# seen; 4: retired. ``?`` is the time now (what online means). NULLs never reach an ORDER BY
# term: SQLite and PostgreSQL sort them at opposite ends.
_RANK = ("CASE WHEN retired_at IS NOT NULL THEN 4 WHEN last_seen IS NULL THEN 3"
         " WHEN deadline < ? THEN 1 WHEN ready = 0 THEN 0 ELSE 2 END")
ATTENTION = (f"{_RANK}, CASE WHEN {_RANK} = 0 THEN COALESCE(ready_since, '') ELSE '' END,"
             f" CASE WHEN {_RANK} = 1 THEN COALESCE(deadline, 0) ELSE 0 END DESC,"
             f" CASE WHEN {_RANK} = 2 AND verdict = 'warn' THEN 0 ELSE 1 END, hostname, agent_id")
SORTS = {
    "attention": ATTENTION,
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


@dataclass(frozen=True)
class UserRow:
    """A named user (never their key: only its hash is stored, and its id)."""

    user_id: str
    name: str
    role: str
    teams: tuple[str, ...] | None   # None: every team
    note: str | None
    created_at: float
    updated_at: float

    def principal(self) -> Principal:
        role: Role = self.role  # type: ignore[assignment]  # checked when stored
        return Principal(role, f"user:{self.name}",
                         None if self.teams is None else frozenset(self.teams),
                         user_id=self.user_id)


USER_COLUMNS = "user_id, name, role, teams, note, created_at, updated_at"


def _teams_text(teams: tuple[str, ...] | frozenset[str] | None) -> str | None:
    return None if teams is None else ",".join(sorted(teams))


def _teams_of(text: str | None) -> tuple[str, ...] | None:
    return None if text is None else tuple(t for t in text.split(",") if t)


def _user(row: tuple[Any, ...]) -> UserRow:
    return UserRow(str(row[0]), str(row[1]), str(row[2]), _teams_of(row[3]), row[4],
                   float(row[5]), float(row[6]))


def _audit(tx: Tx, event: AuditEvent | None, now: float) -> None:
    if event is not None:
        audit.record(tx, event, now)


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
                     team: str | None = None, audit: AuditEvent | None = None
                     ) -> tuple[str, str, float]:
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
            if audit is not None:
                _audit(tx, AuditEvent(audit.actor, audit.source, "token.create", token_id,
                                      {"team": team, "uses": uses, "ttl_s": int(ttl_s),
                                       "note": note}), now)
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

    def revoke_token(self, token_id: str, now: float, audit: AuditEvent | None = None) -> bool:
        with self.db.transaction(write=True) as tx:
            if tx.rowcount("UPDATE enrollment_tokens SET revoked_at = ? WHERE token_id = ? "
                           "AND revoked_at IS NULL", (now, token_id)) == 1:
                _audit(tx, audit, now)
                return True
            return tx.one("SELECT 1 FROM enrollment_tokens WHERE token_id = ?",
                          (token_id,)) is not None

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

    def retire(self, agent_id: str, now: float, audit: AuditEvent | None = None) -> bool:
        with self.db.transaction(write=True) as tx:
            if tx.rowcount("UPDATE agents SET retired_at = ? WHERE agent_id = ? AND retired_at "
                           "IS NULL", (now, agent_id)) == 1:
                _audit(tx, audit, now)
                return True
            return tx.one("SELECT 1 FROM agents WHERE agent_id = ?", (agent_id,)) is not None

    def set_team(self, agent_id: str, team: str | None, now: float = 0.0,
                 audit: AuditEvent | None = None) -> bool:
        """Move a workstation to ``team`` (None: no team); False when there is no such one."""
        with self.db.transaction(write=True) as tx:
            row = tx.one("SELECT team FROM agents WHERE agent_id = ?", (agent_id,))
            if row is None:
                return False
            tx.execute("UPDATE agents SET team = ? WHERE agent_id = ?", (team, agent_id))
            if audit is not None and row[0] != team:
                _audit(tx, AuditEvent(audit.actor, audit.source, "agent.move", agent_id,
                                      {"from": row[0], "to": team}), now)
            return True

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

    def latest_heartbeats(self, agent_ids: list[str]) -> dict[str, dict[str, Any]]:
        """The last heartbeat of each of these workstations (one page of the overview: its
        rows' reasons), by agent id; those without one are left out."""
        out: dict[str, dict[str, Any]] = {}
        for start in range(0, len(agent_ids), 500):
            chunk = agent_ids[start:start + 500]
            marks = ", ".join("?" * len(chunk))
            with self.db.transaction() as tx:
                rows = tx.all("SELECT a.agent_id, h.body, h.received_at FROM agents a JOIN "
                              "heartbeats h ON h.agent_id = a.agent_id AND h.seq = a.last_seq "
                              f"WHERE a.agent_id IN ({marks})", chunk)
            for agent_id, body, received_at in rows:
                out[str(agent_id)] = _heartbeat_out((body, received_at))
        return out

    def heartbeats(self, agent_id: str, since_seq: int, limit: int) -> list[dict[str, Any]]:
        with self.db.transaction() as tx:
            rows = tx.all("SELECT body, received_at FROM heartbeats WHERE agent_id = ? AND "
                          "seq > ? ORDER BY seq LIMIT ?", (agent_id, since_seq, limit))
        return [_heartbeat_out(r) for r in rows]

    def overview(self, flt: AgentFilter, sort: str, limit: int | None, offset: int,
                 now: float, scope: tuple[str, ...] | None = None
                 ) -> tuple[int, dict[str, int], list[AgentRow]]:
        """Filtered total, whole-fleet counts, and one page of rows (``limit`` None: all).
        ``scope``: only these teams' workstations, counts included (a supervisor's, a
        team-limited viewer's view); None: the whole fleet."""
        where, params = _where(flt, now)
        scoped, scope_params = _scope(scope)
        if scoped:
            where = f"{scoped} AND ({where})" if where else scoped
            params = [*scope_params, *params]
        order = SORTS[sort]
        order_params = [now] * order.count("?")
        with self.db.transaction() as tx:
            c = tx.one(
                "SELECT COUNT(*),"
                " SUM(CASE WHEN retired_at IS NOT NULL THEN 1 ELSE 0 END),"
                " SUM(CASE WHEN retired_at IS NULL AND last_seen IS NULL THEN 1 ELSE 0 END),"
                " SUM(CASE WHEN retired_at IS NULL AND deadline < ? THEN 1 ELSE 0 END),"
                " SUM(CASE WHEN retired_at IS NULL AND deadline >= ? THEN 1 ELSE 0 END),"
                " SUM(CASE WHEN retired_at IS NULL AND deadline >= ? AND ready = 1 THEN 1 "
                f"ELSE 0 END) FROM agents{' WHERE ' + scoped if scoped else ''}",
                (now, now, now, *scope_params))
            assert c is not None
            _, retired, never, offline, online, ready = (int(v or 0) for v in c)
            # not ready = online and not ready: an offline workstation is not counted as not
            # ready now (its last state is a past fact), it is counted offline
            counts = {"online": online, "offline": offline, "never_seen": never,
                      "retired": retired, "ready": ready, "not_ready": online - ready}
            if where != scoped:
                t = tx.one(f"SELECT COUNT(*) FROM agents WHERE {where}", params)
                total = int(t[0]) if t else 0
            else:
                total = int(c[0])
            page = f" LIMIT {int(limit)} OFFSET {int(offset)}" if limit is not None else ""
            rows = tx.all(f"SELECT {AGENT_COLUMNS} FROM agents"
                          f"{' WHERE ' + where if where else ''} ORDER BY {order}{page}",
                          [*params, *order_params])
        return total, counts, [AgentRow(*r) for r in rows]

    def team_counts(self, now: float, scope: tuple[str, ...] | None = None
                    ) -> list[dict[str, Any]]:
        """Per team (``None``: no team), over the fleet less the retired (``scope``: only these
        teams, as in ``overview``): online, offline, never seen, ready and not ready (online
        and not ready, as in ``overview``), the teams with the most not ready first."""
        scoped, scope_params = _scope(scope)
        with self.db.transaction() as tx:
            rows = tx.all(
                "SELECT team,"
                " SUM(CASE WHEN deadline >= ? THEN 1 ELSE 0 END),"
                " SUM(CASE WHEN deadline < ? THEN 1 ELSE 0 END),"
                " SUM(CASE WHEN last_seen IS NULL THEN 1 ELSE 0 END),"
                " SUM(CASE WHEN deadline >= ? AND ready = 1 THEN 1 ELSE 0 END)"
                f" FROM agents WHERE retired_at IS NULL{' AND ' + scoped if scoped else ''}"
                " GROUP BY team", (now, now, now, *scope_params))
        out = [{"team": team, "online": int(on or 0), "offline": int(off or 0),
                "never_seen": int(never or 0), "ready": int(ready or 0),
                "not_ready": int(on or 0) - int(ready or 0)}
               for team, on, off, never, ready in rows]
        return sorted(out, key=lambda t: (-t["not_ready"], -t["offline"], t["team"] is None,
                                          t["team"] or ""))

    # -- gate keys and sessions -----------------------------------------------------------
    def create_gate_key(self, note: str | None, now: float, audit: AuditEvent | None = None
                        ) -> tuple[str, str]:
        key, key_id = credentials.new_token("gate"), secrets.token_hex(6)
        with self.db.transaction(write=True) as tx:
            tx.execute("INSERT INTO gate_keys (key_id, key_hash, note, created_at) VALUES "
                       "(?, ?, ?, ?)", (key_id, credentials.token_hash(key), note, now))
            if audit is not None:
                _audit(tx, AuditEvent(audit.actor, audit.source, "gate_key.create", key_id,
                                      {"note": note}), now)
        return key, key_id

    def gate_keys(self) -> list[tuple[str, str | None, float, float | None]]:
        """Every gate key: ``(key_id, note, created_at, revoked_at)``; never the key."""
        with self.db.transaction() as tx:
            rows = tx.all("SELECT key_id, note, created_at, revoked_at FROM gate_keys "
                          "ORDER BY created_at, key_id")
        return [(str(r[0]), r[1], float(r[2]), None if r[3] is None else float(r[3]))
                for r in rows]

    def revoke_gate_key(self, key_id: str, now: float, audit: AuditEvent | None = None
                        ) -> bool:
        """Revoke a gate key (at once, for every process: each request checks the database);
        False when there is no such key."""
        with self.db.transaction(write=True) as tx:
            if tx.rowcount("UPDATE gate_keys SET revoked_at = ? WHERE key_id = ? "
                           "AND revoked_at IS NULL", (now, key_id)) == 1:
                _audit(tx, audit, now)
                return True
            return tx.one("SELECT 1 FROM gate_keys WHERE key_id = ?", (key_id,)) is not None

    def gate_key_id(self, key_hash: str) -> str | None:
        """The id of the active gate key with this hash, None if there is none."""
        with self.db.transaction() as tx:
            row = tx.one("SELECT key_id FROM gate_keys WHERE key_hash = ? AND revoked_at IS "
                         "NULL", (key_hash,))
        return str(row[0]) if row else None

    def gate_key_valid(self, key_hash: str) -> bool:
        return self.gate_key_id(key_hash) is not None

    def create_session(self, now: float, admin_tag: str, principal: Principal | None = None,
                       audit: AuditEvent | None = None) -> str:
        """A new dashboard session for ``principal`` (None: the admin token's). Bound to what
        may end it: the admin token's session (``admin_tag``, ``CenterRuntime.session_tag``)
        to that token; a named user's to their current key (``users.key_id``); any other
        principal's (OpenID Connect) carries its role and teams itself, for its lifetime."""
        session = credentials.new_token("ses", 32)
        p = principal or Principal("admin", ADMIN_TOKEN_SUBJECT)
        with self.db.transaction(write=True) as tx:
            tx.execute("DELETE FROM sessions WHERE expires_at < ?", (now,))
            bound = admin_tag
            if p.user_id is not None:
                row = tx.one("SELECT key_id FROM users WHERE user_id = ?", (p.user_id,))
                if row is None:
                    raise ValueError("no such user")
                bound = str(row[0])
            elif p.subject != ADMIN_TOKEN_SUBJECT:
                bound = "principal"
            tx.execute("INSERT INTO sessions (session_hash, created_at, expires_at, admin_tag, "
                       "subject, role, teams, user_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                       (credentials.token_hash(session), now, now + SESSION_TTL_S, bound,
                        p.subject, p.role, _teams_text(p.teams), p.user_id))
            _audit(tx, audit, now)
        return session

    def session_principal(self, session: str, now: float, admin_tag: str) -> Principal | None:
        """Who an unexpired session acts for, None when it is unknown, expired, or what it
        was bound to changed (a new admin token; the user's new key, deletion)."""
        with self.db.transaction() as tx:
            row = tx.one(
                "SELECT s.admin_tag, s.subject, s.role, s.teams, s.user_id, u.key_id, u.name, "
                "u.role, u.teams FROM sessions s LEFT JOIN users u ON u.user_id = s.user_id "
                "WHERE s.session_hash = ? AND s.expires_at > ?",
                (credentials.token_hash(session), now))
        if row is None:
            return None
        bound, subject, role, teams, user_id, key_id, name, user_role, user_teams = row
        if user_id is not None:
            if key_id is None or bound != key_id:
                return None
            return UserRow(str(user_id), str(name), str(user_role), _teams_of(user_teams),
                           None, 0.0, 0.0).principal()
        if subject is None or subject == ADMIN_TOKEN_SUBJECT:
            return Principal("admin", ADMIN_TOKEN_SUBJECT) if bound == admin_tag else None
        if bound != "principal" or role not in ("admin", "supervisor", "viewer"):
            return None
        found = _teams_of(teams)
        return Principal(role, str(subject), None if found is None else frozenset(found))

    def session_valid(self, session: str, now: float, admin_tag: str) -> bool:
        return self.session_principal(session, now, admin_tag) is not None

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

    def delete_session(self, session: str, now: float = 0.0,
                       audit: AuditEvent | None = None) -> None:
        """End a session; ``audit`` (a logout) is recorded with the session's subject as the
        actor, when there was such a session."""
        with self.db.transaction(write=True) as tx:
            row = tx.one("SELECT subject FROM sessions WHERE session_hash = ?",
                         (credentials.token_hash(session),))
            if row is None:
                return
            tx.execute("DELETE FROM sessions WHERE session_hash = ?",
                       (credentials.token_hash(session),))
            if audit is not None:
                _audit(tx, AuditEvent(str(row[0] or ADMIN_TOKEN_SUBJECT), audit.source,
                                      audit.action, audit.target, audit.detail), now)

    # -- users ----------------------------------------------------------------------------
    def create_user(self, name: str, role: str, teams: tuple[str, ...] | None,
                    note: str | None, now: float, audit: AuditEvent | None = None
                    ) -> tuple[UserRow, str] | None:
        """A new user and their key (shown once); None when the name is taken."""
        key, user_id = credentials.new_token("usr"), "u-" + secrets.token_hex(6)
        with self.db.transaction(write=True) as tx:
            if tx.rowcount("INSERT INTO users (user_id, name, role, teams, note, key_hash, "
                           "key_id, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
                           "ON CONFLICT (name) DO NOTHING",
                           (user_id, name, role, _teams_text(teams), note,
                            credentials.token_hash(key), secrets.token_hex(8), now, now)) != 1:
                return None
            if audit is not None:
                _audit(tx, AuditEvent(audit.actor, audit.source, "user.create", name,
                                      {"role": role, "teams": _teams_list(teams)}), now)
        return UserRow(user_id, name, role, teams, note, now, now), key

    def users(self) -> list[UserRow]:
        with self.db.transaction() as tx:
            rows = tx.all(f"SELECT {USER_COLUMNS} FROM users ORDER BY name")
        return [_user(r) for r in rows]

    def user(self, name: str) -> UserRow | None:
        with self.db.transaction() as tx:
            row = tx.one(f"SELECT {USER_COLUMNS} FROM users WHERE name = ?", (name,))
        return _user(row) if row else None

    def user_by_key(self, key: str) -> UserRow | None:
        with self.db.transaction() as tx:
            row = tx.one(f"SELECT {USER_COLUMNS} FROM users WHERE key_hash = ?",
                         (credentials.token_hash(key),))
        return _user(row) if row else None

    def change_user(self, name: str, role: str, teams: tuple[str, ...] | None,
                    note: str | None, now: float, audit: AuditEvent | None = None
                    ) -> UserRow | None:
        """Set a user's role, teams and note (their sessions follow at the next request)."""
        with self.db.transaction(write=True) as tx:
            before = tx.one(f"SELECT {USER_COLUMNS} FROM users WHERE name = ?", (name,))
            if before is None:
                return None
            old = _user(before)
            tx.execute("UPDATE users SET role = ?, teams = ?, note = ?, updated_at = ? WHERE "
                       "name = ?", (role, _teams_text(teams), note, now, name))
            if audit is not None:
                _audit(tx, AuditEvent(audit.actor, audit.source, "user.change", name, {
                    "role": [old.role, role],
                    "teams": [_teams_list(old.teams), _teams_list(teams)]}), now)
        return UserRow(old.user_id, name, role, teams, note, old.created_at, now)

    def new_user_key(self, name: str, now: float, audit: AuditEvent | None = None
                     ) -> str | None:
        """A new key for the user (shown once): the old one, and every session made with it,
        stop at once. None when there is no such user."""
        key = credentials.new_token("usr")
        with self.db.transaction(write=True) as tx:
            if tx.rowcount("UPDATE users SET key_hash = ?, key_id = ?, updated_at = ? WHERE "
                           "name = ?", (credentials.token_hash(key), secrets.token_hex(8), now,
                                        name)) != 1:
                return None
            _audit(tx, audit, now)
        return key

    def delete_user(self, name: str, now: float, audit: AuditEvent | None = None) -> bool:
        """Delete a user: their key and sessions stop at once (the audit log keeps their
        name). False when there is no such user."""
        with self.db.transaction(write=True) as tx:
            row = tx.one("SELECT user_id FROM users WHERE name = ?", (name,))
            if row is None:
                return False
            tx.execute("DELETE FROM sessions WHERE user_id = ?", (row[0],))
            tx.execute("DELETE FROM users WHERE user_id = ?", (row[0],))
            _audit(tx, audit, now)
        return True

    # -- the audit log --------------------------------------------------------------------
    def record(self, event: AuditEvent, now: float) -> None:
        """Write an event on its own (a failed login: no change goes with it)."""
        with self.db.transaction(write=True) as tx:
            audit.record(tx, event, now)

    def audit_events(self, flt: AuditFilter, limit: int, offset: int
                     ) -> tuple[int, list[AuditRow]]:
        with self.db.transaction() as tx:
            return audit.read(tx, flt, limit, offset)

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

    # -- metrics ----------------------------------------------------------------------
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
    elif flt.ready is False:   # online and not ready (as counted: offline is not "not ready")
        parts.append("retired_at IS NULL AND deadline >= ? AND ready = 0")
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


def _teams_list(teams: tuple[str, ...] | frozenset[str] | None) -> list[str] | None:
    return None if teams is None else sorted(teams)


def _scope(teams: tuple[str, ...] | None) -> tuple[str, list[Any]]:
    """The WHERE clause limiting agents to ``teams`` (none at all for an empty tuple)."""
    if teams is None:
        return "", []
    if not teams:
        return "(1 = 0)", []
    return f"(team IN ({', '.join('?' for _ in teams)}))", list(teams)


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _heartbeat_out(row: tuple[Any, ...]) -> dict[str, Any]:
    from agent_kit.center.fleet import iso

    out: dict[str, Any] = json.loads(row[0])
    out["received_at"] = iso(float(row[1]))
    return out
