"""Issue 15, points 5-8, 10-12: the attacks on authentication that worked, reproduced against a
real ``agent-center serve`` (SQLite, SQLite with workers, PostgreSQL), each refused now.

- CSRF from a page on another port of the center's host (a real Chromium);
- dashboard sessions outliving a new admin token;
- replayed signed requests (gate clearances, reports; heartbeats are idempotent and a replay no
  longer keeps a silent workstation online), across workers, hosts and restarts;
- reports without quota; log amplification; unthrottled guessing and a one-letter admin token;
- the public API docs page; slow (slowloris) clients; the bandwidth endpoint for anyone.
"""

from __future__ import annotations

import http.server
import json
import os
import re
import secrets
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import httpx
import pytest

from agent_kit.center.auth import SESSION_COOKIE
from agent_kit.center.clearance import verify_clearance
from agent_kit.core.wire import signing
from tests.center_seed import Center, Workstation, free_port, heartbeat, run_center
from tests.lab.chromium import CHROMIUM, CHROMIUM_FLAGS
from tests.lab.postgres import postgres_cluster

pytestmark = pytest.mark.lab

REQUIRED = {"vpn.connected": ("pass", None), "audio.headset": ("pass", None)}
BURST = 20          # settings.auth_failure_burst
LOG_BURST = 20      # request_log.LOG_BURST


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    with postgres_cluster() as url:
        yield url


def _db_args(kind: str, request: pytest.FixtureRequest) -> list[str]:
    return ["--db", request.getfixturevalue("pg_url")] if kind == "postgresql" else []


# Every center of this module on the shared PostgreSQL is a host of one center: they share its
# secrets key (docs/operations.md), as the first one sealed the center's secrets with it.
_PG_SECRETS_KEY = secrets.token_hex(32)


def _env(kind: str) -> dict[str, str]:
    return {"AGENT_CENTER_SECRETS_KEY": _PG_SECRETS_KEY} if kind == "postgresql" else {}


def _signed(ws: Workstation, method: str, path: str, body: bytes = b"",
            content_type: str = "application/json") -> dict[str, str]:
    """The headers of one signed request, to send (and send again) as captured."""
    headers = signing.signature_headers(ws.agent_id, ws.secret, method, path, body,
                                        int(time.time()))
    if body:
        headers["Content-Type"] = content_type
    return headers


def _log_lines(center: Center) -> list[str]:
    return (center.data_dir / "center.log").read_text("utf-8", "replace").splitlines()


# -- 5. CSRF from a same-site origin ----------------------------------------------------------
class _AttackerPage(http.server.BaseHTTPRequestHandler):
    """A page on another port of the center's host: a form that retires a workstation (what
    worked against the dashboard's SameSite=Strict cookie), and a no-cors fetch doing the same."""

    target = ""

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        page = (f'<!doctype html><title>win a prize</title>'
                f'<form id="f" method="post" action="{self.target}"></form>'
                f'<script>fetch("{self.target}", {{method: "POST", mode: "no-cors", '
                f'credentials: "include"}}).finally(() => document.getElementById("f")'
                f'.submit());</script>').encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(page)))
        self.end_headers()
        self.wfile.write(page)

    def log_message(self, *args: object) -> None:
        return None


