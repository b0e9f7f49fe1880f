"""The center's HTTP API against a real `agent-center serve`, on SQLite and on PostgreSQL."""

from __future__ import annotations

import csv
import http.server
import io
import json
import re
import subprocess
import sys
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import jwt
import pytest

from agent_kit.center.clearance import verify_clearance
from tests.center_seed import free_port, heartbeat, run_center
from tests.lab.postgres import postgres_cluster

pytestmark = pytest.mark.lab

# The checks the default policy blocks on when unknown are in every heartbeat (the center's gate
# denies a workstation that leaves them out).
REQUIRED = {"vpn.connected": ("pass", None), "audio.headset": ("pass", None)}
GOOD = {**REQUIRED, "network.jitter": ("pass", 4.0), "network.mos": ("pass", 4.3)}
BAD = {**REQUIRED, "network.jitter": ("fail", 45.0), "network.mos": ("warn", 3.7)}


@pytest.fixture(scope="module")
def pg_url():
    with postgres_cluster() as url:
        yield url


# Every center process on the module's PostgreSQL shares one secrets key, as several hosts on one
# database must (docs/operations.md): the database's center secrets are sealed with it.
PG_SECRETS = {"AGENT_CENTER_SECRETS_KEY": "5e" * 32}


class Hook(http.server.BaseHTTPRequestHandler):
    received: list[dict] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Hook.received.append(json.loads(body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        return None


@pytest.fixture(scope="module")
def webhook():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def center(request, tmp_path_factory, webhook):
    args = ["--webhook", webhook]
    env = {}
    if request.param == "postgresql":
        url = request.getfixturevalue("pg_url")
        args += ["--db", url]
        env = PG_SECRETS
    with run_center(tmp_path_factory.mktemp(f"center-{request.param}"),
                    extra_args=args, env=env) as c:
        yield c


def now():
    return datetime.now(UTC)


def test_enrollment_tokens_are_limited_revocable_and_single_code(center):
    token = center.create_token(uses=1)
    ws = center.enroll(token, "home-1")
    assert ws.agent_id and len(ws.secret) >= 32
    again = httpx.post(f"{center.url}/api/v1/enroll", json={"token": token, "hostname": "x"})
    assert again.status_code == 401 and again.json()["error"] == "invalid_token"
    with center.admin() as admin:
        made = admin.post("/api/v1/tokens", json={"uses": 5}).json()
        assert admin.delete(f"/api/v1/tokens/{made['token_id']}").status_code == 204
        listed = {t["token_id"]: t for t in admin.get("/api/v1/tokens").json()["tokens"]}
        assert listed[made["token_id"]]["active"] is False
        assert admin.delete("/api/v1/tokens/ffffffffffff").status_code == 404
    revoked = httpx.post(f"{center.url}/api/v1/enroll",
                         json={"token": made["token"], "hostname": "x"})
    assert revoked.status_code == 401 and revoked.json()["error"] == "invalid_token"
    # a token never sent to the admin API is refused with the same answer (no oracle)
    bogus = httpx.post(f"{center.url}/api/v1/enroll", json={"token": "enr_nope", "hostname": "x"})
    assert bogus.json() == revoked.json()


def test_heartbeats_are_idempotent_and_attributed_by_signature_only(center):
    a = center.enroll(center.create_token(), "home-a")
    b = center.enroll(center.create_token(), "home-b")
    hb = heartbeat(1, now(), GOOD)
    assert a.send([hb])["results"][0]["status"] == "stored"
    assert a.send([hb])["results"][0]["status"] == "duplicate"     # resend: stored once
    # b cannot report as a: a's id with b's secret does not verify
    forged = type(b)(center_url=b.center_url, agent_id=a.agent_id, secret=b.secret)
    r = forged.request("POST", "/api/v1/heartbeats", {"heartbeats": [heartbeat(2, now(), BAD)]})
    assert r.status_code == 401 and r.json()["error"] == "bad_signature"
    # a body changed after signing does not verify
    body = json.dumps({"heartbeats": [heartbeat(2, now(), BAD)]}).encode()
    ts = int(time.time())
    from tests.center_seed import signature
    r = httpx.post(f"{center.url}/api/v1/heartbeats", content=body.replace(b"fail", b"pass"),
                   headers={"X-Agent-Id": a.agent_id, "X-Agent-Timestamp": str(ts),
                            "X-Agent-Signature": signature(a.secret, "POST",
                                                           "/api/v1/heartbeats", ts, body),
                            "Content-Type": "application/json"})
    assert r.status_code == 401
    # a different heartbeat reusing seq 1: refused, nothing of the batch stored
    clash = a.request("POST", "/api/v1/heartbeats",
                      {"heartbeats": [heartbeat(2, now(), GOOD), heartbeat(1, now(), GOOD)]})
    assert clash.status_code == 409 and clash.json()["error"] == "seq_conflict"
    with center.admin() as admin:
        stored = admin.get(f"/api/v1/agents/{a.agent_id}/heartbeats").json()["heartbeats"]
    assert [h["seq"] for h in stored] == [1] and stored[0]["id"] == hb["id"]


def test_clock_skew_and_retired_workstations(center):
    ws = center.enroll(center.create_token(), "home-skew")
    r = ws.request("POST", "/api/v1/heartbeats", {"heartbeats": [heartbeat(1, now(), GOOD)]},
                   timestamp=int(time.time()) - 3600)
    assert r.status_code == 401 and r.json()["error"] == "clock_skew"
    assert abs(r.json()["server_time"] - time.time()) < 5
    with center.admin() as admin:
        assert admin.post(f"/api/v1/agents/{ws.agent_id}/retire").status_code == 200
        assert admin.get(f"/api/v1/agents/{ws.agent_id}").json()["state"] == "retired"
    r = ws.request("POST", "/api/v1/heartbeats", {"heartbeats": [heartbeat(1, now(), GOOD)]})
    assert r.status_code == 403 and r.json()["error"] == "retired"


def test_gate_allows_with_a_verifiable_clearance_and_denies_with_reasons(center):
    ws = center.enroll(center.create_token(), "home-gate")
    with center.admin() as admin:
        never = admin.get(f"/api/v1/gate/{ws.agent_id}").json()
        assert never["allowed"] is False and never["clearance"] is None
        assert "not reported" in never["reasons"][0]
        ws.send([heartbeat(1, now(), GOOD, interval_s=1)])
        ok = admin.get(f"/api/v1/gate/{ws.agent_id}").json()
        assert ok["allowed"] is True, ok
        key = httpx.get(f"{center.url}/api/v1/clearance-key").json()
        claims = verify_clearance(ok["clearance"], key["public_key_pem"], ws.agent_id)
        assert claims["exp"] - claims["iat"] <= 120
        with pytest.raises(jwt.PyJWTError):
            verify_clearance(ok["clearance"], key["public_key_pem"], "someone-else")
        ws.send([heartbeat(2, now(), BAD, interval_s=1, reasons=["jitter 45 ms"])])
        denied = admin.get(f"/api/v1/gate/{ws.agent_id}").json()
        assert denied["allowed"] is False and denied["reasons"] == ["jitter 45 ms"]
        # a workstation that leaves out a check the center's policy blocks on, or that judges
        # a value more leniently than the center's levels, is not cleared
        ws.send([heartbeat(3, now(), {"network.jitter": ("pass", 4.0)}, interval_s=1)])
        partial = admin.get(f"/api/v1/gate/{ws.agent_id}").json()
        assert partial["allowed"] is False and partial["clearance"] is None, partial
        assert [r for r in partial["reasons"] if "vpn.connected" in r] and \
            [r for r in partial["reasons"] if "audio.headset" in r], partial
        ws.send([heartbeat(4, now(), {**REQUIRED, "network.jitter": ("pass", 45.0)},
                           interval_s=1)])
        lax = admin.get(f"/api/v1/gate/{ws.agent_id}").json()
        assert lax["allowed"] is False, lax
        assert lax["reasons"] == ["network.jitter = 45 fails the center's policy (fail level 30) "
                                  "but the workstation reported it as pass: it judges by another "
                                  "policy."], lax
        ws.send([heartbeat(5, now(), GOOD, interval_s=1)])
        assert admin.get(f"/api/v1/gate/{ws.agent_id}").json()["allowed"] is True
    # the workstation may ask about itself, not about others; nobody else without a key
    assert ws.request("GET", f"/api/v1/gate/{ws.agent_id}").status_code == 200
    assert ws.request("GET", "/api/v1/gate/other").status_code == 403
    assert httpx.get(f"{center.url}/api/v1/gate/{ws.agent_id}").status_code == 401
    # stale: no heartbeat for interval + grace (1 s + 10 s) -> offline -> denied
    ws2 = center.enroll(center.create_token(), "home-stale")
    ws2.send([heartbeat(1, now(), GOOD, interval_s=1)])
    with center.admin() as admin:
        assert admin.get(f"/api/v1/gate/{ws2.agent_id}").json()["allowed"] is True
        time.sleep(11.5)
        stale = admin.get(f"/api/v1/gate/{ws2.agent_id}").json()
        assert stale["allowed"] is False and "No heartbeat" in stale["reasons"][0]
        assert admin.get(f"/api/v1/agents/{ws2.agent_id}").json()["state"] == "offline"


def _center_cli(center, request, *args: str) -> subprocess.CompletedProcess[str]:
    """``agent-center ARGS`` on the running center's database."""
    where = ["--db", request.getfixturevalue("pg_url")] \
        if request.node.callspec.params["center"] == "postgresql" \
        else ["--data-dir", str(center.data_dir)]
    return subprocess.run([sys.executable, "-m", "agent_kit.center.cli", *args, *where],
                          capture_output=True, text=True, timeout=60)


def test_gate_keys_are_made_listed_and_revoked(center, request):
    ws = center.enroll(center.create_token(), "home-gate-key")
    ws.send([heartbeat(1, now(), GOOD, interval_s=60)])
    made = _center_cli(center, request, "gate-key", "create", "--note", "ACD east")
    assert made.returncode == 0, made.stderr
    key = made.stdout.strip()
    key_id = re.search(r"\(id (\w+)\)", made.stderr).group(1)   # type: ignore[union-attr]
    url, auth = f"{center.url}/api/v1/gate/{ws.agent_id}", {"Authorization": f"Bearer {key}"}
    allowed = httpx.get(url, headers=auth)
    assert allowed.status_code == 200 and allowed.json()["allowed"] is True, allowed.text
    # a gate key opens the gate API only, not the admin API (403: its role may not)
    fleet = httpx.get(f"{center.url}/api/v1/agents", headers=auth)
    assert fleet.status_code == 403 and "gate role may not" in fleet.json()["detail"]
    listed = _center_cli(center, request, "gate-key", "list")
    line = next(x for x in listed.stdout.splitlines() if x.startswith(key_id))
    assert "active" in line and "ACD east" in line and key not in listed.stdout
    revoked = _center_cli(center, request, "gate-key", "revoke", key_id)
    assert revoked.returncode == 0, revoked.stderr
    refused = httpx.get(url, headers=auth)                     # at once, no cache
    assert refused.status_code == 401 and refused.json()["error"] == "unauthorized"
    listed = _center_cli(center, request, "gate-key", "list")
    assert "revoked" in next(x for x in listed.stdout.splitlines() if x.startswith(key_id))
    missing = _center_cli(center, request, "gate-key", "revoke", "nosuchkey")
    assert missing.returncode == 2 and "no gate key" in missing.stderr


def test_fleet_list_filters_csv_and_metrics(center):
    tag = uuid.uuid4().hex[:6]
    good = center.enroll(center.create_token(), f"{tag}-good")
    bad = center.enroll(center.create_token(), f"=cmd|{tag}-bad")
    good.send([heartbeat(1, now(), GOOD, interval_s=60)])
    bad.send([heartbeat(1, now(), BAD, interval_s=60)])
    with center.admin() as admin:
        page = admin.get("/api/v1/agents", params={"q": tag}).json()
        assert page["total"] == 2
        by_host = {a["hostname"]: a for a in page["agents"]}
        assert by_host[f"{tag}-good"]["ready"] is True
        assert by_host[f"=cmd|{tag}-bad"]["failing"] == ["network.jitter"]
        not_ready = admin.get("/api/v1/agents", params={"q": tag, "ready": "false"}).json()
        assert [a["agent_id"] for a in not_ready["agents"]] == [bad.agent_id]
        failing = admin.get("/api/v1/agents",
                            params={"q": tag, "failing": "network.jitter"}).json()
        assert failing["total"] == 1
        bad_filter = admin.get("/api/v1/agents", params={"state": "sleeping"})
        assert bad_filter.status_code == 422 and bad_filter.json()["error"] == "validation_error"
        exported = admin.get("/api/v1/agents.csv", params={"q": tag})
        assert exported.headers["content-type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(exported.text)))
        assert {r["hostname"] for r in rows} == {f"{tag}-good", f"'=cmd|{tag}-bad"}
        metrics = admin.get("/metrics").text
        assert 'agent_center_failing_checks{check="network.jitter"}' in metrics
        assert "agent_center_heartbeats_stored_total" in metrics
        plain = admin.get("/metrics", headers={"Accept": "text/plain; version=abc"})
        assert plain.status_code == 200
        assert plain.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
        scraped = admin.get("/metrics", headers={"Accept": "application/openmetrics-text; "
                                                           "version=1.0.0"})
        assert scraped.headers["content-type"].startswith("application/openmetrics-text")
        assert scraped.text.endswith("# EOF\n")
    assert httpx.get(f"{center.url}/metrics").status_code == 401
    assert httpx.get(f"{center.url}/api/v1/agents").status_code == 401


def test_webhook_alerts_on_not_ready(center):
    ws = center.enroll(center.create_token(), "home-alert")
    ws.send([heartbeat(1, now(), BAD, interval_s=60)])
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        events = [e for e in Hook.received if e["agent_id"] == ws.agent_id]
        if events:
            break
        time.sleep(0.2)
    assert events and events[0]["event"] == "agent_not_ready"
    assert events[0]["failing"] == ["network.jitter"]


def _events_for(agent_id: str, count: int, timeout_s: float) -> list[str]:
    deadline = time.monotonic() + timeout_s
    while True:
        events = [e["event"] for e in Hook.received if e["agent_id"] == agent_id]
        if len(events) >= count or time.monotonic() > deadline:
            return events
        time.sleep(0.2)


def test_webhook_alerts_recovery_and_offline(center):
    ws = center.enroll(center.create_token(), "home-flap")
    ws.send([heartbeat(1, now(), BAD, interval_s=1)])
    assert _events_for(ws.agent_id, 1, 15) == ["agent_not_ready"]
    ws.send([heartbeat(2, now(), GOOD, interval_s=1)])
    with center.admin() as admin:
        last_seen = admin.get(f"/api/v1/agents/{ws.agent_id}").json()["last_seen"]
    assert _events_for(ws.agent_id, 2, 15) == ["agent_not_ready", "agent_recovered"]
    # silent for interval (1 s) + grace (10 s): offline, alerted once by the checker (5 s)
    events = _events_for(ws.agent_id, 3, 25)
    assert events == ["agent_not_ready", "agent_recovered", "agent_offline"]
    offline = [e for e in Hook.received if e["agent_id"] == ws.agent_id][2]
    assert (offline["previous"], offline["state"]) == ("ok", "offline")
    # not before the grace was over, by the center's own clock: the alert's time is at least
    # interval + grace after the last heartbeat it received
    silent_s = (datetime.fromisoformat(offline["at"])
                - datetime.fromisoformat(last_seen)).total_seconds()
    assert silent_s >= 1 + 10, (offline, last_seen)
    time.sleep(6)  # one more checker period: no repeated alert
    assert _events_for(ws.agent_id, 4, 0) == events


def test_dashboard_session_cookie(center):
    r = httpx.post(f"{center.url}/api/v1/session", json={"token": "wrong"})
    assert r.status_code == 401
    r = httpx.post(f"{center.url}/api/v1/session", json={"token": center.admin_token})
    assert r.status_code == 204
    cookie = r.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie
    with httpx.Client(base_url=center.url, cookies=r.cookies) as browser:
        assert browser.get("/api/v1/agents").status_code == 200
        assert browser.delete("/api/v1/session").status_code == 204
    assert httpx.get(f"{center.url}/").status_code == 200   # the page itself is public


@pytest.mark.parametrize(("method", "path", "kwargs", "code", "error"), [
    ("POST", "/api/v1/enroll", {"content": b"{not json", "headers": {
        "Content-Type": "application/json"}}, 400, "invalid_json"),
    ("POST", "/api/v1/enroll", {"content": b"token=x", "headers": {
        "Content-Type": "application/x-www-form-urlencoded"}}, 415, "unsupported_media_type"),
    ("POST", "/api/v1/enroll", {"json": {"token": 5, "hostname": []}}, 422, "validation_error"),
    ("POST", "/api/v1/enroll", {"content": b"x" * (2 << 20), "headers": {
        "Content-Type": "application/json"}}, 413, "body_too_large"),
    ("GET", "/api/v1/nowhere", {}, 404, "not_found"),
    ("DELETE", "/healthz", {}, 405, "method_not_allowed"),
])
def test_bad_requests_get_a_4xx_json_reason(center, method, path, kwargs, code, error):
    r = httpx.request(method, center.url + path, **kwargs)
    assert r.status_code == code, r.text
    assert r.json()["error"] == error and r.json()["detail"]


def test_two_processes_share_one_postgresql(pg_url, tmp_path):
    with run_center(tmp_path / "a", extra_args=["--db", pg_url], env=PG_SECRETS) as a, \
            run_center(tmp_path / "b", extra_args=["--db", pg_url],
                       admin_token=a.admin_token, env=PG_SECRETS) as b:
        ws = a.enroll(a.create_token(), "shared-ws")
        ws.send([heartbeat(1, now() - timedelta(seconds=1), GOOD)])
        with b.admin() as admin:
            seen = admin.get(f"/api/v1/agents/{ws.agent_id}").json()
        assert seen["last_seq"] == 1 and seen["state"] == "online"
        # the workstation's credential works on the other process too
        other = type(ws)(center_url=b.url, agent_id=ws.agent_id, secret=ws.secret)
        assert other.send([heartbeat(2, now(), GOOD)])["results"][0]["status"] == "stored"
