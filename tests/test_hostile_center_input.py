"""Issue 15, center input: the attacks that worked, replayed against real centers (``agent-center
serve`` on SQLite and on a throwaway PostgreSQL), each answered as it must be now.

1. A NUL in one workstation's ``agent_version`` failed the whole group commit on PostgreSQL
   (65 % of eight honest workstations' heartbeats got 503, and the poisoned one was retried
   forever); a NUL in a hostname, display name, token note or ``?q=`` gave 500. Now every string
   the center stores is a line or free text of ``core.wire.text``: 422 with a reason.
2. A failure the validation did not foresee (here: a database trigger that refuses one
   workstation's heartbeats, a constraint the center does not know) fails that request alone:
   each request of the group gets its own savepoint, and no honest heartbeat is lost. A
   PostgreSQL database whose encoding cannot hold every text (LATIN1) is refused at start.
3. The agent's courier drops a heartbeat the center refuses for good (4xx), counts it, and
   delivers the rest.
4. CSV injection through agent-written text in ``GET /api/v1/agents.csv``; terminal escapes
   through a hostname or a note in ``agent-center agents`` / ``token list`` / ``gate-key list``.
5. A full disk was "the database cannot be reached" with a bare ``OperationalError`` in the log:
   now 503 ``disk_full`` with the database's own message, on SQLite (a 4 MiB tmpfs) and on
   PostgreSQL (a tablespace on a 4 MiB tmpfs), and the center recovers when room is made.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from agent_kit.center.database import Database
from agent_kit.center.intake import IntakeWriter, Refused
from agent_kit.center.models import Heartbeat
from agent_kit.core.wire import heartbeat as wire
from agent_kit.link.client import CenterClient
from agent_kit.link.state_folder import Enrollment
from agent_kit.loop.courier import Courier
from agent_kit.loop.spool import Spool
from tests.center_seed import Center, Workstation, free_port, heartbeat, run_center
from tests.lab.netns import LabError
from tests.lab.postgres import postgres_cluster

pytestmark = pytest.mark.lab

GOOD = {"vpn.connected": ("pass", None), "audio.headset": ("pass", None),
        "network.jitter": ("pass", 4.0)}
HONEST_WORKSTATIONS = 8
ROUNDS = 12
# Every character a terminal acts on instead of showing (untrusted_text): none may be printed.
TERMINAL_ACTIVE = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    with postgres_cluster() as url:
        yield url


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def center(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[Center]:
    args = ["--db", request.getfixturevalue("pg_url")] if request.param == "postgresql" else []
    with run_center(tmp_path_factory.mktemp(f"hostile-{request.param}"), extra_args=args) as c:
        yield c


@pytest.fixture
def db_url(center: Center, request: pytest.FixtureRequest) -> str:
    """The running center's own database, for what only an older center could have stored."""
    if request.node.callspec.params["center"] == "postgresql":
        return str(request.getfixturevalue("pg_url"))
    return f"sqlite:///{center.data_dir / 'center.db'}"


def sql(url: str, *statements: str | tuple[str, Sequence[Any]]) -> None:
    """Run statements on the center's database (SQLite: with the center's own write lock)."""
    database = Database(url, pool_size=1)
    try:
        with database.transaction(write=True) as tx:
            for statement in statements:
                text, params = (statement, ()) if isinstance(statement, str) else statement
                tx.execute(text, params)
    finally:
        database.close()


def now() -> datetime:
    return datetime.now(UTC)


def good(seq: int, **change: Any) -> dict[str, Any]:
    """An honest heartbeat (the agent's builder), with ``change`` made after building: what a
    hostile sender, not the agent, would send."""
    return {**heartbeat(seq, now(), GOOD), **change}


def send(ws: Workstation, *heartbeats: dict[str, Any]) -> httpx.Response:
    return ws.request("POST", wire.PATH, {"heartbeats": list(heartbeats)})


def stored_seqs(center: Center, ws: Workstation) -> list[int]:
    with center.admin() as admin:
        answer = admin.get(f"/api/v1/agents/{ws.agent_id}/heartbeats")
    assert answer.status_code == 200, answer.text
    return [h["seq"] for h in answer.json()["heartbeats"]]


def refused(response: httpx.Response, status: int, error: str) -> dict[str, Any]:
    """The answer is that status and error code, JSON with a reason; its body."""
    assert response.status_code == status, (response.status_code, response.text)
    body: dict[str, Any] = response.json()
    assert body["error"] == error and body["detail"], body
    return body