def test_a_page_on_another_port_cannot_write_with_the_dashboard_session(tmp_path):
    from playwright.sync_api import sync_playwright

    admin_token = "csrf-test-admin-token-0123456789abcdef"
    with run_center(tmp_path / "center", admin_token=admin_token) as center:
        token = center.create_token(uses=2)
        victim, other = center.enroll(token, "victim-pc"), center.enroll(token, "other-pc")
        retire = f"{center.url}/api/v1/agents/{victim.agent_id}/retire"
        attacker = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()),
                                                   type("Page", (_AttackerPage,),
                                                        {"target": retire}))
        threading.Thread(target=attacker.serve_forever, daemon=True).start()
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM,
                                                     args=CHROMIUM_FLAGS, headless=True)
                try:
                    page = browser.new_context().new_page()
                    page.goto(center.url + "/")
                    page.wait_for_selector("#login:not([hidden])")
                    page.fill("#login-token", admin_token)
                    page.click("#login-form button[type=submit]")
                    page.wait_for_selector("#agents[data-loaded]")
                    # The attack: the admin opens the other port's page, logged in.
                    page.goto(f"http://127.0.0.1:{attacker.server_address[1]}/")
                    page.wait_for_url(retire)
                    answer = json.loads(page.inner_text("body"))
                    assert answer["error"] == "csrf", answer
                    # The dashboard itself still works: its own page writes with the cookie.
                    page.goto(center.url + "/")
                    page.wait_for_selector("#agents[data-loaded]")
                    status = page.evaluate(
                        "id => fetch(`/api/v1/agents/${id}/retire`, {method: 'POST'})"
                        ".then(r => r.status)", other.agent_id)
                    assert status == 200
                    page.click("#logout")
                    page.wait_for_selector("#login:not([hidden])")
                finally:
                    browser.close()
        finally:
            attacker.shutdown()
            attacker.server_close()
        with center.admin() as admin:
            assert admin.get(f"/api/v1/agents/{victim.agent_id}").json()["state"] != "retired"
            assert admin.get(f"/api/v1/agents/{other.agent_id}").json()["state"] == "retired"
        assert any("403 csrf" in line for line in _log_lines(center))


def test_cookie_writes_need_the_centers_origin_bearer_writes_do_not(tmp_path):
    with run_center(tmp_path / "center") as center:
        login = httpx.post(f"{center.url}/api/v1/session", json={"token": center.admin_token})
        cookie = {"Cookie": f"{SESSION_COOKIE}={login.cookies[SESSION_COOKIE]}"}
        other_port = f"http://127.0.0.1:{free_port()}"
        refused = [{}, {"Origin": other_port}, {"Origin": "null"},
                   {"Sec-Fetch-Site": "same-site", "Origin": center.url},
                   {"Sec-Fetch-Site": "cross-site"}]
        for headers in refused:
            r = httpx.post(f"{center.url}/api/v1/tokens", json={},
                           headers={**cookie, **headers})
            assert r.status_code == 403 and r.json()["error"] == "csrf", headers
        for headers in ({"Origin": center.url}, {"Sec-Fetch-Site": "same-origin"}):
            r = httpx.post(f"{center.url}/api/v1/tokens", json={},
                           headers={**cookie, **headers})
            assert r.status_code == 201, headers
        # Reading with the cookie, and writing with the Bearer token, need no Origin.
        assert httpx.get(f"{center.url}/api/v1/agents", headers=cookie).status_code == 200
        with center.admin() as admin:
            assert admin.post("/api/v1/tokens", json={}).status_code == 201
            made = admin.post("/api/v1/tokens", json={}).json()["token_id"]
        # A DELETE with the cookie too (a page cannot send one without a CORS preflight, which
        # the center never answers, but the check does not rely on that).
        r = httpx.delete(f"{center.url}/api/v1/tokens/{made}",
                         headers={**cookie, "Origin": other_port})
        assert r.status_code == 403 and r.json()["error"] == "csrf"


# -- 6. sessions outliving the admin token ----------------------------------------------------
@pytest.mark.parametrize("db", ["sqlite", "postgresql"])
def test_a_new_admin_token_ends_the_sessions_of_the_old_one(tmp_path, request, db):
    old, new = "old-admin-token-" + "a" * 32, "new-admin-token-" + "b" * 32
    data = tmp_path / "center"
    with run_center(data, admin_token=old, extra_args=_db_args(db, request),
                    env=_env(db)) as center:
        login = httpx.post(f"{center.url}/api/v1/session", json={"token": old})
        assert login.status_code == 204
        cookie = {"Cookie": f"{SESSION_COOKIE}={login.cookies[SESSION_COOKIE]}"}
        assert httpx.get(f"{center.url}/api/v1/agents", headers=cookie).status_code == 200
    with run_center(data, admin_token=old, extra_args=_db_args(db, request),
                    env=_env(db)) as center:
        # a restart with the same token keeps the session
        assert httpx.get(f"{center.url}/api/v1/agents", headers=cookie).status_code == 200
    with run_center(data, admin_token=new, extra_args=_db_args(db, request),
                    env=_env(db)) as center:
        r = httpx.get(f"{center.url}/api/v1/agents", headers=cookie)
        assert r.status_code == 401 and r.json()["error"] == "unauthorized"
        assert httpx.post(f"{center.url}/api/v1/session", json={"token": old}).status_code == 401
        assert httpx.post(f"{center.url}/api/v1/session", json={"token": new}).status_code == 204


