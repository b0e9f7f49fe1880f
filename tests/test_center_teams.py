"""Teams (sites): a workstation joins its enrollment token's team, an admin moves it, the fleet
list, its CSV and the CLI carry and filter by it; a bad team name is a 422 that says why. Against
a real ``agent-center serve``, on SQLite and on PostgreSQL (migration 3 on both)."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from datetime import UTC, datetime

import httpx
import pytest

from tests.center_seed import heartbeat, run_center
from tests.lab.postgres import postgres_cluster

pytestmark = pytest.mark.lab

PG_SECRETS = {"AGENT_CENTER_SECRETS_KEY": "7a" * 32}
GOOD = {"vpn.connected": ("pass", None), "audio.headset": ("pass", None)}
BAD_NAMES = ["Tokyo", "", "-tokyo", "tokyo 1", "a" * 41, "東京", "tokyo/1", "tokyo\n"]


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def center(request, tmp_path_factory):
    if request.param == "postgresql":
        with postgres_cluster() as url, run_center(
                tmp_path_factory.mktemp("teams-pg"), extra_args=["--db", url, "--udp-port", "0"],
                env=PG_SECRETS) as c:
            yield c
    else:
        with run_center(tmp_path_factory.mktemp("teams-sqlite"),
                        extra_args=["--udp-port", "0"]) as c:
            yield c


def test_a_workstation_joins_its_tokens_team_and_is_listed_by_it(center):
    tokyo = center.create_token(uses=2, note="with team", team="tokyo-1")
    plain = center.create_token(uses=1, note="without")
    a = center.enroll(tokyo, "t-a")
    b = center.enroll(tokyo, "t-b")
    c = center.enroll(plain, "n-c")
    a.send([heartbeat(1, datetime.now(UTC), GOOD)])
    with center.admin() as admin:
        listed = admin.get("/api/v1/agents", params={"team": "tokyo-1", "limit": 1000}).json()
        assert {x["agent_id"] for x in listed["agents"]} == {a.agent_id, b.agent_id}
        assert listed["total"] == 2
        assert all(x["team"] == "tokyo-1" for x in listed["agents"])
        assert admin.get(f"/api/v1/agents/{c.agent_id}").json()["team"] is None
        assert admin.get(f"/api/v1/agents/{a.agent_id}").json()["team"] == "tokyo-1"
        teams = {t["note"]: t["team"] for t in admin.get("/api/v1/tokens").json()["tokens"]}
        assert teams["with team"] == "tokyo-1" and teams["without"] is None
        exported = admin.get("/api/v1/agents.csv", params={"team": "tokyo-1"})
    rows = list(csv.reader(io.StringIO(exported.text)))
    assert rows[0][:4] == ["agent_id", "hostname", "display_name", "team"]
    assert sorted((r[0], r[3]) for r in rows[1:]) == sorted(
        [(a.agent_id, "tokyo-1"), (b.agent_id, "tokyo-1")])


def test_an_admin_moves_a_workstation_to_another_team_and_out_of_any(center):
    ws = center.enroll(center.create_token(uses=1, team="osaka"), "m-1")
    with center.admin() as admin:
        moved = admin.patch(f"/api/v1/agents/{ws.agent_id}", json={"team": "kobe"})
        assert moved.status_code == 200, moved.text
        assert moved.json()["team"] == "kobe" and moved.json()["agent_id"] == ws.agent_id
        assert ws.agent_id in {x["agent_id"] for x in admin.get(
            "/api/v1/agents", params={"team": "kobe"}).json()["agents"]}
        assert ws.agent_id not in {x["agent_id"] for x in admin.get(
            "/api/v1/agents", params={"team": "osaka"}).json()["agents"]}
        cleared = admin.patch(f"/api/v1/agents/{ws.agent_id}", json={"team": None})
        assert cleared.status_code == 200 and cleared.json()["team"] is None
        unknown = admin.patch("/api/v1/agents/ws-nobody", json={"team": "kobe"})
        assert unknown.status_code == 404 and unknown.json()["error"] == "not_found"
        for body in ({}, {"team": "kobe", "hostname": "x"}, {"team": 7}):
            refused = admin.patch(f"/api/v1/agents/{ws.agent_id}", json=body)
            assert refused.status_code == 422, (body, refused.text)


def test_a_bad_team_name_is_a_422_that_says_what_a_team_name_is(center):
    ws = center.enroll(center.create_token(uses=1), "bad-1")
    with center.admin() as admin:
        for name in BAD_NAMES:
            for response in (admin.post("/api/v1/tokens", json={"team": name}),
                             admin.patch(f"/api/v1/agents/{ws.agent_id}", json={"team": name}),
                             admin.get("/api/v1/agents", params={"team": name}),
                             admin.get("/api/v1/agents.csv", params={"team": name})):
                assert response.status_code == 422, (name, response.status_code, response.text)
                body = response.json()
                assert body["error"] == "validation_error"
                assert "team name" in " ".join(e["msg"] for e in body["detail"]), body
        assert admin.get(f"/api/v1/agents/{ws.agent_id}").json()["team"] is None


def test_teams_need_the_admin(center):
    ws = center.enroll(center.create_token(uses=1), "auth-1")
    assert httpx.patch(f"{center.url}/api/v1/agents/{ws.agent_id}",
                       json={"team": "x"}).status_code == 401


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "agent_kit.center.cli", *args],
                          capture_output=True, text=True, timeout=120)


def test_the_cli_makes_team_tokens_moves_and_lists_by_team(tmp_path):
    with run_center(tmp_path, extra_args=["--udp-port", "0"]) as center:
        made = _cli("token", "create", "--data-dir", str(tmp_path), "--team", "sapporo",
                    "--uses", "2")
        assert made.returncode == 0, made.stderr
        ws = center.enroll(made.stdout.strip(), "cli-1")
        assert "team sapporo" in _cli("token", "list", "--data-dir", str(tmp_path)).stdout
        listed = _cli("agents", "--data-dir", str(tmp_path), "--team", "sapporo", "--json")
        assert [v["agent_id"] for v in json.loads(listed.stdout)["agents"]] == \
            [ws.agent_id]
        moved = _cli("move", ws.agent_id, "--data-dir", str(tmp_path), "--team", "otaru")
        assert moved.returncode == 0 and "team otaru" in moved.stdout, moved.stderr
        with center.admin() as admin:
            assert admin.get(f"/api/v1/agents/{ws.agent_id}").json()["team"] == "otaru"
        for args, reason in ((["token", "create", "--team", "Bad Name"], "--team 'Bad Name'"),
                             (["move", ws.agent_id, "--team", "x/y"], "team name"),
                             (["move", ws.agent_id], "either --team NAME or --no-team"),
                             (["move", "ws-nobody", "--no-team"], "no workstation")):
            run = _cli(*args, "--data-dir", str(tmp_path))
            assert run.returncode == 2 and reason in run.stderr, (args, run.stderr)
            assert run.stderr.count("\n") == 1
        cleared = _cli("move", ws.agent_id, "--data-dir", str(tmp_path), "--no-team")
        assert cleared.returncode == 0 and "no team" in cleared.stdout
