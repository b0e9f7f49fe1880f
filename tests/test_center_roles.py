"""Roles on every route: each principal (nobody, the admin token, an admin user, a supervisor of
team-a, a viewer of every team, a viewer of team-a, a gate key, a workstation) calls every route
of the app against a real ``agent-center serve``, and gets what docs/center-api.md's roles table
says: 2xx when allowed, 403 ``forbidden`` with a reason when its role may not, 401 without a
credential it may use there, and 404 (as for an unknown one) for a workstation or token of a team
it does not see.

The route list is the app's own (``app.app_routes`` of a freshly built app): a new route with no
row in :data:`EXPECTED` fails :func:`test_every_route_has_a_row_and_a_rule`, and the app itself
refuses to start with a route that has no rule in ``principals.ROUTE_ACCESS``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.center_seed import Center, Workstation, heartbeat, run_center

pytestmark = pytest.mark.lab

ROLES = ("nobody", "admin_token", "admin_user", "supervisor", "viewer", "viewer_a", "gate",
         "workstation")
PEOPLE = ("admin_token", "admin_user", "supervisor", "viewer", "viewer_a")
GOOD = {"vpn.connected": ("pass", None), "audio.headset": ("pass", None)}
PUBLIC = "public"   # any answer but 401/403/5xx


def expect(**by_role: int) -> dict[str, int | str]:
    """A row: the status for each role; roles not named get their default (401 for nobody and
    a workstation on people's routes, 403 for the rest)."""
    row: dict[str, int | str] = {"nobody": 401, "workstation": 401}
    row.update({r: 403 for r in ROLES if r not in row})
    row.update(by_role)
    return row


def everyone(status: int | str = PUBLIC) -> dict[str, int | str]:
    return {r: status for r in ROLES}


READERS = {"admin_token": 200, "admin_user": 200, "supervisor": 200, "viewer": 200,
           "viewer_a": 200}
ADMINS = {"admin_token": 200, "admin_user": 200}
WORKSTATION_ONLY = {**{r: 401 for r in ROLES}}

EXPECTED: dict[tuple[str, str], dict[str, int | str]] = {
    ("GET", "/healthz"): everyone(200),
    ("GET", "/api/v1/openapi.json"): everyone(200),
    ("GET", "/api/v1/clearance-key"): everyone(200),
    ("POST", "/api/v1/enroll"): everyone(201),
    ("POST", "/api/v1/test-call"): everyone(),
    ("POST", "/api/v1/session"): {**everyone(401), "admin_token": 204, "admin_user": 204,
                                  "supervisor": 204, "viewer": 204, "viewer_a": 204},
    ("DELETE", "/api/v1/session"): everyone(204),
    # single sign-on: this center has none (tests/test_oidc_lab.py runs it against a provider)
    ("GET", "/auth/oidc/login"): everyone(404),
    ("GET", "/auth/oidc/callback"): everyone(404),
    ("GET", "/api/v1/session"): expect(**READERS),
    ("POST", "/api/v1/heartbeats"): {**WORKSTATION_ONLY, "workstation": 200},
    ("POST", "/api/v1/reports"): {**WORKSTATION_ONLY, "workstation": 201},
    ("GET", "/api/v1/policy"): expect(**READERS, workstation=200),
    ("GET", "/api/v1/policy/versions"): expect(**READERS),
    ("GET", "/api/v1/policy/versions/{version_id}"): expect(**READERS),
    ("GET", "/api/v1/policy/diff"): expect(**READERS),
    ("POST", "/api/v1/policy/versions"): expect(admin_token=201, admin_user=201),
    ("POST", "/api/v1/policy/rollback"): expect(admin_token=201, admin_user=201),
    ("GET", "/api/v1/gate/{agent_id}"): expect(**ADMINS, gate=200, workstation=200),
    ("GET", "/metrics"): expect(**ADMINS, viewer=200),
    ("POST", "/api/v1/tokens"): expect(admin_token=201, admin_user=201, supervisor=201),
    ("GET", "/api/v1/tokens"): expect(**ADMINS, supervisor=200),
    ("DELETE", "/api/v1/tokens/{token_id}"): expect(admin_token=204, admin_user=204,
                                                    supervisor=204),
    ("GET", "/api/v1/agents"): expect(**READERS),
    ("GET", "/api/v1/agents.csv"): expect(**READERS),
    ("GET", "/api/v1/agents/{agent_id}"): expect(**READERS),
    ("PATCH", "/api/v1/agents/{agent_id}"): expect(**ADMINS),
    ("GET", "/api/v1/agents/{agent_id}/heartbeats"): expect(**READERS),
    ("POST", "/api/v1/agents/{agent_id}/retire"): expect(**ADMINS, supervisor=200),
    ("GET", "/api/v1/agents/{agent_id}/reports"): expect(**READERS),
    ("GET", "/api/v1/agents/{agent_id}/reports/{report_id}"): expect(**READERS),
    ("GET", "/api/v1/users"): expect(**ADMINS),
    ("POST", "/api/v1/users"): expect(admin_token=201, admin_user=201),
    ("PATCH", "/api/v1/users/{name}"): expect(**ADMINS),
    ("DELETE", "/api/v1/users/{name}"): expect(admin_token=204, admin_user=204),
    ("POST", "/api/v1/users/{name}/key"): expect(**ADMINS),
    ("GET", "/api/v1/audit"): expect(**ADMINS),
    ("GET", "/api/v1/audit.csv"): expect(**ADMINS),
    ("GET", "/api/v1/incidents"): expect(**ADMINS, viewer=200),
    ("GET", "/"): everyone(200),
    ("GET", "/agents/{agent_id}"): everyone(200),
    ("GET", "/audit"): everyone(200),
    ("GET", "/favicon.ico"): everyone(200),
    ("MOUNT", "/static"): everyone(200),
    ("MOUNT", "/speedtest"): everyone(200),
}
# Served only where the center can score a test call (visqol-python installed).
OPTIONAL = {("POST", "/api/v1/test-call")}
# Routes on one workstation (or token): the same call on one of team-b, which the supervisor and
# the team-a viewer do not see: 404, as for an unknown one, where their role may make the call
# (a role that may not is refused with 403 first, whatever the team).
OTHER_TEAM = {"supervisor": 404, "viewer_a": 404}


def app_routes() -> list[tuple[str, str]]:
    """The routes of a freshly built center app (dashboard, bandwidth endpoint, test call)."""
    code = ("import json, sys, tempfile; from agent_kit.center.app import create_app, "
            "app_routes; from agent_kit.center.settings import CenterSettings; "
            "d = tempfile.mkdtemp(); "
            "app = create_app(CenterSettings(db_url=f'sqlite:///{d}/c.db', data_dir=d)); "
            "print(json.dumps(app_routes(app)))")
    env = {**os.environ, "AGENT_CENTER_ADMIN_TOKEN": "admin-" + uuid.uuid4().hex}
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=env, timeout=120, check=True)
    import json

    return [tuple(r) for r in json.loads(run.stdout.splitlines()[-1])]  # type: ignore[misc]