# -- 7. replayed signed requests --------------------------------------------------------------
def _allowed_workstation(center: Center, hostname: str) -> Workstation:
    ws = center.enroll(center.create_token(), hostname)
    ws.send([heartbeat(1, datetime.now(UTC), REQUIRED)])
    return ws


@pytest.mark.parametrize("db", ["sqlite", "postgresql"])
def test_a_captured_gate_request_mints_one_clearance_across_hosts_and_restarts(tmp_path, request,
                                                                               db):
    args = _db_args(db, request)
    # hosts sharing one PostgreSQL share the center's secrets key (docs/operations.md)
    shared = _env(db)
    with run_center(tmp_path / "a", extra_args=args, env=shared) as a:
        ws = _allowed_workstation(a, "gate-pc")
        path = f"/api/v1/gate/{ws.agent_id}"
        captured = _signed(ws, "GET", path)
        first = httpx.get(a.url + path, headers=captured)
        assert first.status_code == 200 and first.json()["allowed"] is True
        key = httpx.get(f"{a.url}/api/v1/clearance-key").json()["public_key_pem"]
        verify_clearance(first.json()["clearance"], key, ws.agent_id)
        for _ in range(2):   # the attack: the same request again, inside the clock window
            again = httpx.get(a.url + path, headers=captured)
            assert again.status_code == 409 and again.json()["error"] == "replayed"
            assert "clearance" not in again.json()
        # Another spelling of the same signature is no way around it.
        upper = {**captured, signing.SIGNATURE_HEADER: captured[signing.SIGNATURE_HEADER].upper()}
        r = httpx.get(a.url + path, headers=upper)
        assert r.status_code == 401 and r.json()["error"] == "bad_signature"
        if db == "postgresql":   # another host on the same database knows it too
            with run_center(tmp_path / "b", extra_args=args, env=shared) as b:
                r = httpx.get(b.url + path, headers=captured)
                assert r.status_code == 409 and r.json()["error"] == "replayed"
        a_data = a.data_dir
    with run_center(a_data, extra_args=args, env=shared) as restarted:
        r = httpx.get(restarted.url + path, headers=captured)
        assert r.status_code == 409 and r.json()["error"] == "replayed"
        # the workstation itself, signing anew (seconds later, a new signature): served
        moved = Workstation(center_url=restarted.url, agent_id=ws.agent_id, secret=ws.secret)
        assert moved.request("GET", path).status_code == 200


def test_used_signatures_are_forgotten_once_out_of_the_clock_window(tmp_path):
    from agent_kit.center.database import Database
    from agent_kit.center.store import Store

    db = Database(f"sqlite:///{tmp_path / 'center.db'}")
    store = Store(db)
    store.setup()
    t0 = 1_800_000_000.0
    for i in range(50):
        assert store.use_signature(f"{i:064x}", t0 + i, None)
    assert not store.use_signature(f"{7:064x}", t0 + 7, None)      # a replay
    assert store.use_signature(f"{99:064x}", t0 + 400, sweep_before=t0 + 25)
    with db.transaction() as tx:
        left = tx.one("SELECT COUNT(*), MIN(expires_at) FROM used_signatures")
    assert left == (26, t0 + 25)   # 25..49 and the new one; the expired ones are gone


def test_two_workers_serve_a_captured_gate_request_once(tmp_path):
    with run_center(tmp_path / "center", extra_args=["--workers", "2"]) as center:
        ws = _allowed_workstation(center, "workers-pc")
        path = f"/api/v1/gate/{ws.agent_id}"
        captured = _signed(ws, "GET", path)

        def send(_: int) -> int:   # a connection each: the kernel spreads them over workers
            return httpx.get(center.url + path, headers=captured, timeout=30).status_code

        with ThreadPoolExecutor(8) as pool:
            statuses = Counter(pool.map(send, range(24)))
    assert statuses == {200: 1, 409: 23}


