"""Issue 15, points 2 and 12 (first item): the login clearance, attacked on the path.

Real parts: the center's own app (``create_app``) served by uvicorn on a loopback socket, on
SQLite and on a throwaway PostgreSQL (the clearance key pair lives in the database); the real
``agent-kit enroll`` and ``agent-kit login`` as subprocesses; and between them an attacker on
the path: a small HTTP server (:class:`OnPath`) that forwards to the center, or answers as the
attack needs. The center's clock is its injectable one (``CenterSettings.now``), so the center
can issue a clearance an hour ago; the workstation's clock is this machine's. The monitor's
state file (the local gate, open) is written with the monitor's own writer: what is attacked
here is the center's half of the login, and the local half is user-writable anyway.

The attacks that worked before, each a test below:
- an old genuine clearance, made to look current by a forged 401 ``clock_skew`` (its
  ``server_time`` an hour old), started the softphone under ``center_unreachable = "deny"``;
- a workstation with no pinned ``clearance_key.pem`` pinned whatever key the path served;
- under ``center_unreachable = "local"``, a path answering 503 gave a login on the local gate
  alone, without end.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent_kit.core.wire import heartbeat as wire_heartbeat
from agent_kit.loop.state_file import MonitorState, write_state
from tests.center_seed import Workstation, free_port, heartbeat
from tests.lab.postgres import postgres_cluster

pytestmark = pytest.mark.lab

# What the default policy blocks on when unknown, and good readings (the center's gate allows).
GOOD = {"vpn.connected": ("pass", None), "audio.headset": ("pass", None),
        "network.jitter": ("pass", 4.0), "network.mos": ("pass", 4.3)}
HOUR_S = 3600.0


# ------------------------------------------------------------------------------ the center

class CenterClock:
    """The center's clock: this machine's, shifted by ``shift_s`` when a test says so."""

    def __init__(self) -> None:
        self.shift_s = 0.0

    def __call__(self) -> float:
        return time.time() + self.shift_s


@dataclass
class LiveCenter:
    url: str
    admin_token: str
    clock: CenterClock

    def admin(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30.0,
                            headers={"Authorization": f"Bearer {self.admin_token}"})

    def token(self) -> str:
        with self.admin() as admin:
            r = admin.post("/api/v1/tokens", json={"uses": 1, "ttl_s": 3 * 3600})
        r.raise_for_status()
        return str(r.json()["token"])

    def public_key_pem(self) -> str:
        return str(httpx.get(f"{self.url}/api/v1/clearance-key").json()["public_key_pem"])


@contextlib.contextmanager
def serve_center(db_url: str, data_dir: Path) -> Iterator[LiveCenter]:
    """The center's app with an injectable clock, served by uvicorn in a thread."""
    import uvicorn

    from agent_kit.center.app import create_app
    from agent_kit.center.settings import CenterSettings

    clock, admin_token = CenterClock(), "admin-" + uuid.uuid4().hex
    data_dir.mkdir(parents=True, exist_ok=True)
    settings = CenterSettings(db_url=db_url, data_dir=str(data_dir), now=clock,
                              serve_dashboard=False, mount_speedtest=False)
    saved = os.environ.get("AGENT_CENTER_ADMIN_TOKEN")
    os.environ["AGENT_CENTER_ADMIN_TOKEN"] = admin_token   # read once, by build_runtime
    try:
        app = create_app(settings)
    finally:
        if saved is None:
            del os.environ["AGENT_CENTER_ADMIN_TOKEN"]
        else:
            os.environ["AGENT_CENTER_ADMIN_TOKEN"] = saved
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, ws="none",
                                           log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, name="center", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the center did not start")
        time.sleep(0.05)
    try:
        yield LiveCenter(f"http://127.0.0.1:{port}", admin_token, clock)
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    with postgres_cluster() as url:
        yield url


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def center(request: pytest.FixtureRequest,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveCenter]:
    data_dir = tmp_path_factory.mktemp(f"center-{request.param}")
    db_url = (request.getfixturevalue("pg_url") if request.param == "postgresql"
              else f"sqlite:///{data_dir / 'center.db'}")
    with serve_center(db_url, data_dir) as live:
        yield live