def test_every_route_has_a_row_and_a_rule():
    from agent_kit.center.principals import ROUTE_ACCESS

    routes = set(app_routes())
    assert routes, "no routes found"
    missing = sorted(routes - set(EXPECTED))
    assert not missing, f"routes without a row in this test's EXPECTED: {missing}"
    ghosts = sorted(set(EXPECTED) - routes - OPTIONAL)
    assert not ghosts, f"rows for routes the app does not serve: {ghosts}"
    assert set(ROUTE_ACCESS) == set(EXPECTED), "principals.ROUTE_ACCESS and EXPECTED differ"


@dataclass
class Lab:
    center: Center
    secrets: dict[str, str]              # role -> Bearer secret
    own: Workstation                     # team-a
    other: Workstation                   # team-b
    report_id: str
    other_report_id: str
    made: list[str] = field(default_factory=list)

    def admin(self) -> httpx.Client:
        return self.center.admin()

    def token(self, team: str | None = "team-a") -> tuple[str, str]:
        with self.admin() as admin:
            made = admin.post("/api/v1/tokens", json={"team": team, "uses": 5}).json()
        return made["token"], made["token_id"]

    def throwaway_user(self) -> str:
        name = f"tmp-{uuid.uuid4().hex[:10]}"
        with self.admin() as admin:
            assert admin.post("/api/v1/users", json={"name": name, "role": "viewer"}
                              ).status_code == 201
        return name

    def victim(self, team: str) -> str:
        return self.center.enroll(self.token(team)[0], f"victim-{team}").agent_id


def _user(center: Center, name: str, role: str, teams: list[str] | None) -> str:
    with center.admin() as admin:
        made = admin.post("/api/v1/users", json={"name": name, "role": role, "teams": teams})
    assert made.status_code == 201, made.text
    key = made.json()["key"]
    assert key.startswith("usr_")
    return str(key)


