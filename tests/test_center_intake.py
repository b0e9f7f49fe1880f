"""Group commit of heartbeats (agent_kit/center/intake.py) on real SQLite and PostgreSQL: a group
of requests gets the outcomes each request would get alone, in order (stored, duplicate,
refused with nothing of it stored, a seq freed by an earlier refused request of the same group),
the latest state follows the newest seq, and the writer thread answers each request's loop."""

from __future__ import annotations

import asyncio
import json
import threading
import uuid
from datetime import UTC, datetime

import pytest

from agent_kit.center.database import Database
from agent_kit.center.intake import IntakeJob, IntakeWriter, SeqConflict, apply_jobs
from agent_kit.center.models import Heartbeat
from agent_kit.center.store import Store
from tests.lab.postgres import postgres_cluster

pytestmark = pytest.mark.lab


@pytest.fixture(scope="module")
def pg_url():
    with postgres_cluster() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request, tmp_path):
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'center.db'}"
    else:
        url = request.getfixturevalue("pg_url")
    database = Database(url)
    Store(database).setup()
    with database.transaction(write=True) as tx:
        tx.execute("DELETE FROM heartbeats")
        tx.execute("DELETE FROM agents")
        tx.execute("UPDATE counters SET value = 0")
        for agent in ("ws-a", "ws-b"):
            tx.execute("INSERT INTO agents (agent_id, hostname, nonce, enrolled_at) "
                       "VALUES (?, ?, ?, ?)", (agent, agent, "00", 1.0))
    yield database
    database.close()


def hb(seq: int, hid: str | None = None, gate_open: bool = True,
       since: str | None = None) -> Heartbeat:
    gate: dict[str, object] = {"open": gate_open, "reasons": []}
    if since:
        gate["since"] = since
    return Heartbeat.model_validate_json(json.dumps({
        "id": hid or str(uuid.uuid4()), "seq": seq, "interval_s": 15, "agent_version": "1",
        "measured_at": datetime(2026, 11, 23, 12, 0, seq % 60, tzinfo=UTC).isoformat(),
        "verdict": "pass", "gate": gate, "checks": []}))


def job(agent: str, *heartbeats: Heartbeat, at: float = 1000.0) -> IntakeJob:
    return IntakeJob(agent, list(heartbeats), at, None, None)  # type: ignore[arg-type]


def run_group(db: Database, jobs: list[IntakeJob]) -> list:
    with db.transaction(write=True) as tx:
        return apply_jobs(tx, jobs)


def stored(db: Database, agent: str) -> dict[int, str]:
    with db.transaction() as tx:
        return {int(s): str(i) for s, i in tx.all(
            "SELECT seq, id FROM heartbeats WHERE agent_id = ?", (agent,))}


def agent_state(db: Database, agent: str) -> tuple:
    with db.transaction() as tx:
        row = tx.one("SELECT last_seq, last_seen, ready, ready_since FROM agents "
                     "WHERE agent_id = ?", (agent,))
    assert row is not None
    return tuple(row)


def test_one_group_gives_each_request_its_own_outcome(db):
    first = hb(1)
    out = run_group(db, [job("ws-a", first), job("ws-a", first),        # resend in the same group
                         job("ws-a", hb(1)),                             # seq 1 under another id
                         job("ws-b", hb(1), hb(2))])
    assert out[0] == [(first.id, 1, "stored")]
    assert out[1] == [(first.id, 1, "duplicate")]
    assert isinstance(out[2], SeqConflict) and out[2].seq == 1
    assert [s for _, _, s in out[3]] == ["stored", "stored"]
    assert stored(db, "ws-a") == {1: first.id}
    assert sorted(stored(db, "ws-b")) == [1, 2]
    assert agent_state(db, "ws-b")[0] == 2


def test_a_refused_request_stores_nothing_and_frees_its_seq_for_a_later_one(db):
    kept = hb(1)
    run_group(db, [job("ws-a", kept)])
    refused, later = hb(5, gate_open=False), hb(5)
    out = run_group(db, [job("ws-a", refused, hb(1)),   # seq 1 is kept's: refused, 5 deleted
                         job("ws-a", later)])           # then seq 5 is free again
    assert isinstance(out[0], SeqConflict) and out[0].seq == 1
    assert out[1] == [(later.id, 5, "stored")]
    assert stored(db, "ws-a") == {1: kept.id, 5: later.id}
    assert agent_state(db, "ws-a")[0] == 5


def test_latest_state_follows_the_newest_seq_and_a_late_one_is_a_sign_of_life(db):
    run_group(db, [job("ws-a", hb(3, gate_open=True), at=1000.0)])
    assert agent_state(db, "ws-a")[:3] == (3, 1000.0, 1)
    since = agent_state(db, "ws-a")[3]
    run_group(db, [job("ws-a", hb(2, gate_open=False), at=1010.0)])   # late: state stays
    assert agent_state(db, "ws-a") == (3, 1010.0, 1, since)
    run_group(db, [job("ws-a", hb(4, gate_open=False,
                                  since="2026-11-23T11:00:00+00:00"), at=1020.0)])
    assert agent_state(db, "ws-a") == (4, 1020.0, 0, "2026-11-23T11:00:00+00:00")


def test_the_writer_thread_answers_requests_from_several_loops(db):
    writer = IntakeWriter(db)
    writer.start()
    results: list = []

    def client(agent: str, first: int) -> None:
        async def send() -> list:
            return list(await asyncio.gather(*(writer.store(agent, [hb(s)], 1000.0)
                                               for s in range(first, first + 40))))
        results.extend(asyncio.run(send()))

    try:
        threads = [threading.Thread(target=client, args=(a, 1)) for a in ("ws-a", "ws-b")]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
    finally:
        writer.stop()
    assert len(results) == 80 and all(r[0][2] == "stored" for r in results)
    assert len(stored(db, "ws-a")) == 40 and len(stored(db, "ws-b")) == 40
    with db.transaction() as tx:
        assert tx.one("SELECT value FROM counters WHERE name = 'heartbeats_stored'") == (80,)
    assert writer.stored_total == 80
