"""The audit log: who did what and when, against a real ``agent-center serve`` on SQLite and on
PostgreSQL. IT and a supervisor do things through the API, the dashboard sign-in and the CLI;
the log then holds one event per change with the right actor, target and source address, never
a secret; it filters by time, actor and action, pages, exports as CSV, and refuses bad filters
with a 422 that says why."""

from __future__ import annotations

import csv
import getpass
import io
import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from tests.center_seed import run_center
from tests.lab.postgres import postgres_cluster

pytestmark = pytest.mark.lab

PG_SECRETS = {"AGENT_CENTER_SECRETS_KEY": "4d" * 32}


DB_ARGS: dict[str, list[str]] = {}   # the module's center: where its CLI finds the database


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def center(request, tmp_path_factory):
    extra = ["--udp-port", "0"]
    if request.param == "postgresql":
        with postgres_cluster() as url, run_center(
                tmp_path_factory.mktemp("audit-pg"), extra_args=[*extra, "--db", url],
                env=PG_SECRETS) as c:
            DB_ARGS[c.url] = ["--db", url]
            yield c
    else:
        with run_center(tmp_path_factory.mktemp("audit-sqlite"), extra_args=extra) as c:
            DB_ARGS[c.url] = []
            yield c


def _cli(center, *args: str) -> subprocess.CompletedProcess[str]:
    run = subprocess.run([sys.executable, "-m", "agent_kit.center.cli", *args, "--data-dir",
                          str(center.data_dir), *DB_ARGS[center.url]], capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    return run


def _events(center, **params) -> dict:
    with center.admin() as admin:
        page = admin.get("/api/v1/audit", params={"limit": 1000, **params})
    assert page.status_code == 200, page.text
    return page.json()


def test_who_did_what_is_in_the_log_without_a_secret(center):
    started = datetime.now(UTC) - timedelta(seconds=1)
    secrets: list[str] = [center.admin_token]
    with center.admin() as admin:
        made = admin.post("/api/v1/users", json={"name": "sue", "role": "supervisor",
                                                  "teams": ["north"]}).json()
        sue_key = made["key"]
        secrets.append(sue_key)
        token = admin.post("/api/v1/tokens", json={"team": "north", "uses": 3,
                                                    "note": "=HYPERLINK(\"x\")"}).json()
        secrets.append(token["token"])
    ws = center.enroll(token["token"], "north-1")
    ws2 = center.enroll(token["token"], "north-2")
    sue = httpx.Client(base_url=center.url, timeout=30.0,
                       headers={"Authorization": f"Bearer {sue_key}"})
    with sue:
        assert sue.post(f"/api/v1/agents/{ws.agent_id}/retire").status_code == 200
        assert sue.post(f"/api/v1/agents/{ws.agent_id}/retire").status_code == 200  # no-op
        assert sue.delete(f"/api/v1/tokens/{token['token_id']}").status_code == 204
    with center.admin() as admin:
        assert admin.patch(f"/api/v1/agents/{ws2.agent_id}", json={"team": "south"}
                           ).status_code == 200
        assert admin.patch("/api/v1/users/sue", json={"teams": ["north", "south"]}
                           ).status_code == 200
        new_key = admin.post("/api/v1/users/sue/key").json()["key"]
        secrets.append(new_key)
    with httpx.Client(base_url=center.url, timeout=30.0) as browser:
        wrong = "usr_this-is-what-a-guesser-typed"
        assert browser.post("/api/v1/session", json={"token": wrong}).status_code == 401
        secrets.append(wrong)
        assert browser.post("/api/v1/session", json={"token": new_key}).status_code == 204
        assert browser.delete("/api/v1/session").status_code == 204
    gate = _cli(center, "gate-key", "create", "--note", "ACD")
    secrets.append(gate.stdout.strip())
    key_id = gate.stderr.split("id ")[1].rstrip(")\n")
    _cli(center, "gate-key", "revoke", key_id)
    with center.admin() as admin:
        assert admin.delete("/api/v1/users/sue").status_code == 204

    log = _events(center, since=started.isoformat())
    events = list(reversed(log["events"]))            # oldest first
    assert log["total"] == len(events)
    got = [(e["actor"], e["action"], e["target"]) for e in events]
    cli_actor = f"cli:{getpass.getuser()}"
    assert got == [
        ("admin-token", "user.create", "sue"),
        ("admin-token", "token.create", token["token_id"]),
        ("user:sue", "agent.retire", ws.agent_id),
        ("user:sue", "token.revoke", token["token_id"]),
        ("admin-token", "agent.move", ws2.agent_id),
        ("admin-token", "user.change", "sue"),
        ("admin-token", "user.new_key", "sue"),
        ("anonymous", "login_failed", None),
        ("user:sue", "login", "user:sue"),
        ("user:sue", "logout", None),
        (cli_actor, "gate_key.create", key_id),
        (cli_actor, "gate_key.revoke", key_id),
        ("admin-token", "user.delete", "sue"),
    ], got
    by_action = {e["action"]: e for e in events}
    assert by_action["agent.move"]["detail"] == {"from": "north", "to": "south"}
    assert by_action["user.change"]["detail"]["teams"] == [["north"], ["north", "south"]]
    assert by_action["token.create"]["detail"]["team"] == "north"
    assert by_action["agent.retire"]["detail"] == {"team": "north"}
    assert by_action["login"]["detail"]["method"] == "user_key"
    assert by_action["login"]["detail"]["role"] == "supervisor"
    assert by_action["login_failed"]["detail"] == {"method": "user_key"}
    assert {e["source"] for e in events if not e["actor"].startswith("cli:")} == {"127.0.0.1"}
    assert {e["source"] for e in events if e["actor"].startswith("cli:")} == {"local"}
    times = [e["at"] for e in events]
    assert times == sorted(times)
    # no secret anywhere: not in the JSON, not in the CSV
    with center.admin() as admin:
        exported = admin.get("/api/v1/audit.csv").text
    text = str(log) + exported
    for secret in secrets:
        assert secret not in text
    # a note written as a formula stays inside the detail's JSON: no cell starts a formula
    rows = list(csv.reader(io.StringIO(exported)))
    noted = [r for r in rows[1:] if "HYPERLINK" in r[5]]
    assert len(noted) == 1 and noted[0][5].startswith("{")
    assert not [c for r in rows[1:] for c in r if c[:1] in ("=", "+", "-", "@")]


def test_the_log_filters_pages_and_exports(center):
    with center.admin() as admin:
        for i in range(5):
            assert admin.post("/api/v1/tokens", json={"note": f"page {i}"}).status_code == 201
        everything = _events(center)
        tokens = _events(center, action="token.create")
        assert tokens["total"] >= 5 and all(e["action"] == "token.create"
                                            for e in tokens["events"])
        mine = _events(center, actor="admin-token")
        assert all(e["actor"] == "admin-token" for e in mine["events"])
        assert _events(center, actor="user:nobody")["total"] == 0
        # pages of 2, newest first, that add up to the whole
        seen = []
        for offset in range(0, everything["total"], 2):
            page = admin.get("/api/v1/audit", params={"limit": 2, "offset": offset}).json()
            assert page["total"] == everything["total"]
            seen += [e["event_id"] for e in page["events"]]
        assert seen == [e["event_id"] for e in everything["events"]]
        # a window of time
        newest = datetime.fromisoformat(everything["events"][0]["at"])
        later = _events(center, since=(newest + timedelta(seconds=1)).isoformat())
        assert later["total"] == 0
        until = _events(center, until=(newest + timedelta(seconds=1)).isoformat())
        assert until["total"] == everything["total"]
        exported = admin.get("/api/v1/audit.csv", params={"action": "token.create"})
        assert exported.headers["content-type"].startswith("text/csv")
        assert "attachment" in exported.headers["content-disposition"]
        rows = list(csv.reader(io.StringIO(exported.text)))
        assert rows[0] == ["at", "actor", "source", "action", "target", "detail", "event_id"]
        assert len(rows) - 1 == tokens["total"]
        for params, words in (({"action": "everything"}, "pattern"),
                              ({"since": "2026-01-01T00:00:00"}, "UTC offset"),
                              ({"since": "yesterday"}, "datetime"),
                              ({"limit": 0}, "greater"), ({"limit": 1001}, "less")):
            refused = admin.get("/api/v1/audit", params=params)
            assert refused.status_code == 422, (params, refused.text)
            assert words in refused.text, (params, refused.text)


def test_it_reads_the_log_from_the_cli(center):
    with center.admin() as admin:
        made = admin.post("/api/v1/tokens", json={"note": "from the cli test"}).json()
    listed = _cli(center, "audit", "--action", "token.create", "--since", "1h", "--json")
    events = json.loads(listed.stdout)["events"]
    assert events[0]["target"] == made["token_id"] and events[0]["actor"] == "admin-token"
    assert all(e["action"] == "token.create" for e in events)
    lines = _cli(center, "audit", "--actor", "admin-token", "--limit", "1").stdout.splitlines()
    assert len(lines) == 1 and "admin-token  token.create  " + made["token_id"] in lines[0]
    refused = subprocess.run([sys.executable, "-m", "agent_kit.center.cli", "audit",
                              "--action", "everything", "--data-dir", str(center.data_dir),
                              *DB_ARGS[center.url]], capture_output=True, text=True,
                             timeout=120)
    assert refused.returncode == 2 and "one of login" in refused.stderr
