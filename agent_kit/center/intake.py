"""Heartbeat intake with group commit: one writer thread, one transaction per group of requests.

Each request's heartbeats become a job on a queue; the writer takes every job waiting (up to
``max_jobs``), applies them in one transaction, commits (SQLite WAL with synchronous=FULL, or
PostgreSQL), and only then answers each request: acknowledged means committed, and the cost of a
commit (an fsync) is shared by every request that arrived meanwhile. The answers go back to each
event loop in one call per group (not one cross-thread wake-up per request).

Per heartbeat: ``INSERT ... ON CONFLICT DO NOTHING`` on ``(agent_id, seq)`` and
``(agent_id, id)``. A heartbeat that inserts nothing is a *duplicate* when the same id is stored
with the same seq; otherwise its seq (or id) is taken by another heartbeat: the request is
refused (``seq_conflict``, with the workstation's highest stored seq, so that one whose spool was
lost can continue after it) and the rows it inserted in this transaction are deleted again, so
nothing of it is stored. Then the workstation's latest state (``agents`` row) is updated.

One request never fails the others of its group: when the database refuses the group for
something other than its own trouble (a value or a constraint the validation did not foresee:
a trigger, a database encoding that cannot hold a character), the group is applied again with
each request inside its own savepoint, and only the request(s) the database refuses fail
(:class:`Refused`, answered 422; a failure that is neither the database's trouble nor a refusal
is a bug, answered 500 for that request alone). The first, whole-group attempt keeps the common
case at two statement pipelines per group on PostgreSQL. The database's own trouble (down,
locked, disk full: :func:`database.unavailable`) fails the whole group with 503, to retry.
A request whose heartbeats are all duplicates changes nothing (so replaying a captured request
is harmless: the heartbeats route needs no record of used signatures).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import sqlite3
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias

from agent_kit.center.database import Database, DatabaseUnavailable, Tx, unavailable
from agent_kit.center.fleet import deadline
from agent_kit.center.models import ValidHeartbeat
from agent_kit.center.untrusted_text import terminal_text

log = logging.getLogger("agent_kit.center.intake")

_INSERT = ("INSERT INTO heartbeats (agent_id, seq, id, received_at, body) VALUES (?, ?, ?, ?, ?)"
           " ON CONFLICT DO NOTHING")
_INSERT_RETURNING = _INSERT + " RETURNING seq"
_FIND = "SELECT id, seq FROM heartbeats WHERE agent_id = ? AND (id = ? OR seq = ?)"
_STATE_RETURNING = (
    "UPDATE agents SET last_seen = ?, deadline = ?, last_seq = ?, interval_s = ?,"
    " agent_version = ?, verdict = ?, ready = ?, failing = ?, measured_at = ?,"
    " ready_since = COALESCE(?, CASE WHEN COALESCE(ready, -1) = ? THEN COALESCE(ready_since, ?)"
    " ELSE ? END) WHERE agent_id = ? AND COALESCE(last_seq, 0) < ? RETURNING agent_id")
_LAST_SEQ = "SELECT MAX(seq) FROM heartbeats WHERE agent_id = ?"
_ALIVE = "UPDATE agents SET last_seen = ?, deadline = ? WHERE agent_id = ?"
_COUNT = "UPDATE counters SET value = value + ? WHERE name = 'heartbeats_stored'"


@dataclass(frozen=True)
class SeqConflict:
    """The request was refused: this heartbeat's seq or id is stored under another heartbeat.

    ``last_seq`` is the workstation's highest stored seq, so that a workstation whose spool was
    lost (its counter back at 1) can continue after it; ``stored_seq`` is the seq under which
    this heartbeat's id is already stored, when it is (the heartbeat is there already)."""

    id: str
    seq: int
    last_seq: int = 0
    stored_seq: int | None = None


@dataclass(frozen=True)
class Refused:
    """The database refused this request's heartbeats (a value or a constraint the validation
    did not foresee); nothing of it was stored, the rest of its group was."""

    reason: str   # the database's error class and code, for the client


Outcome: TypeAlias = list[tuple[str, int, str]] | SeqConflict | Refused
# What the writer hands a request: its outcome, or the exception its request raises.
Answer: TypeAlias = Outcome | BaseException


@dataclass(slots=True)
class IntakeJob:
    """One request's heartbeats, and where its answer goes (a future of the request's loop)."""

    agent_id: str
    heartbeats: list[ValidHeartbeat]   # models.Heartbeat instances
    received_at: float
    loop: asyncio.AbstractEventLoop
    waiter: asyncio.Future[Outcome]


