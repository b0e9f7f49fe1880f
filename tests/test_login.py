"""`status`/`login` decisions: local gate AND the center's EdDSA-signed clearance.

The center here answers through httpx.MockTransport with clearances signed by a real Ed25519
key (cryptography + PyJWT); the real center is in tests/test_monitor_faults.py.
"""

from __future__ import annotations

import dataclasses
import os
import stat
import subprocess
import sys

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent_kit.face.login import EXIT_CLOSED, EXIT_NO_STATE, EXIT_OPEN, decide_login, local_gate
from agent_kit.link.enrollment import EnrollError, clearance_key_path, enroll
from agent_kit.link.state_folder import Enrollment, enrollment_path, save_enrollment
from agent_kit.loop.state_file import MonitorState, write_state

NOW = 1_800_000_000.0
ENR = Enrollment(center_url="http://center.test", agent_id="ws-1", secret="k" * 64)


def key_pair() -> tuple[Ed25519PrivateKey, str]:
    key = Ed25519PrivateKey.generate()
    pem = key.public_key().public_bytes(serialization.Encoding.PEM,
                                        serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    return key, pem


CENTER_KEY, CENTER_PEM = key_pair()


def clearance(sub: str = "ws-1", iat: float = NOW, key=CENTER_KEY, allowed=True) -> str:
    return jwt.encode({"sub": sub, "allowed": allowed, "iat": int(iat), "exp": int(iat) + 120},
                      key, algorithm="EdDSA")


def gate_center(answer: dict | Exception | httpx.Response):
    def handler(request: httpx.Request) -> httpx.Response:
        if isinstance(answer, Exception):
            raise answer
        if isinstance(answer, httpx.Response):
            return answer
        assert request.url.path == "/api/v1/gate/ws-1"
        assert "X-Agent-Signature" in request.headers
        return httpx.Response(200, json=answer)

    return httpx.MockTransport(handler)


def state(**changes) -> MonitorState:
    base = MonitorState(agent_id="ws-1", pid=1, updated_at=NOW, interval_s=15, gate_open=True,
                        gate_since=NOW - 100, reasons=(), blocking=(), watching=(),
                        awaiting_full_check=False, full_check_at=NOW - 100)
    return dataclasses.replace(base, **changes)


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("AGENT_KIT_HOME", str(tmp_path))
    save_enrollment(ENR)
    clearance_key_path().write_text(CENTER_PEM)
    write_state(state())
    return tmp_path


ALLOWED = {"allowed": True, "reasons": [], "as_of": "x", "clearance": None}


def decide(answer, **kw):
    return decide_login(now=lambda: NOW, transport=gate_center(answer), **kw)


def test_open_gate_and_a_valid_clearance_allow(home):
    d = decide({**ALLOWED, "clearance": clearance()})
    assert d.allowed and d.code == EXIT_OPEN and d.claims["sub"] == "ws-1"


def test_a_closed_local_gate_refuses_without_asking_the_center(home):
    write_state(state(gate_open=False, reasons=("Jitter: 45 ms",), blocking=("network.jitter",)))
    d = decide(AssertionError("the center must not be asked"))
    assert not d.allowed and d.code == EXIT_CLOSED and d.reasons == ("Jitter: 45 ms",)


def test_no_monitor_running_is_exit_2(home):
    write_state(state(updated_at=NOW - 600))
    view = local_gate(lambda: NOW)
    assert view.code == EXIT_NO_STATE and "not running" in view.headline
    assert decide(ALLOWED).code == EXIT_NO_STATE


def test_not_enrolled_is_exit_2(home):
    enrollment_path().unlink()
    assert local_gate(lambda: NOW).code == EXIT_NO_STATE
    run = subprocess.run([sys.executable, "-m", "agent_kit.face.cli", "status"],
                         env={**os.environ, "AGENT_KIT_HOME": str(home)},
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 2 and run.stdout == ""
    assert run.stderr.count("\n") == 1 and "agent-kit enroll" in run.stderr


def test_the_center_denying_refuses_with_its_reasons(home):
    d = decide({"allowed": False, "reasons": ["No heartbeat since 12:00"], "as_of": "x",
                "clearance": None})
    assert not d.allowed and d.code == EXIT_CLOSED and d.reasons == ("No heartbeat since 12:00",)


@pytest.mark.parametrize("token, why", [
    (lambda: clearance(key=key_pair()[0]), "invalid clearance"),       # forged: another key
    (lambda: clearance(sub="ws-2"), "another workstation"),
    (lambda: clearance(iat=NOW - 1000), "expired"),
    (lambda: clearance(allowed=False), "does not allow"),
    (lambda: "not.a.jwt", "invalid clearance"),
    (lambda: jwt.encode({"sub": "ws-1", "allowed": True, "iat": int(NOW), "exp": int(NOW) + 99},
                        "shared-secret-key-of-32-bytes-min!", algorithm="HS256"),
     "invalid clearance"),                                               # alg confusion
    (lambda: None, "no clearance"),
])
def test_a_clearance_that_does_not_verify_refuses(home, token, why):
    d = decide({**ALLOWED, "clearance": token()})
    assert not d.allowed and d.code == EXIT_CLOSED and why in d.reasons[0]


def test_a_skewed_local_clock_uses_the_center_offset(home):
    write_state(state(updated_at=NOW - 1000, clock_offset_s=1000.0))
    d = decide_login(now=lambda: NOW - 1000,
                     transport=gate_center({**ALLOWED, "clearance": clearance()}))
    assert d.allowed


@pytest.mark.parametrize("failure", [httpx.ConnectError("refused"),
                                     httpx.Response(503, json={"error": "db", "detail": ""})])
def test_center_unreachable_follows_the_policy(home, failure):
    local = decide(failure, center_unreachable="local")
    assert local.allowed and any("cannot be reached" in n for n in local.notes)
    deny = decide(failure, center_unreachable="deny")
    assert not deny.allowed and deny.code == EXIT_CLOSED


def test_retired_refuses(home):
    d = decide(httpx.Response(403, json={"error": "retired", "detail": "x"}))
    assert not d.allowed and "retired" in d.reasons[0]


# ---------------------------------------------------------------- enroll

def enroll_center(status=201, key=True):
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.path == "/api/v1/clearance-key":
            return httpx.Response(200 if key else 404, json={"alg": "EdDSA",
                                                            "public_key_pem": CENTER_PEM})
        if status != 201:
            return httpx.Response(status, json={"error": "invalid_token", "detail": "no"})
        return httpx.Response(201, json={"agent_id": "ws-9", "secret": "s" * 64,
                                         "heartbeat_interval_s": 15, "server_time": 1})

    return httpx.MockTransport(handler), seen


def test_enroll_saves_owner_only_and_pins_the_key(tmp_path, monkeypatch):
    monkeypatch.setenv("AGENT_KIT_HOME", str(tmp_path / "home"))
    transport, seen = enroll_center()
    e = enroll("http://center.test/", "tok", hostname="pc1", transport=transport)
    assert e.agent_id == "ws-9" and e.center_url == "http://center.test"
    assert stat.S_IMODE(os.stat(enrollment_path()).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(tmp_path / "home").st_mode) == 0o700
    assert clearance_key_path().read_text() == CENTER_PEM
    assert seen[0].url.path == "/api/v1/enroll"
    with pytest.raises(EnrollError, match="already enrolled as ws-9"):
        enroll("http://center.test", "tok2", transport=transport)


def test_enroll_checks_the_state_folder_before_spending_the_token(tmp_path, monkeypatch):
    (tmp_path / "file").write_text("")
    monkeypatch.setenv("AGENT_KIT_HOME", str(tmp_path / "file" / "home"))
    transport, seen = enroll_center()
    with pytest.raises(EnrollError, match="cannot save the enrollment in .*nothing was sent"):
        enroll("http://center.test", "tok", transport=transport)
    assert seen == []


def test_enroll_refused_token_in_plain_words(tmp_path, monkeypatch):
    monkeypatch.setenv("AGENT_KIT_HOME", str(tmp_path))
    transport, _ = enroll_center(status=401)
    with pytest.raises(EnrollError, match="ask IT for a new one"):
        enroll("http://center.test", "bad", transport=transport)
    assert not enrollment_path().exists()
    with pytest.raises(EnrollError, match="must look like"):
        enroll("ftp://x", "t")


def test_cli_status_and_login_exit_codes(home):
    env = {**os.environ, "AGENT_KIT_HOME": str(home)}
    write_state(state(gate_open=False, reasons=("Headset: none found",), updated_at=_now()))
    run = subprocess.run([sys.executable, "-m", "agent_kit.face.cli", "status"], env=env,
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 1 and "Headset: none found" in run.stdout
    run = subprocess.run([sys.executable, "-m", "agent_kit.face.cli", "login", "--", "touch",
                          str(home / "started")], env=env, capture_output=True, text=True,
                         timeout=60)
    assert run.returncode == 1 and "Headset: none found" in run.stderr
    assert not (home / "started").exists()
    run = subprocess.run([sys.executable, "-m", "agent_kit.face.cli", "login"], env=env,
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 2


def _now() -> float:
    import time

    return time.time()


def test_status_json_carries_the_gate_and_the_monitor(home):
    import json

    env = {**os.environ, "AGENT_KIT_HOME": str(home)}
    write_state(state(updated_at=_now(), watching=("network.jitter",)))
    run = subprocess.run([sys.executable, "-m", "agent_kit.face.cli", "status", "--json"], env=env,
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    data = json.loads(run.stdout)
    assert data["open"] is True and data["agent_id"] == "ws-1"
    assert data["monitor"]["watching"] == ["network.jitter"]
    assert any("network.jitter" in n for n in data["notes"])