@pytest.mark.parametrize("db", ["sqlite", "postgresql"])
def test_a_captured_report_upload_stores_one_report(tmp_path, request, db):
    with run_center(tmp_path / "center", extra_args=_db_args(db, request),
                    env=_env(db)) as center:
        ws = center.enroll(center.create_token(), "report-pc")
        body = b"<!doctype html><title>report</title><p>fine</p>"
        captured = _signed(ws, "POST", "/api/v1/reports", body, "text/html; charset=utf-8")
        answers = [httpx.post(f"{center.url}/api/v1/reports", content=body, headers=captured)
                   for _ in range(3)]
        assert [a.status_code for a in answers] == [201, 409, 409]
        assert answers[1].json()["error"] == "replayed"
        with center.admin() as admin:
            stored = admin.get(f"/api/v1/agents/{ws.agent_id}/reports").json()["reports"]
        assert len(stored) == 1


def test_the_agent_signs_again_what_the_center_calls_replayed(tmp_path):
    """Two requests of one workstation alike to the byte, in one second (two processes of the
    agent): the second is signed again a second later, not refused."""
    from agent_kit.link.client import CenterClient
    from agent_kit.link.report_upload import upload_report
    from agent_kit.link.state_folder import Enrollment

    with run_center(tmp_path / "center") as center:
        ws = _allowed_workstation(center, "twice-pc")
        enrollment = Enrollment(center.url, ws.agent_id, ws.secret)
        frozen = float(int(time.time()))
        with CenterClient(enrollment, clock=lambda: frozen) as one, \
                CenterClient(enrollment, clock=lambda: frozen) as two:
            assert one.gate()["allowed"] is True
            assert two.gate()["allowed"] is True
        html = "<!doctype html><title>same</title>"
        ids = {upload_report(enrollment, html, clock=lambda: frozen).report_id for _ in "ab"}
        assert len(ids) == 2


def test_a_replayed_heartbeat_does_not_keep_a_silent_workstation_online(tmp_path):
    with run_center(tmp_path / "center") as center:
        ws = center.enroll(center.create_token(), "silent-pc")
        body = json.dumps({"heartbeats": [heartbeat(1, datetime.now(UTC), REQUIRED,
                                                     interval_s=1)]}).encode()
        captured = _signed(ws, "POST", "/api/v1/heartbeats", body)
        first = httpx.post(f"{center.url}/api/v1/heartbeats", content=body, headers=captured)
        assert first.json()["results"][0]["status"] == "stored"
        with center.admin() as admin:
            deadline = time.monotonic() + 60   # offline after interval + grace (11 s)
            while admin.get(f"/api/v1/agents/{ws.agent_id}").json()["state"] != "offline":
                assert time.monotonic() < deadline
                time.sleep(0.5)
            again = httpx.post(f"{center.url}/api/v1/heartbeats", content=body,
                               headers=captured)
            assert again.status_code == 200
            assert again.json()["results"][0]["status"] == "duplicate"
            assert admin.get(f"/api/v1/agents/{ws.agent_id}").json()["state"] == "offline"
            gate = admin.get(f"/api/v1/gate/{ws.agent_id}").json()
            assert gate["allowed"] is False and gate["clearance"] is None


# -- 7. report quotas -------------------------------------------------------------------------
def test_reports_have_a_count_and_a_size_quota_per_workstation(tmp_path):
    with run_center(tmp_path / "center", extra_args=["--reports-per-hour", "3",
                                                     "--report-storage-mib", "2"]) as center:
        token = center.create_token(uses=2)
        busy, big = center.enroll(token, "busy-pc"), center.enroll(token, "big-pc")
        # (each report its own: the same one signed again in one second would be a replay)
        small = "<!doctype html>" + "x" * 100_000
        answers = [busy.request("POST", "/api/v1/reports", content=f"{small}{i}".encode(),
                                content_type="text/html") for i in range(20)]
        assert [a.status_code for a in answers[:3]] == [201] * 3
        assert {a.status_code for a in answers[3:]} == {429}
        refused = answers[3]
        assert refused.json()["error"] == "report_quota" and "per hour" in refused.json()["detail"]
        assert 1 <= int(refused.headers["Retry-After"]) <= 3600
        # Bytes: two reports of 0.9 MiB fit in 2 MiB, a third does not (it is the same hour).
        large = "<!doctype html>" + "y" * 900 * 1024
        codes = [big.request("POST", "/api/v1/reports", content=f"{large}{i}".encode(),
                             content_type="text/html").status_code for i in range(3)]
        assert codes == [201, 201, 429]
        over = big.request("POST", "/api/v1/reports", content=b"z" * (2 * 1024 * 1024 + 1),
                           content_type="text/html")
        assert over.status_code == 413 and over.json()["error"] == "body_too_large"
        with center.admin() as admin:
            assert len(admin.get(f"/api/v1/agents/{busy.agent_id}/reports").json()
                       ["reports"]) == 3