def text_refused(response: httpx.Response, *loc: str | int) -> None:
    """422 for a text field at ``loc``, saying in words that control characters are refused."""
    body = refused(response, 422, "validation_error")
    (problem,) = [d for d in body["detail"] if tuple(d["loc"][-len(loc):]) == loc]
    assert "control characters" in problem["msg"], body


# -- 1: NUL and other control characters ---------------------------------------------------------
def test_a_nul_sender_knocks_out_no_honest_heartbeat_and_is_refused_with_a_reason(center):
    """The attack: one workstation sends heartbeats whose agent_version holds a NUL, as fast as
    it can, while eight honest workstations report; every honest heartbeat must be stored."""
    token = center.create_token(uses=HONEST_WORKSTATIONS + 1)
    honest = [center.enroll(token, f"honest-{i}") for i in range(HONEST_WORKSTATIONS)]
    poisoner = center.enroll(token, "poisoner")
    answers: dict[str, list[int]] = {}
    poisoned: list[httpx.Response] = []
    done = threading.Event()

    def poison() -> None:
        seq = 1
        while not done.is_set() or seq <= 3:
            poisoned.append(send(poisoner, good(seq, agent_version="1.0\x00")))
            seq += 1

    def report(ws: Workstation) -> None:
        answers[ws.agent_id] = [send(ws, good(seq)).status_code for seq in range(1, ROUNDS + 1)]

    threads = [threading.Thread(target=poison)] + [
        threading.Thread(target=report, args=(ws,)) for ws in honest]
    for thread in threads[1:]:
        thread.start()
    threads[0].start()
    for thread in threads[1:]:
        thread.join(timeout=120)
    done.set()
    threads[0].join(timeout=60)
    assert all(codes == [200] * ROUNDS for codes in answers.values()), answers
    assert len(answers) == HONEST_WORKSTATIONS
    for ws in honest:
        assert stored_seqs(center, ws) == list(range(1, ROUNDS + 1))
    assert poisoned and stored_seqs(center, poisoner) == []
    for response in poisoned:
        text_refused(response, "heartbeats", 0, "agent_version")