@pytest.fixture(autouse=True)
def center_clock_back(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if "center" in request.fixturenames:
        request.getfixturevalue("center").clock.shift_s = 0.0


# ------------------------------------------------------------------------- the attacker

Forged = tuple[int, dict[str, Any]]
# (method, path?query, headers) -> a forged answer, or None to forward the request
Answer = Callable[[str, str, dict[str, str]], Forged | None]


@dataclass
class OnPath:
    """An HTTP server between the workstation and its center. With no ``answer`` (or when it
    gives None) a request is forwarded to the center as it came; else the forged answer goes
    back. ``seen``: every request line, in order."""

    center_url: str
    answer: Answer | None = None
    seen: list[str] = field(default_factory=list)
    server: http.server.ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def gate_requests(self) -> list[str]:
        return [line for line in self.seen if line.startswith("GET /api/v1/gate/")]


class _OnPathHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    onpath: OnPath

    def _any(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        onpath = self.onpath
        onpath.seen.append(f"{self.command} {self.path}")
        headers = {k: v for k, v in self.headers.items()
                   if k.lower() not in ("host", "content-length", "connection",
                                        "accept-encoding")}
        forged = onpath.answer(self.command, self.path, headers) if onpath.answer else None
        if forged is None:
            r = httpx.request(self.command, onpath.center_url + self.path, content=body,
                              headers=headers, timeout=30.0)
            status, ctype, data = r.status_code, r.headers.get("content-type", ""), r.content
        else:
            status, ctype = forged[0], "application/json"
            data = json.dumps(forged[1]).encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = _any  # noqa: N815 - http.server's names

    def log_message(self, *args: object) -> None:
        return None


@pytest.fixture
def onpath(center: LiveCenter) -> Iterator[OnPath]:
    path = OnPath(center.url)
    handler = type("Handler", (_OnPathHandler,), {"onpath": path})
    path.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=path.server.serve_forever, name="onpath", daemon=True)
    thread.start()
    yield path
    path.server.shutdown()
    path.server.server_close()


def gate_only(forge: Callable[[str], Forged | None]) -> Answer:
    """Forge the gate's answers only (``forge`` gets the path?query); forward the rest."""
    return lambda method, path, headers: (forge(path) if path.startswith("/api/v1/gate/")
                                          else None)


def nonce_of(path: str) -> str | None:
    return httpx.URL(path).params.get("nonce")


def attacker_key() -> tuple[Ed25519PrivateKey, str]:
    key = Ed25519PrivateKey.generate()
    return key, key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


# ------------------------------------------------------------------------- the workstation

@dataclass
class Home:
    """A workstation's state folder and the real ``agent-kit`` run on it."""

    path: Path
    seq: int = 0

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "agent_kit.face.cli", *args],
                              env={**os.environ, "AGENT_KIT_HOME": str(self.path)},
                              capture_output=True, text=True, timeout=120)

    def login(self, *policy: str) -> tuple[subprocess.CompletedProcess[str], bool]:
        """``agent-kit login [--policy P] -- touch MARKER`` with the local gate open (as a
        running monitor keeps it); and whether it started the command."""
        self.open_local_gate()
        marker = self.path / f"softphone-{uuid.uuid4().hex}"
        args = ["--policy", self.policy_file(*policy)] if policy else []
        run = self.cli("login", *args, "--", "touch", str(marker))
        return run, marker.exists()

    def policy_file(self, *lines: str) -> str:
        path = self.path.parent / f"policy-{uuid.uuid4().hex}.toml"
        path.write_text("[gate]\n" + "\n".join(lines) + "\n")
        return str(path)

    @property
    def enrollment(self) -> dict[str, Any]:
        return dict(json.loads((self.path / "enrollment.json").read_text()))

    @property
    def key_file(self) -> Path:
        return self.path / "clearance_key.pem"

    def open_local_gate(self) -> None:
        """The monitor's state file as a running monitor with an open gate writes it."""
        now = time.time()
        write_state(MonitorState(agent_id=self.enrollment["agent_id"], pid=os.getpid(),
                                 updated_at=now, interval_s=15, gate_open=True,
                                 gate_since=now - 600, reasons=(), blocking=(), watching=(),
                                 awaiting_full_check=False, full_check_at=now - 600),
                    self.path / "gate.json")

    def report_good(self, center: LiveCenter) -> None:
        """A genuine heartbeat, signed with this workstation's secret at the center's time."""
        e = self.enrollment
        self.seq += 1
        at = center.clock()
        ws = Workstation(center.url, e["agent_id"], e["secret"])
        r = ws.request("POST", wire_heartbeat.PATH, wire_heartbeat.heartbeat_batch(
            [heartbeat(self.seq, datetime.fromtimestamp(at, UTC), GOOD)]), timestamp=int(at))
        assert r.status_code == 200, r.text


def enrolled(tmp_path: Path, center: LiveCenter, onpath: OnPath) -> Home:
    """Enrolled by the real ``agent-kit enroll``, through the path while it is honest."""
    home = Home(tmp_path / "agent")
    run = home.cli("enroll", "--center", onpath.url, "--token", center.token())
    assert run.returncode == 0, run.stderr
    assert home.key_file.read_text() == center.public_key_pem()   # pinned, the genuine key
    return home


DENY = 'center_unreachable = "deny"'


# ---------------------------------------------------------------------------- the tests

