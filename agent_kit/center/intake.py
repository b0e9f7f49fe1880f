"""Heartbeat intake with group commit: one writer thread, one transaction per group of requests.

Each request's heartbeats become a job on a queue; the writer takes every job waiting (up to
``max_jobs``), applies them in one transaction, commits (SQLite WAL with synchronous=FULL, or
PostgreSQL), and only then answers each request: acknowledged means committed, and the cost of a
commit (an fsync) is shared by every request that arrived meanwhile.

Per heartbeat: ``INSERT ... ON CONFLICT DO NOTHING`` on ``(agent_id, seq)`` and
``(agent_id, id)``. A heartbeat that inserts nothing is a *duplicate* when the same id is stored
with the same seq; otherwise its seq (or id) is taken by another heartbeat: the request is
refused (``seq_conflict``) and the rows it inserted in this transaction are deleted again, so
nothing of it is stored. Then the workstation's latest state (``agents`` row) is updated.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from agent_kit.center.database import Database, DatabaseUnavailable, Tx
from agent_kit.center.fleet import deadline
from agent_kit.center.models import Heartbeat

log = logging.getLogger("agent_kit.center.intake")

_INSERT = ("INSERT INTO heartbeats (agent_id, seq, id, received_at, body) VALUES (?, ?, ?, ?, ?)"
           " ON CONFLICT DO NOTHING")
_FIND = "SELECT id, seq FROM heartbeats WHERE agent_id = ? AND (id = ? OR seq = ?)"
_STATE = ("UPDATE agents SET last_seen = ?, deadline = ?, last_seq = ?, interval_s = ?,"
          " agent_version = ?, verdict = ?, ready = ?, failing = ?, measured_at = ?,"
          " ready_since = {since} WHERE agent_id = ? AND COALESCE(last_seq, 0) < ?")
_STATE_GIVEN = _STATE.format(since="?")
_STATE_DERIVED = _STATE.format(since="CASE WHEN COALESCE(ready, -1) = ? THEN "
                               "COALESCE(ready_since, ?) ELSE ? END")
_ALIVE = "UPDATE agents SET last_seen = ?, deadline = ? WHERE agent_id = ?"
_COUNT = "UPDATE counters SET value = value + ? WHERE name = 'heartbeats_stored'"


@dataclass(frozen=True)
class SeqConflict:
    """The request was refused: this heartbeat's seq or id is stored under another heartbeat."""

    id: str
    seq: int


@dataclass
class IntakeJob:
    agent_id: str
    heartbeats: list[Heartbeat]
    received_at: float
    future: Future[list[tuple[str, int, str]] | SeqConflict] = field(default_factory=Future)


class IntakeWriter:
    """The one writer thread of this process."""

    def __init__(self, db: Database, max_jobs: int = 512) -> None:
        self.db = db
        self.max_jobs = max_jobs
        self._queue: queue.SimpleQueue[IntakeJob | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="center-intake", daemon=True)
        self._conn: Any = None
        self.stored_total = 0          # this process, for the intake-rate metric
        self.groups_total = 0

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=10)
        if self._conn is not None:
            self._conn.close()

    def submit(self, job: IntakeJob) -> Future[list[tuple[str, int, str]] | SeqConflict]:
        self._queue.put(job)
        return job.future

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            jobs = [first]
            stop = False
            while len(jobs) < self.max_jobs:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    stop = True
                    break
                jobs.append(nxt)
            self._commit_group(jobs)
            if stop:
                return

    def _commit_group(self, jobs: list[IntakeJob]) -> None:
        outcomes: list[list[tuple[str, int, str]] | SeqConflict] = []
        try:
            if self._conn is None:
                self._conn = self.db.connect()
            tx = Tx(self.db, self._conn)
            tx.begin(write=True)
            try:
                stored = 0
                for job in jobs:
                    outcome = apply_job(tx, job)
                    outcomes.append(outcome)
                    if not isinstance(outcome, SeqConflict):
                        stored += sum(1 for _, _, status in outcome if status == "stored")
                if stored:
                    tx.execute(_COUNT, (stored,))
                tx.commit()
            except BaseException:
                tx.rollback_quietly()
                raise
        except Exception as exc:  # the database is down or broken: every request gets a 503
            log.warning("heartbeat intake failed: %s", type(exc).__name__)
            if self._conn is not None:
                with contextlib.suppress(Exception):
                    self._conn.close()
                self._conn = None
            error = DatabaseUnavailable(f"database error during intake: {type(exc).__name__}")
            for job in jobs:
                job.future.set_exception(error)
            return
        self.stored_total += stored
        self.groups_total += 1
        for job, outcome in zip(jobs, outcomes, strict=True):
            job.future.set_result(outcome)


def apply_job(tx: Tx, job: IntakeJob) -> list[tuple[str, int, str]] | SeqConflict:
    """Store one request's heartbeats inside the group's transaction."""
    results: list[tuple[str, int, str]] = []
    inserted: list[int] = []
    for hb in job.heartbeats:
        body = hb.model_dump_json()
        if tx.execute(_INSERT, (job.agent_id, hb.seq, hb.id, job.received_at, body)).rowcount == 1:
            inserted.append(hb.seq)
            results.append((hb.id, hb.seq, "stored"))
            continue
        same = any(str(i) == hb.id and int(s) == hb.seq
                   for i, s in tx.all(_FIND, (job.agent_id, hb.id, hb.seq)))
        if not same:
            for seq in inserted:
                tx.execute("DELETE FROM heartbeats WHERE agent_id = ? AND seq = ?",
                           (job.agent_id, seq))
            return SeqConflict(hb.id, hb.seq)
        results.append((hb.id, hb.seq, "duplicate"))
    update_state(tx, job)
    return results


def update_state(tx: Tx, job: IntakeJob) -> None:
    latest = max(job.heartbeats, key=lambda hb: hb.seq)
    ready = 1 if latest.gate.open else 0
    failing = ",".join(c.id for c in latest.checks if c.status == "fail")
    failing = f",{failing}," if failing else ""
    measured = latest.measured_at.isoformat()
    due = deadline(job.received_at, latest.interval_s)
    head = (job.received_at, due, latest.seq, latest.interval_s, latest.agent_version,
            latest.verdict, ready, failing, measured)
    if latest.gate.since is not None:
        params: tuple[Any, ...] = (*head, latest.gate.since.isoformat(), job.agent_id, latest.seq)
        n = tx.execute(_STATE_GIVEN, params).rowcount
    else:
        params = (*head, ready, measured, measured, job.agent_id, latest.seq)
        n = tx.execute(_STATE_DERIVED, params).rowcount
    if n == 0:  # an older heartbeat arrived late (or a resend): still a sign of life
        tx.execute(_ALIVE, (job.received_at, due, job.agent_id))