def test_every_stored_string_refuses_control_characters_and_keeps_any_other_text(center):
    with center.admin() as admin:
        # token notes
        for note in ("a\x00b", "east\x1b[2J", "tab\there", "nel\x85", "del\x7f"):
            text_refused(admin.post("/api/v1/tokens", json={"note": note}), "note")
        made = admin.post("/api/v1/tokens", json={"note": "Östra kontoret 東京 😀", "uses": 9})
        assert made.status_code == 201, made.text
        notes = {t["token_id"]: t["note"] for t in admin.get("/api/v1/tokens").json()["tokens"]}
        assert notes[made.json()["token_id"]] == "Östra kontoret 東京 😀"
        token = made.json()["token"]
        # enrollment: hostname, display name, token
        enroll = f"{center.url}/api/v1/enroll"
        for body, field in (({"token": token, "hostname": "pc\x00"}, "hostname"),
                            ({"token": token, "hostname": "pc\u009b2J"}, "hostname"),
                            ({"token": token, "hostname": "pc\r\n"}, "hostname"),
                            ({"token": token, "hostname": "pc", "display_name": "Ann\x00"},
                             "display_name"),
                            ({"token": token, "hostname": "pc", "display_name": "Ann\n"},
                             "display_name"),
                            ({"token": "enr_x\x00", "hostname": "pc"}, "token")):
            text_refused(httpx.post(enroll, json=body), field)
        ws = center.enroll(token, "pc-åäö-日本", display_name="José Núñez 😀")
        detail = admin.get(f"/api/v1/agents/{ws.agent_id}").json()
        assert (detail["hostname"], detail["display_name"]) == ("pc-åäö-日本", "José Núñez 😀")
        # search and export
        for q in ("\x00", "x\x1b", "\u0085"):
            text_refused(admin.get("/api/v1/agents", params={"q": q}), "q")
            text_refused(admin.get("/api/v1/agents.csv", params={"q": q}), "q")
        found = admin.get("/api/v1/agents", params={"q": "日本"}).json()["agents"]
        assert ws.agent_id in {a["agent_id"] for a in found}
        # an encoded lone surrogate in the query is not text: read as U+FFFD, found nowhere
        assert admin.get("/api/v1/agents?q=%ED%A0%80").json()["total"] == 0
        # the dashboard login
        text_refused(httpx.post(f"{center.url}/api/v1/session", json={"token": "adm\x00"}),
                     "token")
        # ids in paths that no center makes: unknown, never looked up
        for method, path in (("GET", "/api/v1/agents/%00"),
                             ("GET", "/api/v1/agents/%00/heartbeats"),
                             ("GET", "/api/v1/agents/%00/reports"),
                             ("GET", f"/api/v1/agents/{ws.agent_id}/reports/%00"),
                             ("GET", "/api/v1/agents/%ED%A0%80"),
                             ("POST", "/api/v1/agents/%00/retire"),
                             ("DELETE", "/api/v1/tokens/%00")):
            refused(admin.request(method, path), 404, "not_found")
        gate = admin.get("/api/v1/gate/%00")
        assert gate.status_code == 200 and gate.json()["allowed"] is False
    # the heartbeat's strings: units, versions and reasons are lines; messages are free text
    check = good(1)["checks"][0]
    for change, loc in (({"checks": [{**check, "message": "a\x00b"}]}, ("checks", 0, "message")),
                        ({"checks": [{**check, "message": "\x1b[31mred"}]},
                         ("checks", 0, "message")),
                        ({"checks": [{**check, "message": "csi\x9b2J"}]},
                         ("checks", 0, "message")),
                        ({"checks": [{**check, "unit": "ms\n"}]}, ("checks", 0, "unit")),
                        ({"gate": {"open": True, "reasons": ["r\x00"]}}, ("gate", "reasons", 0)),
                        ({"agent_version": "1\t"}, ("agent_version",))):
        text_refused(send(ws, good(1, **change)), "heartbeats", 0, *loc)
    # a lone surrogate cannot be sent at all: the JSON is refused before any field is read
    raw = json.dumps({"heartbeats": [good(1, agent_version="SURROGATE")]})
    surrogate = ws.request("POST", wire.PATH, content=raw.replace("SURROGATE", "\\ud800").encode())
    refused(surrogate, 400, "invalid_json")
    text = "日本語の説明 😀 ÅÄÖ\ttab\r\nnew line"
    sent = good(1, checks=[{**check, "message": text}], agent_version="1.0+ü")
    assert send(ws, sent).status_code == 200
    with center.admin() as admin:
        (back,) = admin.get(f"/api/v1/agents/{ws.agent_id}/heartbeats").json()["heartbeats"]
        assert back["checks"][0]["message"] == text and back["agent_version"] == "1.0+ü"
        assert admin.get(f"/api/v1/agents/{ws.agent_id}").json()["agent_version"] == "1.0+ü"
    assert httpx.get(f"{center.url}/healthz").status_code == 200


# -- 2: one refused request in a group fails alone ---------------------------------------------
POISON = "poison-7f3a"
TRIGGERS = {
    # A constraint the center does not know: the database refuses heartbeats whose body holds
    # POISON. Each heartbeat passes validation; only the database says no.
    "sqlite": ("CREATE TRIGGER hostile_refuse BEFORE INSERT ON heartbeats "
               f"WHEN instr(NEW.body, '{POISON}') > 0 "
               "BEGIN SELECT RAISE(ABORT, 'refused by the hostile test trigger'); END",),
    "postgresql": (
        "CREATE OR REPLACE FUNCTION hostile_refuse() RETURNS trigger LANGUAGE plpgsql AS $$ "
        f"BEGIN IF strpos(NEW.body, '{POISON}') > 0 THEN RAISE EXCEPTION "
        "'refused by the hostile test trigger' USING ERRCODE = 'check_violation'; END IF; "
        "RETURN NEW; END $$",
        "CREATE TRIGGER hostile_refuse BEFORE INSERT ON heartbeats FOR EACH ROW "
        "EXECUTE FUNCTION hostile_refuse()"),
}
# How the refusal is named to the client: SQLite's class and code, PostgreSQL's SQLSTATE.
DATABASE_REFUSAL = re.compile(r"IntegrityError SQLITE_CONSTRAINT_TRIGGER|CheckViolation 23514")
UNTRIGGER = {"sqlite": ("DROP TRIGGER hostile_refuse",),
             "postgresql": ("DROP TRIGGER hostile_refuse ON heartbeats",
                            "DROP FUNCTION hostile_refuse()")}