def test_older_reports_make_room_within_the_storage_quota(tmp_path):
    from agent_kit.center.database import Database
    from agent_kit.center.store import ReportQuota, Store

    store = Store(Database(f"sqlite:///{tmp_path / 'center.db'}"))
    store.setup()
    t0 = 1_800_000_000.0
    token, _, _ = store.create_token(1, 3600, None, t0)
    made = store.enroll(token, "pc", None, t0)
    assert made is not None
    agent_id = made[0]
    page = "p" * 400_000
    quota = {"per_hour": 2, "storage_bytes": 1_000_000}
    first = [store.add_report(agent_id, page, t0 + i, **quota) for i in range(2)]
    with pytest.raises(ReportQuota) as refused:
        store.add_report(agent_id, page, t0 + 10, **quota)
    assert refused.value.retry_after_s == pytest.approx(3600 - 10)
    later = store.add_report(agent_id, page, t0 + 4000, **quota)   # an hour on: room is made
    kept = [r for r, _, _ in store.reports(agent_id)]
    assert later in kept and first[1] in kept and first[0] not in kept
    assert sum(n for _, _, n in store.reports(agent_id)) <= quota["storage_bytes"]


# -- 10. throttling of failed authentication --------------------------------------------------
def test_a_budget_per_address_refills_forgets_and_keys_ipv6_by_its_64():
    from agent_kit.center.throttle import SourceBudgets, source_key

    now = [0.0]
    budgets = SourceBudgets(3, 1 / 3.0, clock=lambda: now[0], max_sources=4)
    assert [budgets.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert budgets.take("a") == pytest.approx(3.0) and budgets.wait_s("a") == pytest.approx(3.0)
    assert budgets.take("b") == 0.0                       # another address: its own budget
    now[0] = 4.5
    assert budgets.take("a") == 0.0 and budgets.take("a") == pytest.approx(1.5)
    budgets.give_back("a", 2)
    assert budgets.take("a", 2) == 0.0
    for source in "cdefg":                                # bounded: the oldest are forgotten
        budgets.take(source)
    assert len(budgets._buckets) <= 4
    assert source_key("2001:db8:1:2:aaaa::1") == source_key("2001:db8:1:2:bbbb::9") \
        == "2001:db8:1:2::/64"
    assert source_key("2001:db8:1:3::1") != source_key("2001:db8:1:2::1")
    assert source_key("::ffff:192.0.2.7") == "192.0.2.7" and source_key(None) == "?"


def _client_from(address: str) -> httpx.Client:
    """A client whose connections come from another loopback address (another source)."""
    return httpx.Client(transport=httpx.HTTPTransport(local_address=address), timeout=60)


def _flood(send: Callable[[], httpx.Response], count: int = 1000) -> tuple[Counter[int], float,
                                                                            httpx.Response]:
    started = time.monotonic()
    statuses: Counter[int] = Counter()
    last = None
    for _ in range(count):
        last = send()
        statuses[last.status_code] += 1
    assert last is not None
    return statuses, time.monotonic() - started, last


KINDS = ["session_login", "enrollment_token", "gate_key", "admin_bearer", "session_cookie",
         "workstation_signature"]


@pytest.mark.parametrize("kind", KINDS)
def test_a_thousand_wrong_guesses_are_throttled_per_address(tmp_path, kind):
    # The default burst; a refill slow enough that no attempt comes back during the test.
    with run_center(tmp_path / "center", extra_args=["--auth-failure-refill", "3600"]) as center:
        good = center.enroll(center.create_token(), "good-pc")
        login = httpx.post(f"{center.url}/api/v1/session", json={"token": center.admin_token})
        session = login.cookies[SESSION_COOKIE]
        gate_key = subprocess.run(
            [sys.executable, "-c", "from agent_kit.center.cli import main; main()", "gate-key",
             "create", "--data-dir", str(center.data_dir)], capture_output=True, text=True,
            check=True).stdout.strip()
        path = f"/api/v1/gate/{good.agent_id}"
        client = httpx.Client(base_url=center.url, timeout=30)
        wrong: dict[str, Callable[[], httpx.Response]] = {
            "session_login": lambda: client.post("/api/v1/session",
                                                 json={"token": "x" * 40}),
            "enrollment_token": lambda: client.post("/api/v1/enroll", json={
                "token": "enr_guess", "hostname": "h"}),
            "gate_key": lambda: client.get(path, headers={"Authorization": "Bearer gate_guess"}),
            "admin_bearer": lambda: client.get("/api/v1/agents",
                                               headers={"Authorization": "Bearer adm_guess"}),
            "session_cookie": lambda: client.get("/api/v1/agents", headers={
                "Cookie": f"{SESSION_COOKIE}=ses_guess"}),
            "workstation_signature": lambda: client.post(
                "/api/v1/heartbeats", content=b"{}", headers={
                    "Content-Type": "application/json", "X-Agent-Id": good.agent_id,
                    "X-Agent-Timestamp": str(int(time.time())),
                    "X-Agent-Signature": "0" * 64}),
        }
        statuses, elapsed_s, last = _flood(wrong[kind])
        assert statuses == {401: BURST, 429: 1000 - BURST}, statuses
        assert last.json()["error"] == "too_many_failures"
        assert 1 <= int(last.headers["Retry-After"]) <= 3600
        # No way around it by claiming another address.
        spoofed = client.post("/api/v1/session", json={"token": "y" * 40},
                              headers={"X-Forwarded-For": "203.0.113.9"})
        assert spoofed.status_code == 429
        # What a person types is not even checked while the address is throttled ...
        right = client.post("/api/v1/session", json={"token": center.admin_token})
        assert right.status_code == 429
        bearer = client.get("/api/v1/agents",
                            headers={"Authorization": f"Bearer {center.admin_token}"})
        assert bearer.status_code == 429
        # ... what the center generated still works: one bad client behind a shared address
        # does not knock the good ones out.
        assert good.send([heartbeat(1, datetime.now(UTC), REQUIRED)])["results"]
        assert client.get(path, headers={"Authorization": f"Bearer {gate_key}"}) \
            .status_code == 200
        assert client.get("/api/v1/agents", headers={
            "Cookie": f"{SESSION_COOKIE}={session}"}).status_code == 200
        # Another address is not throttled.
        with _client_from("127.0.0.2") as elsewhere:
            assert elsewhere.post(f"{center.url}/api/v1/session",
                                  json={"token": "x" * 40}).status_code == 401
        client.close()
        refused_lines = [line for line in _log_lines(center) if line.startswith("refused ")]
        assert len(refused_lines) <= LOG_BURST + elapsed_s / 3.0 + 10, len(refused_lines)


def test_a_short_admin_token_stops_the_start(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-c", "from agent_kit.center.cli import main; main()", "serve",
         "--data-dir", str(tmp_path), "--port", str(free_port()), "--udp-port", "0"],
        capture_output=True, text=True, timeout=60,
        env={**os.environ, "AGENT_CENTER_ADMIN_TOKEN": "a"})
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "AGENT_CENTER_ADMIN_TOKEN" in lines[0] and "32" in lines[0]
    assert not (tmp_path / "center.db").exists()