class IntakeWriter:
    """The one writer thread of this process."""

    def __init__(self, db: Database, max_jobs: int = 512,
                 on_commit: Callable[[int, int], None] | None = None) -> None:
        """``on_commit(stored, duplicate)`` runs in the writer thread after each committed
        group, before its answers (the metrics' counters): keep it cheap, it delays them."""
        self.db = db
        self.max_jobs = max_jobs
        self.on_commit = on_commit
        self._queue: queue.SimpleQueue[IntakeJob | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="center-intake", daemon=True)
        self._conn: Any = None
        self.stored_total = 0          # this process
        self.groups_total = 0

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=10)
        if self._conn is not None:
            self._conn.close()

    async def store(self, agent_id: str, heartbeats: list[ValidHeartbeat],
                    received_at: float) -> Outcome:
        """Queue one request's heartbeats; the outcome once their group is committed (raises
        :class:`DatabaseUnavailable` if it could not be)."""
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[Outcome] = loop.create_future()
        self._queue.put(IntakeJob(agent_id, heartbeats, received_at, loop, waiter))
        return await waiter

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
        try:
            if self._conn is None:
                self._conn = self.db.connect()
            try:
                answers, stored, duplicate = self._transaction(jobs, apply_jobs)
            except Exception as exc:
                if unavailable(exc) is not None:
                    raise
                log.warning("the database refused a group of %d request(s) (%s); storing "
                            "each alone", len(jobs), _refusal(exc))
                answers, stored, duplicate = self._transaction(jobs, apply_each_alone)
        except Exception as exc:  # the database is down, full or broken: every request gets 503
            down = unavailable(exc) or DatabaseUnavailable(
                f"database error during intake: {type(exc).__name__}")
            log.warning("heartbeat intake failed: %s: %s", type(down).__name__, down)
            if self._conn is not None:
                with contextlib.suppress(Exception):
                    self._conn.close()
                self._conn = None
            _answer(jobs, [type(down)(str(down)) for _ in jobs])   # one exception each
            return
        self.stored_total += stored
        self.groups_total += 1
        # Counted before the answers go out: a sender that has its answer finds it counted.
        if self.on_commit is not None:
            try:
                self.on_commit(stored, duplicate)
            except Exception as exc:  # noqa: BLE001 - a metric must never stop the intake
                log.warning("intake metrics failed: %s", type(exc).__name__)
        _answer(jobs, answers)

    def _transaction(self, jobs: list[IntakeJob],
                     apply: Callable[[Tx, list[IntakeJob]], Sequence[Answer]]
                     ) -> tuple[Sequence[Answer], int, int]:
        """``apply`` the group in one transaction on the writer's connection and commit it; the
        answers and how many heartbeats were stored and duplicate."""
        tx = Tx(self.db, self._conn)
        tx.begin(write=True)
        try:
            answers = apply(tx, jobs)
            stored = duplicate = 0
            for answer in answers:
                if isinstance(answer, list):
                    for _, _, status in answer:
                        if status == "stored":
                            stored += 1
                        else:
                            duplicate += 1
            if stored:
                tx.execute(_COUNT, (stored,))
            tx.commit()
        except BaseException:
            tx.rollback_quietly()
            raise
        return answers, stored, duplicate


def _answer(jobs: list[IntakeJob], answers: Sequence[Answer]) -> None:
    """Hand each loop its requests' answers in one thread-safe call."""
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Outcome], Answer]]] = {}
    for job, answer in zip(jobs, answers, strict=True):
        by_loop.setdefault(job.loop, []).append((job.waiter, answer))
    for loop, pairs in by_loop.items():
        with contextlib.suppress(RuntimeError):  # that loop is closed: nobody waits any more
            loop.call_soon_threadsafe(_settle, pairs)


def _settle(pairs: list[tuple[asyncio.Future[Outcome], Answer]]) -> None:
    for waiter, answer in pairs:
        if waiter.done():  # the request was cancelled (client gone)
            continue
        if isinstance(answer, BaseException):
            waiter.set_exception(answer)
        else:
            waiter.set_result(answer)


def apply_each_alone(tx: Tx, jobs: list[IntakeJob]) -> list[Answer]:
    """Store each request of the group as :func:`apply_jobs` would alone, inside its own
    savepoint: a request the database refuses is rolled back to its savepoint and answered
    :class:`Refused` (or with its exception, a bug), and the others are stored. The database's
    own trouble (:func:`database.unavailable`) still fails the whole group."""
    answers: list[Answer] = []
    for job in jobs:
        tx.execute("SAVEPOINT intake_job")
        try:
            (outcome,) = apply_jobs(tx, [job])
        except Exception as exc:
            if unavailable(exc) is not None:
                raise
            tx.execute("ROLLBACK TO SAVEPOINT intake_job")
            if _is_refusal(exc):
                log.error("the database refused %d heartbeat(s) of workstation %s: %s",
                          len(job.heartbeats), job.agent_id, _refusal(exc, detail=True))
                answers.append(Refused(_refusal(exc)))
            else:
                log.error("heartbeat intake failed for workstation %s: %s", job.agent_id,
                          type(exc).__name__, exc_info=exc)
                answers.append(exc)
        else:
            answers.append(outcome)
        tx.execute("RELEASE SAVEPOINT intake_job")
    return answers