@contextlib.contextmanager
def refusing_trigger(db_url: str) -> Iterator[None]:
    dialect = "postgresql" if db_url.startswith("postgresql") else "sqlite"
    sql(db_url, *TRIGGERS[dialect])
    try:
        yield
    finally:
        sql(db_url, *UNTRIGGER[dialect])


def poisoned(seq: int) -> dict[str, Any]:
    check = good(seq)["checks"][0]
    return good(seq, checks=[{**check, "message": f"measured ({POISON})"}])


def test_a_request_the_database_refuses_fails_alone_in_its_group(center, db_url):
    token = center.create_token(uses=HONEST_WORKSTATIONS + 1)
    honest = [center.enroll(token, f"grouped-{i}") for i in range(HONEST_WORKSTATIONS)]
    poisoner = center.enroll(token, "grouped-poisoner")
    answers: dict[str, list[int]] = {}
    refusals: list[httpx.Response] = []
    done = threading.Event()

    def poison() -> None:
        seq = 1
        while not done.is_set() or seq <= 3:
            refusals.append(send(poisoner, poisoned(seq)))
            seq += 1

    def report(ws: Workstation) -> None:
        answers[ws.agent_id] = [send(ws, good(seq)).status_code for seq in range(1, ROUNDS + 1)]

    log = center.data_dir / "center.log"
    before = log.read_text(errors="replace").count("storing each alone")
    with refusing_trigger(db_url):
        threads = [threading.Thread(target=report, args=(ws,)) for ws in honest]
        poisoning = threading.Thread(target=poison)
        for thread in threads:
            thread.start()
        poisoning.start()
        for thread in threads:
            thread.join(timeout=120)
        done.set()
        poisoning.join(timeout=60)
        # one request is one answer: a batch with an honest and a refused heartbeat is refused
        # whole, nothing of it stored (the agent's courier then sends each alone: test 3)
        mixed = send(poisoner, good(10_000), poisoned(10_001))
    assert all(codes == [200] * ROUNDS for codes in answers.values()), answers
    for ws in honest:
        assert stored_seqs(center, ws) == list(range(1, ROUNDS + 1))
    assert refusals and stored_seqs(center, poisoner) == []
    for response in refusals + [mixed]:
        body = refused(response, 422, "not_storable")
        assert DATABASE_REFUSAL.search(body["detail"]), body
        assert "nothing of it was stored" in body["detail"]
    text = log.read_text(errors="replace")
    assert text.count("storing each alone") > before
    assert "refused by the hostile test trigger" in text and "Traceback" not in text
    # the trigger is gone: the same heartbeat is stored now
    assert send(poisoner, poisoned(1)).status_code == 200


def test_one_group_of_three_requests_stores_the_two_the_database_accepts(center, db_url):
    """Deterministically one group: three requests wait on the queue of an intake writer (the
    center's own class, on the center's database) before its thread starts, so it takes them
    together; the middle one is refused by the database, the other two are stored."""
    token = center.create_token(uses=3)
    first, middle, last = (center.enroll(token, f"trio-{i}") for i in range(3))
    bodies = [good(1), poisoned(1), good(1)]

    async def one_group(writer: IntakeWriter) -> list[object]:
        waiting = [asyncio.create_task(writer.store(
            ws.agent_id, [Heartbeat.model_validate_json(json.dumps(body))], time.time()))
            for ws, body in zip((first, middle, last), bodies, strict=True)]
        await asyncio.sleep(0)          # each task has queued its job and waits for the answer
        writer.start()
        return list(await asyncio.gather(*waiting, return_exceptions=True))

    database = Database(db_url)
    writer = IntakeWriter(database)
    try:
        with refusing_trigger(db_url):
            answers = asyncio.run(one_group(writer))
    finally:
        writer.stop()
        database.close()
    assert writer.groups_total == 1 and writer.stored_total == 2
    assert [type(a) for a in answers] == [list, Refused, list], answers
    assert answers[0] == [(bodies[0]["id"], 1, "stored")]
    assert answers[2] == [(bodies[2]["id"], 1, "stored")]
    assert DATABASE_REFUSAL.search(answers[1].reason)   # type: ignore[union-attr]
    assert (stored_seqs(center, first), stored_seqs(center, middle),
            stored_seqs(center, last)) == ([1], [], [1])
    with center.admin() as admin:          # the accepted requests' latest state is written
        assert admin.get(f"/api/v1/agents/{last.agent_id}").json()["last_seq"] == 1
        assert admin.get(f"/api/v1/agents/{middle.agent_id}").json()["last_seq"] is None