# -- 8. log amplification ---------------------------------------------------------------------
def _with_body(head: bytes, body: bytes) -> bytes:
    return head + b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body


def test_each_refused_request_writes_at_most_one_bounded_escaped_line(tmp_path):
    with run_center(tmp_path / "center") as center:
        ws = center.enroll(center.create_token(), "log-pc")
        port = int(center.url.rsplit(":", 1)[1])
        before = len(_log_lines(center))
        secret_marker = "SECRETMARKER-" + "q" * 20
        hostile: list[bytes] = [
            b"GET /api/v1/agents HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
            + secret_marker.encode() + b"\r\n\r\n",
            b"GET /nowhere%0a%1b[31mINJECTED%0d%0a HTTP/1.1\r\nHost: x\r\n\r\n",
            b"GET /" + b"a" * 3000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
            _with_body(b"POST /api/v1/enroll HTTP/1.1\r\nHost: x\r\nContent-Type: "
                       b"application/json\r\n", b'{"token": "' + secret_marker.encode() + b'", '),
            b"POST /api/v1/heartbeats HTTP/1.1\r\nHost: x\r\nX-Agent-Id: " + ws.agent_id.encode()
            + b"\r\nX-Agent-Timestamp: \xc2\xb2\r\nX-Agent-Signature: " + b"a" * 64
            + b"\r\nContent-Length: 2\r\n\r\n{}",
            b"POST /api/v1/heartbeats HTTP/1.1\r\nHost: x\r\nX-Agent-Id: " + ws.agent_id.encode()
            + b"\r\nX-Agent-Timestamp: 1\r\nX-Agent-Signature: " + "\u00e9".encode() * 64
            + b"\r\nContent-Length: 2\r\n\r\n{}",
            b"DELETE /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
            b"POST /api/v1/reports HTTP/1.1\r\nHost: x\r\nContent-Length: 999999999\r\n\r\n",
        ]
        for raw in hostile:
            with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
                sock.sendall(raw.replace(b"Host: x\r\n", b"Host: x\r\nConnection: close\r\n"))
                status = sock.recv(65536).split(b"\r\n", 1)[0]
                assert re.match(rb"HTTP/1\.1 4\d\d ", status), (raw[:60], status)
        deadline = time.monotonic() + 10
        while len(_log_lines(center)) - before < len(hostile) and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(0.5)   # anything more would come now
        added = _log_lines(center)[before:]
    assert len(added) == len(hostile), added
    text = "\n".join(added)
    assert secret_marker not in text
    assert "INJECTED" in text and "\x1b" not in text and "\\n" in text
    assert max(len(line) for line in added) < 300