def _is_refusal(exc: BaseException) -> bool:
    """Whether the database (or its driver) refused a value or a row of the request: a data or
    integrity error, or text it cannot encode."""
    if isinstance(exc, sqlite3.IntegrityError | sqlite3.DataError | OverflowError
                  | UnicodeEncodeError):
        return True
    try:
        import psycopg
    except ImportError:
        return False
    return isinstance(exc, psycopg.DataError | psycopg.IntegrityError)


def _refusal(exc: BaseException, detail: bool = False) -> str:
    """The refusal as the client gets it (the error class, SQLSTATE or SQLite code) or, with
    ``detail``, as the log gets it (with the database's message, on one line)."""
    code = getattr(exc, "sqlstate", None) or getattr(exc, "sqlite_errorname", None)
    named = f"{type(exc).__name__} {code}" if code else type(exc).__name__
    if not detail:
        return named
    # one line, and nothing a terminal reading the log would act on (the message may quote a
    # row: text a workstation wrote)
    message = terminal_text(" ".join(str(exc).split())[:300])
    return f"{named}: {message}" if message else named


def apply_jobs(tx: Tx, jobs: list[IntakeJob]) -> list[Outcome]:
    """Store a group's requests inside its transaction, with the statements of the whole group
    sent together (:meth:`Tx.each`: one round trip on PostgreSQL, not two per heartbeat).

    First every heartbeat of the group is inserted in order (``ON CONFLICT DO NOTHING``); then
    each request, in order, settles the heartbeats that inserted nothing exactly as if it were
    alone (:func:`_settle_job`); then the latest state of every accepted request is written."""
    rows = [(job.agent_id, hb.seq, hb.id, job.received_at, hb.model_dump_json())
            for job in jobs for hb in job.heartbeats]
    inserted = tx.each(_INSERT_RETURNING, rows)
    outcomes: list[Outcome] = []
    k = 0
    for job in jobs:
        n = len(job.heartbeats)
        outcomes.append(_settle_job(tx, job, inserted[k:k + n], rows[k:k + n]))
        k += n
    accepted = [(job, outcome) for job, outcome in zip(jobs, outcomes, strict=True)
                if not isinstance(outcome, SeqConflict)]
    states = [state_params(job) for job, _ in accepted]
    matched = tx.each(_STATE_RETURNING, [params for params, _ in states])
    # No match: an older heartbeat arrived late: still a sign of life. Not a request of
    # duplicates only: a resend (or a replay of a captured request, signed and inside the clock
    # window) must not keep a silent workstation online.
    alive = [(job.received_at, due, job.agent_id)
             for (job, outcome), (_, due), hit in zip(accepted, states, matched, strict=True)
             if not hit and any(status == "stored" for _, _, status in outcome)]
    if alive:
        tx.executemany(_ALIVE, alive)
    return outcomes


def _settle_job(tx: Tx, job: IntakeJob, inserted: list[bool],
                rows: list[tuple[Any, ...]]) -> Outcome:
    """The request's outcome: a heartbeat that inserted nothing is tried again (an earlier
    refused request of this group may have freed its seq), then it is a duplicate (same id, same
    seq stored) or a conflict (the request is refused and its rows deleted again)."""
    results: list[tuple[str, int, str]] = []
    mine: list[int] = []
    for hb, done, row in zip(job.heartbeats, inserted, rows, strict=True):
        if done or tx.execute(_INSERT, row).rowcount == 1:
            mine.append(hb.seq)
            results.append((hb.id, hb.seq, "stored"))
            continue
        found = [(str(i), int(s)) for i, s in tx.all(_FIND, (job.agent_id, hb.id, hb.seq))]
        if (hb.id, hb.seq) not in found:
            for seq in mine:
                tx.execute("DELETE FROM heartbeats WHERE agent_id = ? AND seq = ?",
                           (job.agent_id, seq))
            last = tx.one(_LAST_SEQ, (job.agent_id,))
            stored_seq = next((s for i, s in found if i == hb.id), None)
            return SeqConflict(hb.id, hb.seq, int(last[0]) if last and last[0] is not None
                               else 0, stored_seq)
        results.append((hb.id, hb.seq, "duplicate"))
    return results


def state_params(job: IntakeJob) -> tuple[tuple[Any, ...], float]:
    """Parameters of ``_STATE_RETURNING`` for the request's latest heartbeat, and its deadline.
    ``ready_since`` is the gate's ``since`` when given, else derived: kept while readiness does
    not change, else the heartbeat's measurement time."""
    latest = max(job.heartbeats, key=lambda hb: hb.seq)
    ready = 1 if latest.gate.open else 0
    failing = ",".join(c.id for c in latest.checks if c.status == "fail")
    failing = f",{failing}," if failing else ""
    measured = latest.measured_at.isoformat()
    due = deadline(job.received_at, latest.interval_s)
    since = latest.gate.since.isoformat() if latest.gate.since is not None else None
    return ((job.received_at, due, latest.seq, latest.interval_s, latest.agent_version,
             latest.verdict, ready, failing, measured, since, ready, measured, measured,
             job.agent_id, latest.seq), due)