def test_a_postgresql_database_that_cannot_hold_every_text_is_refused_at_start(pg_url, tmp_path):
    """A LATIN1 database passes every check of the center's validation and then refuses a
    hostname in Japanese, one request at a time: the center refuses it at start instead."""
    import psycopg

    base, _, _ = pg_url.rpartition("/")
    with psycopg.connect(pg_url, autocommit=True) as admin:
        admin.execute("CREATE DATABASE hostile_latin1 ENCODING 'LATIN1' LC_COLLATE 'C' "
                      "LC_CTYPE 'C' TEMPLATE template0")
    try:
        where = ["--db", f"{base}/hostile_latin1", "--data-dir", str(tmp_path)]
        for args in (("serve", "--port", str(free_port()), "--udp-port", "0"), ("agents",)):
            started = agent_center(*args, *where)
            assert started.returncode == 2, started
            assert started.stderr.strip().splitlines() == [
                "agent-center: database unavailable: the PostgreSQL database's encoding is "
                "LATIN1; the center needs UTF8 (CREATE DATABASE ... ENCODING 'UTF8' TEMPLATE "
                "template0)"], started.stderr
    finally:
        with psycopg.connect(pg_url, autocommit=True) as admin:
            admin.execute("DROP DATABASE IF EXISTS hostile_latin1")


# -- 3: the agent drops a refused heartbeat, counts it, delivers the rest ----------------------
def test_the_agents_courier_drops_and_counts_a_refused_heartbeat_and_delivers_the_rest(
        center, db_url, tmp_path):
    ws = center.enroll(center.create_token(), "courier-pc")
    enrollment = Enrollment(center_url=center.url, agent_id=ws.agent_id, secret=ws.secret)
    content = {k: v for k, v in good(1).items() if k not in ("id", "seq")}
    with Spool(tmp_path / "spool.db", ws.agent_id) as spool, CenterClient(enrollment) as client:
        spool.add(content)                                                # seq 1
        spool.add({**content, "agent_version": "1.0\x00"})                # seq 2: 422 validation
        spool.add({**content, "checks": poisoned(3)["checks"]})           # seq 3: 422 database
        spool.add(content)                                                # seq 4
        spool.add(content)                                                # seq 5
        courier = Courier(spool, client)
        with refusing_trigger(db_url):
            result = courier.deliver()
            assert (result.delivered, result.rejected, result.error) == (3, 2, None), result
            assert spool.stats().pending == 0 and spool.stats().rejected_total == 2
            again = courier.deliver()      # nothing left to send: the refused are not retried
        assert (again.delivered, again.rejected, again.error) == (0, 0, None), again
    assert stored_seqs(center, ws) == [1, 4, 5]


# -- 4: CSV injection and terminal escapes ------------------------------------------------------
FORMULAS = ("=", "+", "-", "@", "\t", "\r", "\n")


def test_the_csv_export_never_has_a_cell_that_starts_a_formula(center, db_url):
    token = center.create_token(uses=10)
    tag = f"csv{int(time.time() * 1000) % 10**8}"
    # text the center accepts today (no control character), all of it formulas
    made = [center.enroll(token, f"=HYPERLINK(\"http://e.vil/{tag}\",\"x\")",
                          display_name="@SUM(A1:A9)"),
            center.enroll(token, f"+{tag}+1", display_name="-2+3"),
            center.enroll(token, f"{tag}-plain", display_name="Ann")]
    for i, ws in enumerate(made):
        version = ('=HYPERLINK("http://e.vil","x")', "+1", "1.0")[i]
        assert send(ws, good(1, agent_version=version)).status_code == 200
    # rows an older center stored, before it refused control characters
    old = center.enroll(token, f"{tag}-old")
    assert send(old, good(1)).status_code == 200
    sql(db_url, ("UPDATE agents SET hostname = ?, display_name = ?, agent_version = ? "
                 "WHERE agent_id = ?", (f"\t=1+1 {tag}", "\r=1+1", "\n-1", old.agent_id)))
    with center.admin() as admin:
        exported = admin.get("/api/v1/agents.csv", params={"q": tag})
    assert exported.status_code == 200
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert len(rows) == 4
    for row in rows:
        for column, cell in row.items():
            assert not cell.startswith(FORMULAS), (column, cell)
    by_id = {r["agent_id"]: r for r in rows}
    assert by_id[made[0].agent_id]["hostname"] == f"'=HYPERLINK(\"http://e.vil/{tag}\",\"x\")"
    assert by_id[made[0].agent_id]["display_name"] == "'@SUM(A1:A9)"
    assert by_id[made[0].agent_id]["agent_version"] == "'=HYPERLINK(\"http://e.vil\",\"x\")"
    assert (by_id[made[1].agent_id]["display_name"], by_id[made[1].agent_id]["agent_version"]) \
        == ("'-2+3", "'+1")
    assert by_id[made[2].agent_id]["hostname"] == f"{tag}-plain"       # plain text: as it is
    assert (by_id[old.agent_id]["hostname"], by_id[old.agent_id]["display_name"],
            by_id[old.agent_id]["agent_version"]) == (f"'\t=1+1 {tag}", "'\r=1+1", "'\n-1")