# -- 11. API docs, slow clients ---------------------------------------------------------------
def test_no_api_docs_page_and_no_script_from_another_origin(tmp_path):
    with run_center(tmp_path / "center") as center:
        docs = httpx.get(f"{center.url}/api/v1/docs")
        assert docs.status_code == 404 and docs.json()["error"] == "not_found"
        assert httpx.get(f"{center.url}/api/v1/openapi.json").json()["openapi"]
        for page in ("/", "/agents/ws-x"):
            html = httpx.get(center.url + page).text
            sources = re.findall(r'<(?:script|link)[^>]+(?:src|href)="([^"]+)"', html)
            assert sources and all(s.startswith("/static/") for s in sources), sources


def _slow_client(port: int, start: bytes, trickle: bytes, every_s: float = 0.3,
                 give_up_s: float = 60.0) -> bytes:
    """Send ``start``, then ``trickle`` every ``every_s`` for as long as the center keeps the
    connection; what it answered (b"" when it just closed)."""
    answer = b""
    with socket.create_connection(("127.0.0.1", port), timeout=every_s) as sock:
        if start:
            sock.sendall(start)
        deadline = time.monotonic() + give_up_s
        while time.monotonic() < deadline:
            try:
                data = sock.recv(4096)
            except TimeoutError:
                if trickle:
                    try:
                        sock.sendall(trickle)
                    except OSError:
                        break
                continue
            except OSError:
                break
            if not data:
                return answer
            answer += data
    raise AssertionError(f"the center kept a slow connection {give_up_s} s: {answer[:200]!r}")


