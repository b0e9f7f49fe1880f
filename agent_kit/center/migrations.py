"""The center's schema, versioned. Applied on start, in order, once (a lock keeps several
processes starting together on one PostgreSQL from racing).

Design for intake throughput and a 100,000-agent overview: ``heartbeats`` has only its primary
key ``(agent_id, seq)`` and the idempotency key ``(agent_id, id)``; the fleet overview reads
``agents``, which holds each workstation's latest state (one row per agent, updated by intake),
never a scan of heartbeats.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from agent_kit.center.database import Database, DatabaseUnavailable, Tx


@dataclass(frozen=True)
class Migration:
    version: int
    what: str
    statements: tuple[str, ...]
    # Per-dialect replacements of single statements (same index), only where SQL differs.
    overrides: dict[str, dict[int, str]] = field(default_factory=dict)


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "initial schema", (
        """CREATE TABLE center_secrets (
            name TEXT PRIMARY KEY, value TEXT NOT NULL, created_at DOUBLE PRECISION NOT NULL)""",
        """CREATE TABLE enrollment_tokens (
            token_id TEXT PRIMARY KEY, token_hash TEXT NOT NULL UNIQUE, note TEXT,
            uses_max BIGINT NOT NULL, uses BIGINT NOT NULL DEFAULT 0,
            created_at DOUBLE PRECISION NOT NULL, expires_at DOUBLE PRECISION NOT NULL,
            revoked_at DOUBLE PRECISION)""",
        """CREATE TABLE agents (
            agent_id TEXT PRIMARY KEY, hostname TEXT NOT NULL, display_name TEXT,
            nonce TEXT NOT NULL, token_id TEXT, enrolled_at DOUBLE PRECISION NOT NULL,
            retired_at DOUBLE PRECISION,
            last_seen DOUBLE PRECISION, deadline DOUBLE PRECISION, last_seq BIGINT,
            interval_s DOUBLE PRECISION, agent_version TEXT, verdict TEXT, ready SMALLINT,
            ready_since TEXT, failing TEXT NOT NULL DEFAULT '', measured_at TEXT,
            alert_state TEXT)""",
        """CREATE TABLE heartbeats (
            agent_id TEXT NOT NULL, seq BIGINT NOT NULL, id TEXT NOT NULL,
            received_at DOUBLE PRECISION NOT NULL, body TEXT NOT NULL,
            PRIMARY KEY (agent_id, seq), UNIQUE (agent_id, id))""",
        """CREATE TABLE gate_keys (
            key_id TEXT PRIMARY KEY, key_hash TEXT NOT NULL UNIQUE, note TEXT,
            created_at DOUBLE PRECISION NOT NULL, revoked_at DOUBLE PRECISION)""",
        """CREATE TABLE sessions (
            session_hash TEXT PRIMARY KEY, created_at DOUBLE PRECISION NOT NULL,
            expires_at DOUBLE PRECISION NOT NULL)""",
        """CREATE TABLE reports (
            report_id TEXT PRIMARY KEY, agent_id TEXT NOT NULL,
            created_at DOUBLE PRECISION NOT NULL, size_bytes BIGINT NOT NULL,
            body TEXT NOT NULL)""",
        "CREATE INDEX reports_by_agent ON reports (agent_id, created_at)",
        "CREATE TABLE counters (name TEXT PRIMARY KEY, value BIGINT NOT NULL)",
        "INSERT INTO counters (name, value) VALUES ('heartbeats_stored', 0)",
    ), overrides={"sqlite": {
        # Clustered by (agent_id, seq): one B-tree less to update per heartbeat.
        3: """CREATE TABLE heartbeats (
            agent_id TEXT NOT NULL, seq BIGINT NOT NULL, id TEXT NOT NULL,
            received_at DOUBLE PRECISION NOT NULL, body TEXT NOT NULL,
            PRIMARY KEY (agent_id, seq), UNIQUE (agent_id, id)) WITHOUT ROWID""",
    }}),
    Migration(2, "sessions bound to the admin token; single-use signatures", (
        # A session is valid only under the admin token it was made with (a new token ends
        # every session); rows made before this migration have none and are refused.
        "ALTER TABLE sessions ADD COLUMN admin_tag TEXT",
        # Signatures of non-idempotent workstation requests already served, kept for the clock
        # window (plus a margin), shared by every process and host of the center.
        """CREATE TABLE used_signatures (
            signature TEXT PRIMARY KEY, expires_at DOUBLE PRECISION NOT NULL)""",
        "CREATE INDEX used_signatures_by_expiry ON used_signatures (expires_at)",
    )),
    Migration(3, "teams: a workstation belongs to a team/site, given by its enrollment token", (
        # NULL: no team (only admins and all-teams viewers see it).
        "ALTER TABLE agents ADD COLUMN team TEXT",
        "ALTER TABLE enrollment_tokens ADD COLUMN team TEXT",
        "CREATE INDEX agents_by_team ON agents (team)",
    )),
    Migration(4, "named users with roles; sessions for any principal; the audit log", (
        # A user's key is stored hashed (SHA-256, like every bearer string the center makes);
        # key_id changes with each new key, and a user's sessions are bound to it.
        """CREATE TABLE users (
            user_id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, role TEXT NOT NULL,
            teams TEXT, note TEXT, key_hash TEXT NOT NULL UNIQUE, key_id TEXT NOT NULL,
            created_at DOUBLE PRECISION NOT NULL, updated_at DOUBLE PRECISION NOT NULL)""",
        # Who a session acts for (principals.Principal); a row without a subject is the admin
        # token's (made before this migration). user_id: a named user's session (its role and
        # teams are read from users at each request); else role and teams are the session's.
        "ALTER TABLE sessions ADD COLUMN subject TEXT",
        "ALTER TABLE sessions ADD COLUMN role TEXT",
        "ALTER TABLE sessions ADD COLUMN teams TEXT",
        "ALTER TABLE sessions ADD COLUMN user_id TEXT",
        """CREATE TABLE audit_log (
            event_id TEXT PRIMARY KEY, at DOUBLE PRECISION NOT NULL, actor TEXT NOT NULL,
            source TEXT NOT NULL, action TEXT NOT NULL, target TEXT, detail TEXT)""",
        "CREATE INDEX audit_log_by_time ON audit_log (at, event_id)",
        "CREATE INDEX audit_log_by_actor ON audit_log (actor, at)",
    )),
    Migration(5, "alert incidents and their deliveries", (
        # One row per incident of an alert rule (alert_rules.py): pending while its condition
        # has not yet held for the rule's duration, open once it has (then delivered), resolved
        # when it no longer holds. At most one live (not resolved) incident per rule and
        # subject, whichever process sees it first: the partial unique index.
        """CREATE TABLE incidents (
            incident_id TEXT PRIMARY KEY, rule TEXT NOT NULL, kind TEXT NOT NULL,
            subject TEXT NOT NULL, state TEXT NOT NULL, since DOUBLE PRECISION NOT NULL,
            opened_at DOUBLE PRECISION, clear_since DOUBLE PRECISION,
            resolved_at DOUBLE PRECISION, facts TEXT NOT NULL, resolved_facts TEXT)""",
        "CREATE UNIQUE INDEX incidents_live ON incidents (rule, subject) "
        "WHERE state <> 'resolved'",
        "CREATE INDEX incidents_by_open ON incidents (opened_at)",
        # The outbox: one row per incident, event (opened / resolved) and channel, written in
        # the transaction that opened or resolved the incident; a process claims a row (a lease)
        # before it sends, so each is delivered once.
        """CREATE TABLE incident_deliveries (
            incident_id TEXT NOT NULL, event TEXT NOT NULL, channel TEXT NOT NULL,
            state TEXT NOT NULL, tries BIGINT NOT NULL DEFAULT 0,
            created_at DOUBLE PRECISION NOT NULL, next_at DOUBLE PRECISION NOT NULL,
            lease_until DOUBLE PRECISION, sent_at DOUBLE PRECISION, last_error TEXT,
            PRIMARY KEY (incident_id, event, channel))""",
        "CREATE INDEX incident_deliveries_due ON incident_deliveries (state, next_at)",
    )),
    Migration(6, "policy versions: the fleet's call standards and teams' overrides, edited "
              "at the center", (
        # Every change is a new row, never an update: the active version of a scope (the fleet
        # when team is NULL, else that team's override) is its newest row, and a rollback is a
        # new row with an older row's text (rollback_of). toml NULL: the team's override was
        # removed (the team follows the fleet). tag: sha256 of the text, hex.
        """CREATE TABLE policy_versions (
            version_id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, team TEXT,
            toml TEXT, tag TEXT NOT NULL, name TEXT, version TEXT, author TEXT NOT NULL,
            comment TEXT, created_at DOUBLE PRECISION NOT NULL, rollback_of BIGINT)""",
        "CREATE INDEX policy_versions_by_scope ON policy_versions (team, version_id)",
    ), overrides={"sqlite": {
        0: """CREATE TABLE policy_versions (
            version_id INTEGER PRIMARY KEY AUTOINCREMENT, team TEXT,
            toml TEXT, tag TEXT NOT NULL, name TEXT, version TEXT, author TEXT NOT NULL,
            comment TEXT, created_at DOUBLE PRECISION NOT NULL, rollback_of BIGINT)""",
    }}),
)

LATEST_VERSION = MIGRATIONS[-1].version


def current_version(tx: Tx) -> int:
    row = tx.one("SELECT MAX(version) FROM schema_version")
    return int(row[0]) if row and row[0] is not None else 0


def migrate(db: Database) -> int:
    """Bring the schema to :data:`LATEST_VERSION`; returns the version found before. A
    PostgreSQL database whose encoding is not UTF8 is refused (:class:`DatabaseUnavailable`):
    it would refuse any text its encoding lacks (a hostname in Japanese in a LATIN1 database,
    anything non-ASCII in SQL_ASCII) one request at a time, long after the start."""
    with db.transaction(write=True) as tx:
        if db.dialect == "postgresql":
            row = tx.one("SHOW server_encoding")
            if row is None or str(row[0]).upper() != "UTF8":
                raise DatabaseUnavailable(
                    f"the PostgreSQL database's encoding is {row[0] if row else 'unknown'}; the "
                    "center needs UTF8 (CREATE DATABASE ... ENCODING 'UTF8' TEMPLATE template0)")
            tx.execute("SELECT pg_advisory_xact_lock(727374)")
        tx.execute("CREATE TABLE IF NOT EXISTS schema_version (version BIGINT NOT NULL, "
                   "applied_at DOUBLE PRECISION NOT NULL)")
        before = current_version(tx)
        if before > LATEST_VERSION:
            raise RuntimeError(f"database schema version {before} is newer than this center "
                               f"({LATEST_VERSION}): upgrade agent-center")
        import time

        for migration in MIGRATIONS:
            if migration.version <= before:
                continue
            overrides = migration.overrides.get(db.dialect, {})
            for i, statement in enumerate(migration.statements):
                tx.execute(overrides.get(i, statement))
            tx.execute("INSERT INTO schema_version (version, applied_at) VALUES (?, ?)",
                       (migration.version, time.time()))
    return before