def agent_center(*args: str) -> subprocess.CompletedProcess[str]:
    """``agent-center ARGS`` (this tree's)."""
    return subprocess.run([sys.executable, "-m", "agent_kit.center.cli", *args],
                          capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])})


def center_cli(center: Center, db_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    """``agent-center ARGS`` on the running center's database."""
    where = ["--db", db_url] if db_url.startswith("postgresql") else \
        ["--data-dir", str(center.data_dir)]
    return agent_center(*args, *where)


def test_center_cli_output_shows_escape_sequences_instead_of_running_them(center, db_url):
    evil = "evil\x1b]0;owned\x07\x1b[2J\x9b31m\u202eexe.txt"
    ws = center.enroll(center.create_token(), "cli-pc")
    assert send(ws, good(1)).status_code == 200
    made = json.loads(center_cli(center, db_url, "token", "create", "--json").stdout)
    key = center_cli(center, db_url, "gate-key", "create", "--note", "plain")
    assert key.returncode == 0, key.stderr
    key_id = re.search(r"\(id ([0-9a-f]+)\)", key.stderr).group(1)   # type: ignore[union-attr]
    # what an older center let in: the hostname from enrollment, the notes from the API or CLI
    sql(db_url, ("UPDATE agents SET hostname = ? WHERE agent_id = ?", (evil, ws.agent_id)),
        ("UPDATE enrollment_tokens SET note = ? WHERE token_id = ?", (evil, made["token_id"])),
        ("UPDATE gate_keys SET note = ? WHERE key_id = ?", (evil, key_id)))
    shown = "evil\\x1b]0;owned\\x07\\x1b[2J\\x9b31m\\u202eexe.txt"
    for args in (("agents",), ("token", "list"), ("gate-key", "list")):
        out = center_cli(center, db_url, *args)
        assert out.returncode == 0, out.stderr
        assert not TERMINAL_ACTIVE.search(out.stdout + out.stderr), (args, out.stdout)
        assert shown in out.stdout, (args, out.stdout)
    listed = json.loads(center_cli(center, db_url, "agents", "--json").stdout)
    assert evil in {a["hostname"] for a in listed["agents"]}     # JSON: exactly as stored
    # and the CLI refuses such a note in one line, as the API does
    for args in (("token", "create"), ("gate-key", "create")):
        refused_note = center_cli(center, db_url, *args, "--note", "east\x1b[2J")
        assert refused_note.returncode == 2 and refused_note.stdout == ""
        assert "--note has the character U+001B" in refused_note.stderr
        assert len(refused_note.stderr.strip().splitlines()) == 1, refused_note.stderr


# -- 5: a full disk ------------------------------------------------------------------------------
@contextlib.contextmanager
def tiny_filesystem(size: str = "4m", owner: str | None = None) -> Iterator[Path]:
    """A tmpfs of ``size`` (root); unmounted and removed afterwards."""
    where = Path(tempfile.mkdtemp(prefix="ak-full-"))
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs",
                              str(where)], capture_output=True, text=True)
    if mounted.returncode != 0:
        where.rmdir()
        raise LabError(f"cannot mount a tmpfs (root needed): {mounted.stderr.strip()}")
    try:
        if owner:
            shutil.chown(where, owner)
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], capture_output=True)
        with contextlib.suppress(OSError):
            where.rmdir()


