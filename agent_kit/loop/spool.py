"""The heartbeat spool: every heartbeat is written to disk (SQLite) before any send is tried.

So heartbeats survive a center outage, a network loss and the agent being killed (``kill -9``,
power loss). Each heartbeat gets, in the same transaction that stores it:

- a client-side ``id`` (uuid4): the center stores ``(agent, id)`` once, so resending after a lost
  answer is harmless (at-least-once delivery + idempotent intake = exactly once stored);
- a per-workstation ``seq`` 1, 2, 3, ... from a counter kept in the database: never reused, kept
  across restarts, never derived from the rows (acknowledged rows are deleted).

Durability: WAL journal with ``synchronous=FULL``. WAL + NORMAL already survives a killed
process, but after a power loss it may roll back the last commits, and with them the ``seq``
counter: the agent would then reuse a seq the center already holds under another id (409
``seq_conflict``). FULL syncs the WAL on every commit; at one heartbeat per 15 s that is one
fsync per 15 s, nothing.

Overflow policy: at most ``max_rows`` heartbeats wait (default 5760 = 24 h at 15 s). When full,
the *oldest* are dropped (the newest state matters most) and counted; the count rides in the
next heartbeat's ``dropped`` field, so the center and IT see why ``seq`` has a gap.

A lost spool (deleted, moved away, a new profile, an old copy restored) starts its counter at 1
again, below what the center already holds: the center refuses such a heartbeat (409
``seq_conflict``) and says its highest stored seq, and the courier calls :meth:`Spool.resync`,
which renumbers every waiting heartbeat after it (same ids) and moves the counter on. The
heartbeat that met the conflict is sent again at once, so the workstation is heard within the
same interval; the resync is kept in the spool and ``agent-kit status`` mentions it.

Delivery order (see ``agent_kit.loop.courier``): the newest heartbeat first, alone, then the
backlog oldest-first in batches, so the current state is never starved by a backlog.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from agent_kit.core.wire.heartbeat import Heartbeat, HeartbeatContent, identified_heartbeat
from agent_kit.link.private_files import (
    create_private_file,
    make_private_files,
    make_private_folder,
)

DEFAULT_MAX_ROWS = 5760

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS heartbeats (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    body TEXT NOT NULL,
    created_at REAL NOT NULL,
    carries_dropped INTEGER NOT NULL DEFAULT 0
);
"""



@dataclass(frozen=True)
class Spooled:
    """One heartbeat as stored: its id, seq and the JSON body sent to the center."""

    id: str
    seq: int
    body: Heartbeat


@dataclass(frozen=True)
class Resync:
    """The last time the seq counter was moved past the center's (see :meth:`Spool.resync`)."""

    at: float               # unix seconds
    after_seq: int          # the center's highest stored seq then
    renumbered: int         # waiting heartbeats given new seqs after it (none dropped)


@dataclass(frozen=True)
class SpoolStats:
    pending: int
    next_seq: int
    acked_total: int
    dropped_total: int      # lost to overflow (oldest first), reported to the center
    rejected_total: int     # refused by the center as malformed (permanent error), logged
    oldest_pending_at: float | None
    resync: Resync | None = None