@pytest.fixture(scope="module")
def lab(tmp_path_factory) -> Lab:
    data = tmp_path_factory.mktemp("roles")
    with run_center(data, extra_args=["--udp-port", "0", "--auth-failure-burst", "100000"]
                    ) as center:
        secrets = {"admin_token": center.admin_token,
                   "admin_user": _user(center, "ada", "admin", None),
                   "supervisor": _user(center, "sue", "supervisor", ["team-a"]),
                   "viewer": _user(center, "vic", "viewer", None),
                   "viewer_a": _user(center, "val", "viewer", ["team-a"])}
        gate = subprocess.run([sys.executable, "-m", "agent_kit.center.cli", "gate-key",
                               "create", "--data-dir", str(data)], capture_output=True,
                              text=True, timeout=120, check=True)
        secrets["gate"] = gate.stdout.strip()
        with center.admin() as admin:
            tok_a = admin.post("/api/v1/tokens", json={"team": "team-a", "uses": 5}).json()
            tok_b = admin.post("/api/v1/tokens", json={"team": "team-b", "uses": 5}).json()
        own = center.enroll(tok_a["token"], "own-a")
        other = center.enroll(tok_b["token"], "other-b")
        for ws in (own, other):
            ws.send([heartbeat(1, datetime.now(UTC), GOOD)])
        yield Lab(center, secrets, own, other, own.upload_report("<p>a</p>"),
                  other.upload_report("<p>b</p>"))


Call = tuple[str, str, dict[str, Any]]   # method, path with its ids, httpx keyword arguments


def _call(lab: Lab, method: str, path: str, role: str, other_team: bool = False) -> Call:
    """A concrete request for a route (fresh objects where the call consumes one)."""
    ws = lab.other if other_team else lab.own
    report = lab.other_report_id if other_team else lab.report_id
    team = "team-b" if other_team else "team-a"
    kw: dict[str, Any] = {}
    concrete = path.replace("{agent_id}", ws.agent_id).replace("{report_id}", report)
    if path == "/api/v1/enroll":
        kw["json"] = {"token": lab.token()[0], "hostname": f"enrolled-{role}"}
    elif path == "/api/v1/session" and method == "POST":
        kw["json"] = {"token": lab.secrets.get(role, "not-a-credential-" + role)}
    elif path == "/api/v1/tokens" and method == "POST":
        kw["json"] = {"team": team}
    elif path == "/api/v1/tokens/{token_id}":
        concrete = path.replace("{token_id}", lab.token(team)[1])
    elif path == "/api/v1/agents/{agent_id}" and method == "PATCH":
        kw["json"] = {"team": team}
    elif path.endswith("/retire"):
        concrete = path.replace("{agent_id}", lab.victim(team))
    elif path == "/api/v1/users" and method == "POST":
        kw["json"] = {"name": f"new-{uuid.uuid4().hex[:10]}", "role": "viewer"}
    elif "{name}" in path:
        concrete = path.replace("{name}", lab.throwaway_user())
        if method == "PATCH":
            kw["json"] = {"note": "changed"}
    elif path.startswith("/api/v1/policy/"):
        # the fleet's active version, stored again as it is: the lab's policy never changes
        active = _active_policy_version(lab)
        concrete = path.replace("{version_id}", str(active["version_id"]))
        if path == "/api/v1/policy/versions" and method == "POST":
            kw["json"] = {"toml": active["toml"], "comment": f"as {role}"}
        elif path == "/api/v1/policy/rollback":
            kw["json"] = {"version_id": active["version_id"]}
        elif path == "/api/v1/policy/diff":
            kw["params"] = {"from": active["version_id"], "to": active["version_id"]}
    elif path == "/api/v1/heartbeats":
        kw["json"] = {"heartbeats": [heartbeat(2 + len(lab.made), datetime.now(UTC), GOOD)]}
        lab.made.append(role)
    elif path == "/api/v1/reports":
        kw.update(content=b"<p>report</p>", headers={"Content-Type": "text/html"})
    elif path == "/api/v1/test-call":
        kw["json"] = {}
    elif path == "/static":
        concrete = "/static/style.css"
    elif path == "/speedtest":
        concrete = "/speedtest/latency.txt"
    return ("GET" if method == "MOUNT" else method), concrete, kw


def _active_policy_version(lab: Lab) -> dict[str, Any]:
    """The fleet's active policy version, with its text (made from the default's when the lab's
    center has none yet)."""
    auth = {"Authorization": f"Bearer {lab.secrets['admin_token']}"}
    listed = httpx.get(f"{lab.center.url}/api/v1/policy/versions", headers=auth, timeout=30)
    listed.raise_for_status()
    active = [v for v in listed.json()["versions"] if v["active"]]
    if not active:
        toml = httpx.get(f"{lab.center.url}/api/v1/policy", headers=auth, timeout=30
                         ).json()["toml"]
        made = httpx.post(f"{lab.center.url}/api/v1/policy/versions", headers=auth,
                          json={"toml": toml}, timeout=30)
        made.raise_for_status()
        return dict(made.json())
    one = httpx.get(f"{lab.center.url}/api/v1/policy/versions/{active[0]['version_id']}",
                    headers=auth, timeout=30)
    one.raise_for_status()
    return dict(one.json())