def fill(folder: Path) -> Path:
    """Write a file into ``folder`` until its filesystem has no byte left; the file."""
    filler = folder / "filler"
    chunk = b"\xff" * 65536
    with filler.open("wb", buffering=0) as out:
        for size in (65536, 4096, 512, 1):
            with contextlib.suppress(OSError):
                while True:
                    out.write(chunk[:size])
    return filler


def first_refusal(attempt: Callable[[int], httpx.Response],
                  first: int) -> tuple[int, httpx.Response]:
    """``attempt(first)``, ``attempt(first + 1)``... until one is not a success (a write that
    needs room the disk no longer has: on PostgreSQL, one that needs a new page); its number
    and the answer."""
    for i in range(first, first + 400):
        response = attempt(i)
        if not response.is_success:
            return i, response
    raise AssertionError("400 writes were stored on a full disk")


def first_cli_refusal(where: Sequence[str]) -> subprocess.CompletedProcess[str]:
    """``agent-center token create`` until it fails (it writes a row)."""
    for _ in range(400):
        made = agent_center("token", "create", *where)
        if made.returncode != 0:
            return made
    raise AssertionError("400 tokens were made on a full disk")


def assert_disk_full(center: Center, ws: Workstation, disk: Path, log: Path, message: str,
                     where: Sequence[str]) -> None:
    """Fill ``disk`` (where the database writes): the next write is 503 ``disk_full``, reads
    still answer, ``agent-center`` (on the database ``where`` names) says so in one line, the
    log has the database's ``message`` on one line and no traceback; with room again, the
    center stores without a restart."""
    assert send(ws, good(1)).status_code == 200
    filler = fill(disk)
    seq, answer = first_refusal(lambda seq: send(ws, good(seq)), 2)
    body = refused(answer, 503, "disk_full")
    assert "disk full" in body["detail"] and answer.headers["Retry-After"]
    with center.admin() as admin:     # any other write: new enrollment tokens
        _, answer = first_refusal(lambda _: admin.post("/api/v1/tokens", json={}), 0)
        refused(answer, 503, "disk_full")
        assert admin.get(f"/api/v1/agents/{ws.agent_id}").json()["last_seq"] == seq - 1
    cli = first_cli_refusal(where)
    assert cli.returncode == 1 and cli.stderr.startswith("agent-center: database disk full: ")
    assert len(cli.stderr.strip().splitlines()) == 1, cli.stderr
    text = log.read_text(errors="replace")
    assert [line for line in text.splitlines() if message in line], text[-3000:]
    assert "Traceback" not in text
    filler.unlink()                   # room again: the center stores without a restart
    assert send(ws, good(seq)).status_code == 200
    assert seq in stored_seqs(center, ws)


def test_a_full_disk_is_a_disk_full_503_on_sqlite_and_the_center_recovers(tmp_path):
    log = tmp_path / "center.log"
    with tiny_filesystem() as small, run_center(small / "data", log_path=log) as center:
        ws = center.enroll(center.create_token(), "full-pc")
        assert_disk_full(center, ws, small, log, "database or disk is full",
                         ["--data-dir", str(center.data_dir)])


def test_a_full_disk_is_a_disk_full_503_on_postgresql_and_the_center_recovers(pg_url, tmp_path):
    """The center's tables in a tablespace on a 4 MiB tmpfs (the WAL stays on the cluster's
    disk): inserting a heartbeat that needs a new page fails with SQLSTATE 53100."""
    import psycopg

    base, _, _ = pg_url.rpartition("/")
    log = tmp_path / "center.log"
    with tiny_filesystem(owner="postgres") as small:
        with psycopg.connect(pg_url, autocommit=True) as admin:
            admin.execute(f"CREATE TABLESPACE hostile_small LOCATION '{small}'")
            admin.execute("CREATE DATABASE hostile_full")
            admin.execute("ALTER DATABASE hostile_full SET default_tablespace = hostile_small")
        try:
            with run_center(tmp_path / "data", log_path=log,
                            extra_args=["--db", f"{base}/hostile_full"]) as center:
                ws = center.enroll(center.create_token(), "full-pg")
                assert_disk_full(center, ws, small, log, "No space left on device",
                                 ["--db", f"{base}/hostile_full"])
        finally:
            with psycopg.connect(pg_url, autocommit=True) as admin:
                admin.execute("DROP DATABASE IF EXISTS hostile_full")
                admin.execute("DROP TABLESPACE IF EXISTS hostile_small")