class Spool:
    """The on-disk queue of one workstation's heartbeats. One writer (the monitor) at a time."""

    def __init__(self, path: Path, agent_id: str, *, max_rows: int = DEFAULT_MAX_ROWS,
                 clock: Callable[[], float] = time.time) -> None:
        if max_rows < 1:
            raise ValueError("max_rows must be at least 1")
        self.path, self.agent_id, self.max_rows, self.clock = path, agent_id, max_rows, clock
        # the user's only: the folder 0700, the database 0600 before SQLite opens it (its -wal
        # and -shm take the database file's mode), an older spool's files tightened
        make_private_folder(path.parent)
        create_private_file(path)
        make_private_files(path.with_name(path.name + suffix) for suffix in ("", "-wal", "-shm"))
        # autocommit mode: every transaction below is an explicit BEGIN IMMEDIATE ... COMMIT
        self._db = sqlite3.connect(path, isolation_level=None, timeout=10.0)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)
        with self._transaction():
            owner = self._meta("agent_id")
            if owner != agent_id:
                # a new enrollment is a new workstation identity: its seq starts at 1, and
                # heartbeats of the old identity must never be sent under the new one
                self._db.execute("DELETE FROM heartbeats")
                self._db.execute("DELETE FROM meta")
                self._set_meta("agent_id", agent_id)
                self._set_meta("next_seq", 1)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Spool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---------------------------------------------------------------- writing

    def add(self, heartbeat: HeartbeatContent) -> Spooled:
        """Store a heartbeat; give it its id, seq and (when some were dropped) the count
        (``core.wire.heartbeat.identified_heartbeat``)."""
        with self._transaction():
            seq = self._counter("next_seq") or 1
            unreported = self._counter("dropped_unreported")
            excess = self._pending() - self.max_rows + 1
            if excess > 0:
                rows = self._db.execute(
                    "SELECT seq, carries_dropped FROM heartbeats ORDER BY seq LIMIT ?",
                    (excess,)).fetchall()
                self._db.execute("DELETE FROM heartbeats WHERE seq <= ?", (rows[-1][0],))
                unreported += len(rows) + sum(r[1] for r in rows)
                self._bump("dropped_total", len(rows))
            body = identified_heartbeat(heartbeat, seq=seq, dropped=unreported)
            self._db.execute(
                "INSERT INTO heartbeats (seq, id, body, created_at, carries_dropped) "
                "VALUES (?, ?, ?, ?, ?)",
                (seq, body["id"], json.dumps(body, separators=(",", ":")), self.clock(),
                 unreported))
            self._set_meta("next_seq", seq + 1)
            self._set_meta("dropped_unreported", 0)
        return Spooled(body["id"], seq, body)

    def resync(self, center_last_seq: int) -> Resync | None:
        """The center already holds seqs up to ``center_last_seq`` under other heartbeats: this
        spool was lost, replaced or restored from an old copy, and its counter started again
        below the center's. Every waiting heartbeat gets a new seq after it, in the same order
        and with the same id (so one the center stored meanwhile is still recognised), and the
        counter continues after them; nothing is dropped. None when no waiting heartbeat is at
        or below ``center_last_seq`` (nothing to renumber)."""
        with self._transaction():
            rows = self._db.execute(
                "SELECT seq, id, body, created_at, carries_dropped FROM heartbeats "
                "ORDER BY seq").fetchall()
            if not rows or rows[0][0] > center_last_seq:
                return None
            self._db.execute("DELETE FROM heartbeats")
            for new_seq, (_old, hb_id, body, created_at, carries) in enumerate(
                    rows, start=center_last_seq + 1):
                data = json.loads(body)
                data["seq"] = new_seq
                self._db.execute(
                    "INSERT INTO heartbeats (seq, id, body, created_at, carries_dropped) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (new_seq, hb_id, json.dumps(data, separators=(",", ":")), created_at,
                     carries))
            self._set_meta("next_seq", max(self._counter("next_seq"),
                                           center_last_seq + 1 + len(rows)))
            done = Resync(at=self.clock(), after_seq=center_last_seq, renumbered=len(rows))
            self._set_meta("resync", json.dumps([done.at, done.after_seq, done.renumbered]))
        return done

    def ack(self, ids: Iterable[str]) -> int:
        """The center stored these (or already had them): forget them."""
        return self._remove(ids, "acked_total")

    def reject(self, ids: Iterable[str]) -> int:
        """The center refused these for good (malformed): forget them, count them."""
        return self._remove(ids, "rejected_total")

    # ---------------------------------------------------------------- reading

    def newest(self) -> Spooled | None:
        row = self._db.execute(
            "SELECT id, seq, body FROM heartbeats ORDER BY seq DESC LIMIT 1").fetchone()
        return _spooled(row) if row else None

    def oldest(self, limit: int, *, excluding: Iterable[int] = ()) -> list[Spooled]:
        skip = sorted(set(excluding))
        marks = ",".join("?" * len(skip))
        where = f"WHERE seq NOT IN ({marks})" if skip else ""
        rows = self._db.execute(
            f"SELECT id, seq, body FROM heartbeats {where} ORDER BY seq LIMIT ?",  # noqa: S608
            (*skip, limit)).fetchall()
        return [_spooled(r) for r in rows]

    def stats(self) -> SpoolStats:
        oldest = self._db.execute("SELECT MIN(created_at) FROM heartbeats").fetchone()[0]
        return SpoolStats(pending=self._pending(), next_seq=self._counter("next_seq") or 1,
                          acked_total=self._counter("acked_total"),
                          dropped_total=self._counter("dropped_total"),
                          rejected_total=self._counter("rejected_total"),
                          oldest_pending_at=oldest, resync=self._last_resync())

    def integrity_ok(self) -> bool:
        return bool(self._db.execute("PRAGMA integrity_check").fetchone()[0] == "ok")

    # ---------------------------------------------------------------- internals

    def _remove(self, ids: Iterable[str], counter: str) -> int:
        ids = list(ids)
        if not ids:
            return 0
        with self._transaction():
            removed = 0
            for chunk in (ids[i:i + 500] for i in range(0, len(ids), 500)):
                marks = ",".join("?" * len(chunk))
                removed += self._db.execute(
                    f"DELETE FROM heartbeats WHERE id IN ({marks})", chunk).rowcount  # noqa: S608
            self._bump(counter, removed)
        return removed

    def _last_resync(self) -> Resync | None:
        raw = self._meta("resync")
        if raw is None:
            return None
        at, after_seq, renumbered = json.loads(raw)
        return Resync(at=float(at), after_seq=int(after_seq), renumbered=int(renumbered))

    def _pending(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM heartbeats").fetchone()[0])

    def _meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def _counter(self, key: str) -> int:
        return int(self._meta(key) or 0)

    def _set_meta(self, key: str, value: object) -> None:
        self._db.execute("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO "
                         "UPDATE SET value = excluded.value", (key, str(value)))

    def _bump(self, key: str, by: int) -> None:
        self._set_meta(key, self._counter(key) + by)

    def _transaction(self) -> _Transaction:
        return _Transaction(self._db)


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT, ROLLBACK on error: all of a write or none of it."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> None:
        self.db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, *_: object) -> None:
        self.db.execute("ROLLBACK" if exc_type is not None else "COMMIT")


def _spooled(row: tuple[str, int, str]) -> Spooled:
    return Spooled(id=row[0], seq=int(row[1]), body=json.loads(row[2]))