def _send(lab: Lab, role: str, call: Call) -> httpx.Response:
    method, path, kw = call
    url = lab.center.url + path
    if role == "workstation":
        body = kw.get("content")
        if body is None and "json" in kw:
            import json

            body = json.dumps(kw["json"]).encode()
        ctype = kw.get("headers", {}).get("Content-Type", "application/json")
        return lab.own.request(method, path, content=body or b"", content_type=ctype)
    headers = dict(kw.pop("headers", {}))
    if role in lab.secrets and not (path == "/api/v1/session" and method == "POST"):
        headers["Authorization"] = f"Bearer {lab.secrets[role]}"
    return httpx.request(method, url, headers=headers, timeout=30.0, **kw)


def _check(route: tuple[str, str], role: str, want: int | str, got: httpx.Response) -> None:
    where = f"{route[0]} {route[1]} as {role}: {got.status_code} {got.text[:300]}"
    if want == PUBLIC:
        assert got.status_code not in (401, 403) and got.status_code < 500, where
        return
    assert got.status_code == want, where
    if want == 403:
        body = got.json()
        assert body["error"] == "forbidden" and len(body["detail"]) > 20, where
        if role != "workstation":
            assert "may not" in body["detail"] or "only for their" in body["detail"], where
    if want == 404:
        assert got.json()["error"] == "not_found", where


@pytest.mark.parametrize("route", sorted(EXPECTED), ids=lambda r: f"{r[0]} {r[1]}")
def test_each_role_on_each_route(lab, route):
    if route in OPTIONAL and route not in set(app_routes_cache()):
        pytest.skip("this center offers no scored test call (visqol-python not installed)")
    for role in ROLES:
        want = EXPECTED[route][role]
        _check(route, role, want, _send(lab, role, _call(lab, *route, role)))


_ROUTES: list[tuple[str, str]] = []


def app_routes_cache() -> list[tuple[str, str]]:
    if not _ROUTES:
        _ROUTES.extend(app_routes())
    return _ROUTES


AGENT_ROUTES = sorted(r for r in EXPECTED if "{agent_id}" in r[1] and r[1].startswith("/api/")
                      and r != ("GET", "/api/v1/gate/{agent_id}"))


@pytest.mark.parametrize("route", [*AGENT_ROUTES, ("DELETE", "/api/v1/tokens/{token_id}")],
                         ids=lambda r: f"{r[0]} {r[1]}")
def test_another_teams_workstation_or_token_is_unknown_to_a_supervisor_and_team_viewer(
        lab, route):
    for role in PEOPLE:
        want = EXPECTED[route][role]
        if isinstance(want, int) and want < 300:   # the role may: the team decides
            want = OTHER_TEAM.get(role, want)
        _check(route, role, want, _send(lab, role, _call(lab, *route, role, other_team=True)))


def test_a_supervisor_and_a_team_viewer_see_only_their_teams_in_lists_and_counts(lab):
    def listed(role: str, path: str = "/api/v1/agents") -> httpx.Response:
        return httpx.get(lab.center.url + path, params={"limit": 1000}, timeout=30.0,
                         headers={"Authorization": f"Bearer {lab.secrets[role]}"})

    everything = listed("admin_token").json()
    for role in ("supervisor", "viewer_a"):
        page = listed(role).json()
        assert {a["team"] for a in page["agents"]} == {"team-a"}, role
        assert lab.own.agent_id in {a["agent_id"] for a in page["agents"]}
        assert page["total"] < everything["total"]
        assert sum(page["counts"][k] for k in ("online", "offline", "never_seen", "retired")) \
            == page["total"]
        assert lab.other.agent_id not in listed(role, "/api/v1/agents.csv").text
        # asking for another team's list gives an empty page, not that team
        other = httpx.get(lab.center.url + "/api/v1/agents", params={"team": "team-b"},
                          headers={"Authorization": f"Bearer {lab.secrets[role]}"}).json()
        assert other["total"] == 0 and other["agents"] == []
    assert {a["team"] for a in listed("viewer").json()["agents"]} >= {"team-a", "team-b"}
    tokens = httpx.get(lab.center.url + "/api/v1/tokens", timeout=30.0, headers={
        "Authorization": f"Bearer {lab.secrets['supervisor']}"}).json()["tokens"]
    assert tokens and {t["team"] for t in tokens} == {"team-a"}