def test_an_honest_path_logs_in_with_a_clearance_bound_to_the_login(tmp_path, center, onpath):
    """The control: the real login succeeds, so the refusals below are the attacks'."""
    home = enrolled(tmp_path, center, onpath)
    home.report_good(center)
    run, started = home.login(DENY)
    assert run.returncode == 0 and started, run.stderr
    assert "cleared by the center" in run.stderr
    [gate] = onpath.gate_requests()
    nonce = nonce_of(gate)
    assert nonce and len(nonce) >= 32
    claims = jwt.decode((home.path / "last_clearance.jwt").read_text(),
                        center.public_key_pem(), algorithms=["EdDSA"])
    assert claims["nonce"] == nonce and claims["sub"] == home.enrollment["agent_id"]


def test_an_old_genuine_clearance_behind_a_forged_clock_skew_starts_nothing(
        tmp_path, center, onpath):
    """Point 2: an hour ago the center cleared this workstation (the ACD asked, as it does);
    the path kept that clearance. Now the center would deny (no heartbeat for an hour), and
    the path answers login's gate request with 401 clock_skew and a server_time an hour old,
    then, on the retry, with the old clearance."""
    home = enrolled(tmp_path, center, onpath)
    agent_id = home.enrollment["agent_id"]
    center.clock.shift_s = -HOUR_S
    home.report_good(center)
    with center.admin() as acd:
        then = acd.get(f"/api/v1/gate/{agent_id}").json()
    center.clock.shift_s = 0.0
    old = then["clearance"]
    genuine = jwt.decode(old, home.key_file.read_text(), algorithms=["EdDSA"],
                         options={"verify_exp": False})
    assert genuine["sub"] == agent_id and time.time() - genuine["iat"] > HOUR_S - 60
    with center.admin() as acd:
        assert acd.get(f"/api/v1/gate/{agent_id}").json()["allowed"] is False   # now: denied

    answers = iter([(401, {"error": "clock_skew", "detail": "timestamp too far",
                           "server_time": genuine["iat"]}),
                    (200, {**then, "as_of": "2026-01-01T00:00:00+00:00"})])
    onpath.answer = gate_only(lambda path: next(answers))
    run, started = home.login(DENY)
    assert run.returncode == 1 and not started, run.stderr
    assert "not made for this login" in run.stderr
    assert len(onpath.gate_requests()) == 2 and all(nonce_of(g) for g in onpath.gate_requests())


def test_a_fresh_genuine_clearance_for_another_request_starts_nothing(tmp_path, center, onpath):
    """The path hands login a clearance the center signed a moment ago for someone else's
    request: the ACD's (no nonce), or one the path asked for with its own nonce in place of
    login's (the query string is outside the request signature)."""
    home = enrolled(tmp_path, center, onpath)
    agent_id = home.enrollment["agent_id"]
    home.report_good(center)
    with center.admin() as acd:
        acds = acd.get(f"/api/v1/gate/{agent_id}").json()
    assert acds["allowed"] is True
    onpath.answer = gate_only(lambda path: (200, acds))
    run, started = home.login(DENY)
    assert run.returncode == 1 and not started and "not made for this login" in run.stderr

    def swap_nonce(method: str, path: str, headers: dict[str, str]) -> Forged | None:
        if not path.startswith("/api/v1/gate/"):
            return None
        # login's own signed headers, the path's nonce: the center accepts the request (the
        # query is outside the signature) and signs the path's nonce, not login's
        r = httpx.get(center.url + path.split("?")[0], params={"nonce": "A" * 32},
                      headers=headers, timeout=30)
        assert r.status_code == 200 and r.json()["allowed"] is True, r.text
        return r.status_code, r.json()

    onpath.answer = swap_nonce
    run, started = home.login(DENY)
    assert run.returncode == 1 and not started, run.stderr
    assert "not made for this login" in run.stderr


def test_enrollment_fails_and_keeps_the_token_when_the_path_hides_the_key(
        tmp_path, center, onpath):
    home = Home(tmp_path / "agent")
    token = center.token()
    onpath.answer = lambda method, path, headers: (
        (404, {"error": "not_found", "detail": "no key"}) if path == "/api/v1/clearance-key"
        else None)
    run = home.cli("enroll", "--center", onpath.url, "--token", token)
    assert run.returncode == 2 and run.stdout == ""
    assert "no login clearance key" in run.stderr and "token is still good" in run.stderr
    assert run.stderr.count("\n") == 1
    assert "POST /api/v1/enroll" not in onpath.seen
    assert not (home.path / "enrollment.json").exists() and not home.key_file.exists()
    onpath.answer = None                                    # the same token still enrolls
    run = home.cli("enroll", "--center", onpath.url, "--token", token)
    assert run.returncode == 0, run.stderr
    assert home.key_file.read_text() == center.public_key_pem()