def test_slow_clients_are_closed_while_others_are_served(tmp_path):
    with run_center(tmp_path / "center", extra_args=["--request-timeout", "2"]) as center:
        port = int(center.url.rsplit(":", 1)[1])
        served: list[int] = []
        stop = threading.Event()

        def others() -> None:
            with httpx.Client(base_url=center.url, timeout=10) as client:
                while not stop.is_set():
                    served.append(client.get("/healthz").status_code)
                    time.sleep(0.05)

        slow_headers = b"GET /healthz HTTP/1.1\r\nHost: x\r\n"
        slow_body = (b"POST /api/v1/enroll HTTP/1.1\r\nHost: x\r\nContent-Type: "
                     b"application/json\r\nContent-Length: 100000\r\n\r\n{")
        slow_heartbeat = (b"POST /api/v1/heartbeats HTTP/1.1\r\nHost: x\r\nContent-Type: "
                          b"application/json\r\nContent-Length: 100000\r\nX-Agent-Id: ws-1\r\n"
                          b"X-Agent-Timestamp: " + str(int(time.time())).encode()
                          + b"\r\nX-Agent-Signature: " + b"a" * 64 + b"\r\n\r\n{")
        other = threading.Thread(target=others)
        other.start()
        try:
            with ThreadPoolExecutor(24) as pool:
                header_answers = list(pool.map(
                    lambda _: _slow_client(port, slow_headers, b"X-a: b\r\n"), range(10)))
                body_answers = list(pool.map(
                    lambda start: _slow_client(port, start, b" "),
                    [slow_body] * 5 + [slow_heartbeat] * 5))
                idle_answers = list(pool.map(lambda _: _slow_client(port, b"", b""), range(4)))
        finally:
            stop.set()
            other.join()
        for answer in header_answers + body_answers:
            assert answer.startswith(b"HTTP/1.1 408 "), answer[:200]
            assert json.loads(answer.split(b"\r\n\r\n", 1)[1])["error"] == "request_timeout"
        assert idle_answers == [b""] * 4     # an idle connection is just closed
        assert served and set(served) == {200}
        lines = [line for line in _log_lines(center) if "closed a slow request" in line]
        assert len(lines) == 20


# -- 12. the bandwidth endpoint ---------------------------------------------------------------
def _download(url: str, local: str = "127.0.0.1", stop_after: int | None = None
              ) -> tuple[int, int, httpx.Response]:
    """(status, bytes read, response) of one download, read whole or up to ``stop_after``."""
    with _client_from(local) as client, client.stream("GET", url) as response:
        got = 0
        for chunk in response.iter_bytes(1 << 20):
            got += len(chunk)
            if stop_after is not None and got >= stop_after:
                break
        return response.status_code, got, response


def test_the_bandwidth_endpoint_gives_each_address_a_budget(tmp_path):
    with run_center(tmp_path / "center", extra_args=["--bandwidth-budget-mib", "300"]) as center:
        big = f"{center.url}/speedtest/speedtest/random10000x10000.jpg"   # 200 MB
        status, got, _ = _download(big)
        assert (status, got) == (200, 200_000_000)
        status, _, refused = _download(big)
        assert status == 429
        assert int(refused.headers["Retry-After"]) >= 1
        # What speedtest-cli needs to find the endpoint stays served.
        latency = httpx.get(f"{center.url}/speedtest/speedtest/latency.txt")
        assert latency.status_code == 200 and latency.text == "test=test"
        # Another address has its own budget; a download cut short gives back what it did not
        # send (once the center has seen the client go), so that address can start another.
        assert _download(big, "127.0.0.2", stop_after=1 << 20)[0] == 200
        deadline = time.monotonic() + 30
        while (again := _download(big, "127.0.0.2", stop_after=1 << 20)[0]) == 429:
            assert time.monotonic() < deadline, "the unsent bytes never came back"
            time.sleep(0.2)
        assert again == 200
        # Uploads are charged too: after 120 MB up, 200 MB down no longer fit in 300 MiB.
        with _client_from("127.0.0.3") as client:
            up = client.post(f"{center.url}/speedtest/speedtest/upload.php",
                             content=b"u" * 120_000_000)
        assert up.status_code == 200 and up.text == "size=120000000"
        assert _download(big, "127.0.0.3")[0] == 429


def test_a_budget_smaller_than_a_file_says_so(tmp_path):
    with run_center(tmp_path / "center", extra_args=["--bandwidth-budget-mib", "10"]) as center:
        r = httpx.get(f"{center.url}/speedtest/speedtest/random10000x10000.jpg")
        assert r.status_code == 429 and "larger than" in r.json()["detail"]
        small = httpx.get(f"{center.url}/speedtest/speedtest/random1000x1000.jpg")
        assert small.status_code == 200 and len(small.content) == 2_000_000