def test_a_supervisor_makes_tokens_only_for_their_teams(lab):
    auth = {"Authorization": f"Bearer {lab.secrets['supervisor']}"}
    for body in ({"team": "team-b"}, {}, {"team": None}):
        refused = httpx.post(lab.center.url + "/api/v1/tokens", json=body, headers=auth)
        assert refused.status_code == 403, (body, refused.text)
        assert "team-a" in refused.json()["detail"]


def test_a_sessions_role_is_the_users_and_follows_a_change_at_once(lab):
    name = f"s-{uuid.uuid4().hex[:8]}"
    key = _user(lab.center, name, "viewer", ["team-a"])
    with httpx.Client(base_url=lab.center.url, timeout=30.0) as browser:
        assert browser.post("/api/v1/session", json={"token": key}).status_code == 204
        me = browser.get("/api/v1/session").json()
        assert me == {"subject": f"user:{name}", "role": "viewer", "teams": ["team-a"]}
        same_site = {"Sec-Fetch-Site": "same-origin"}
        refused = browser.post(f"/api/v1/agents/{lab.own.agent_id}/retire", headers=same_site)
        assert refused.status_code == 403 and "viewer" in refused.json()["detail"]
        with lab.admin() as admin:
            assert admin.patch(f"/api/v1/users/{name}", json={"role": "supervisor"}
                               ).status_code == 200
        assert browser.get("/api/v1/session").json()["role"] == "supervisor"
        with lab.admin() as admin:
            assert admin.post(f"/api/v1/users/{name}/key").status_code == 200
        ended = browser.get("/api/v1/session")
        assert ended.status_code == 401, "a new key ends the sessions of the old one"
    assert httpx.get(lab.center.url + "/api/v1/session",
                     headers={"Authorization": f"Bearer {key}"}).status_code == 401


def test_bad_grants_are_refused_with_reasons(lab):
    with lab.admin() as admin:
        cases = [({"name": "x1", "role": "supervisor"}, 422, "needs at least one team"),
                 ({"name": "x2", "role": "admin", "teams": ["team-a"]}, 422, "every team"),
                 ({"name": "x3", "role": "owner"}, 422, None),
                 ({"name": "Bad Name", "role": "viewer"}, 422, None),
                 ({"name": "x4", "role": "viewer", "teams": ["Team A"]}, 422, "team name"),
                 ({"name": "ada", "role": "viewer"}, 409, "already")]
        for body, status, words in cases:
            got = admin.post("/api/v1/users", json=body)
            assert got.status_code == status, (body, got.text)
            if words:
                assert words in got.text, (body, got.text)
        assert admin.patch("/api/v1/users/nobody-here", json={"note": "x"}).status_code == 404
        assert admin.patch("/api/v1/users/sue", json={"teams": None}).status_code == 422


def _cli(data: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "agent_kit.center.cli", *args, "--data-dir",
                           str(data)], capture_output=True, text=True, timeout=120)


def test_it_manages_users_from_the_cli(lab):
    data = lab.center.data_dir
    made = _cli(data, "user", "create", "cli-sup", "--role", "supervisor", "--team", "team-a",
                "--team", "team-c")
    assert made.returncode == 0 and made.stdout.startswith("usr_"), made.stderr
    key = made.stdout.strip()
    me = httpx.get(lab.center.url + "/api/v1/session",
                   headers={"Authorization": f"Bearer {key}"}).json()
    assert me["role"] == "supervisor" and me["teams"] == ["team-a", "team-c"]
    listed = _cli(data, "user", "list").stdout
    assert "cli-sup  supervisor  team-a,team-c" in listed and key not in listed
    assert _cli(data, "user", "set", "cli-sup", "--role", "viewer").returncode == 0
    new = _cli(data, "user", "new-key", "cli-sup")
    assert new.returncode == 0 and new.stdout.strip() != key
    assert httpx.get(lab.center.url + "/api/v1/session", headers={
        "Authorization": f"Bearer {key}"}).status_code == 401
    for args, reason in ((["user", "create", "x", "--role", "supervisor"], "at least one team"),
                         (["user", "create", "x", "--role", "boss"], "--role 'boss'"),
                         (["user", "create", "cli-sup", "--role", "viewer"], "already"),
                         (["user", "delete", "nobody"], "no user")):
        run = _cli(data, *args)
        assert run.returncode == 2 and reason in run.stderr, (args, run.stderr)
    assert _cli(data, "user", "delete", "cli-sup").returncode == 0