def test_login_never_fetches_a_key_an_unpinned_workstation_must_enroll_again(
        tmp_path, center, onpath):
    """The path serves its own key and clearances signed with it, nonce echoed: a workstation
    enrolled before keys were pinned used to fetch and pin that key, and start."""
    home = enrolled(tmp_path, center, onpath)
    agent_id = home.enrollment["agent_id"]
    home.report_good(center)
    forged_key, forged_pem = attacker_key()

    def forge(method: str, path: str, headers: dict[str, str]) -> Forged | None:
        if path == "/api/v1/clearance-key":
            return 200, {"alg": "EdDSA", "public_key_pem": forged_pem}
        if path.startswith("/api/v1/gate/"):
            now = int(time.time())
            token = jwt.encode({"sub": agent_id, "allowed": True, "iat": now, "exp": now + 120,
                                "nonce": nonce_of(path)}, forged_key, algorithm="EdDSA")
            return 200, {"allowed": True, "reasons": [], "as_of": "x", "clearance": token}
        return None

    onpath.answer = forge
    pinned = home.key_file.read_text()
    home.key_file.unlink()                   # as an enrollment made before pinning left it
    onpath.seen.clear()
    for policy in ((), (DENY,)):
        run, started = home.login(*policy)
        assert run.returncode == 2 and not started, run.stderr
        assert "enroll it again" in run.stderr
    assert onpath.seen == [] and not home.key_file.exists()   # nothing asked, nothing pinned
    home.key_file.write_text(pinned)
    run, started = home.login(DENY)
    assert run.returncode == 1 and not started and "invalid clearance" in run.stderr
    assert "GET /api/v1/clearance-key" not in onpath.seen


def test_a_path_answering_503_gets_a_local_login_only_shortly_after_a_clearance(
        tmp_path, center, onpath):
    """Point 12 (first item), under the default ``center_unreachable = "local"``."""
    home = enrolled(tmp_path, center, onpath)
    onpath.answer = gate_only(lambda path: (503, {"error": "unavailable", "detail": "x"}))
    run, started = home.login()
    assert run.returncode == 1 and not started
    assert "never cleared" in run.stderr and "30 min" in run.stderr

    onpath.answer = None                                       # honest: a real clearance
    home.report_good(center)
    run, started = home.login()
    assert run.returncode == 0 and started, run.stderr
    onpath.answer = gate_only(lambda path: (503, {"error": "unavailable", "detail": "x"}))
    run, started = home.login()
    assert run.returncode == 0 and started, run.stderr
    assert "local gate alone" in run.stderr and "cannot be reached" in run.stderr
    assert "for 30 min" in run.stderr
    run, started = home.login(DENY)
    assert run.returncode == 1 and not started

    issued_at = jwt.decode((home.path / "last_clearance.jwt").read_text(),
                           options={"verify_signature": False})["iat"]
    while time.time() - issued_at <= 2.0:    # older than the limit below
        time.sleep(0.2)
    run, started = home.login("local_login_max_s = 2")
    assert run.returncode == 1 and not started
    assert "too old" in run.stderr


def test_the_gate_api_signs_a_nonce_in_and_keeps_working_without_one(tmp_path, center):
    """The ACD's side of docs/center-api.md: no nonce, the same clearance as before; a nonce,
    signed in; a malformed one, a 4xx JSON reason."""
    from agent_kit.center.clearance import verify_clearance

    token = center.token()
    made = httpx.post(f"{center.url}/api/v1/enroll", json={"token": token, "hostname": "acd"})
    data = made.json()
    ws = Workstation(center.url, data["agent_id"], data["secret"])
    ws.send([heartbeat(1, datetime.now(UTC), GOOD)])
    pem = center.public_key_pem()
    with center.admin() as acd:
        plain = acd.get(f"/api/v1/gate/{ws.agent_id}").json()
        claims = verify_clearance(plain["clearance"], pem, ws.agent_id)
        assert "nonce" not in claims and claims["exp"] - claims["iat"] == 120
        nonce = "n0nce_-" + "x" * 20
        bound = acd.get(f"/api/v1/gate/{ws.agent_id}", params={"nonce": nonce}).json()
        assert verify_clearance(bound["clearance"], pem, ws.agent_id, nonce)["nonce"] == nonce
        with pytest.raises(jwt.InvalidTokenError):
            verify_clearance(plain["clearance"], pem, ws.agent_id, nonce)
        for bad in ("short", "x" * 129, "has space and more than 16", "é" * 20):
            r = acd.get(f"/api/v1/gate/{ws.agent_id}", params={"nonce": bad})
            assert r.status_code == 422 and r.json()["error"] == "validation_error", r.text
    own = ws.request("GET", f"/api/v1/gate/{ws.agent_id}?nonce={nonce}")
    assert own.status_code == 200
    assert verify_clearance(own.json()["clearance"], pem, ws.agent_id, nonce)
