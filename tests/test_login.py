"""`status`/`login` decisions: local gate AND the center's EdDSA-signed clearance.

The center here answers through httpx.MockTransport with clearances signed by a real Ed25519
key (cryptography + PyJWT); the real center is in tests/test_monitor_faults.py and, with an
attacker on the path, in tests/test_hostile_clearance.py.
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

from agent_kit.face.login import (
    EXIT_CLOSED,
    EXIT_NO_STATE,
    EXIT_OPEN,
    UnreachableRule,
    decide_login,
    local_gate,
)
from agent_kit.link.clearance import CLOCK_TOLERANCE_S, last_clearance_path
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


def clearance(sub: str = "ws-1", iat: float = NOW, key=CENTER_KEY, allowed=True,
              nonce: str | None = None) -> str:
    claims = {"sub": sub, "allowed": allowed, "iat": int(iat), "exp": int(iat) + 120}
    if nonce is not None:
        claims["nonce"] = nonce
    return jwt.encode(claims, key, algorithm="EdDSA")


def gate_center(answer: dict | Exception | httpx.Response):
    """A center whose answer's ``clearance`` may be a function of the request's nonce."""
    def handler(request: httpx.Request) -> httpx.Response:
        if isinstance(answer, Exception):
            raise answer
        if isinstance(answer, httpx.Response):
            return answer
        assert request.url.path == "/api/v1/gate/ws-1"
        assert "X-Agent-Signature" in request.headers
        made = answer.get("clearance")
        if callable(made):
            return httpx.Response(200, json={**answer,
                                             "clearance": made(request.url.params["nonce"])})
        return httpx.Response(200, json=answer)

    return httpx.MockTransport(handler)


def echoed(**kw):
    """A clearance made for the request's own nonce, as the real center makes it."""
    return lambda nonce: clearance(nonce=nonce, **kw)


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
    d = decide({**ALLOWED, "clearance": echoed()})
    assert d.allowed and d.code == EXIT_OPEN and d.claims["sub"] == "ws-1"
    assert len(d.claims["nonce"]) >= 32
    assert last_clearance_path().read_text() == clearance(nonce=d.claims["nonce"])


def test_every_login_draws_a_new_nonce(home):
    nonces = []

    def handler(request: httpx.Request) -> httpx.Response:
        nonces.append(request.url.params["nonce"])
        return httpx.Response(200, json={**ALLOWED, "clearance": clearance(nonce=nonces[-1])})

    for _ in range(3):
        assert decide_login(now=lambda: NOW, transport=httpx.MockTransport(handler)).allowed
    assert len(set(nonces)) == 3


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
    (echoed(key=key_pair()[0]), "invalid clearance"),                  # forged: another key
    (echoed(sub="ws-2"), "another workstation"),
    (echoed(iat=NOW - 1000), "this computer's clock"),                # expired by our clock
    (echoed(iat=NOW + 1000), "this computer's clock"),                # dated in the future
    (echoed(allowed=False), "does not allow"),
    (lambda n: clearance(), "not made for this login"),               # no nonce: the ACD's kind
    (lambda n: clearance(nonce=n[::-1]), "not made for this login"),  # another request's
    (lambda n: "not.a.jwt", "invalid clearance"),
    (lambda n: jwt.encode({"sub": "ws-1", "allowed": True, "iat": int(NOW), "exp": int(NOW) + 99,
                           "nonce": n}, "shared-secret-key-of-32-bytes-min!", algorithm="HS256"),
     "invalid clearance"),                                               # alg confusion
    (lambda n: None, "no clearance"),
])
def test_a_clearance_that_does_not_verify_refuses(home, token, why):
    d = decide({**ALLOWED, "clearance": token})
    assert not d.allowed and d.code == EXIT_CLOSED and why in d.reasons[0]
    assert not last_clearance_path().exists()


@pytest.mark.parametrize("skew_s, allowed", [(-CLOCK_TOLERANCE_S + 5, True),
                                             (CLOCK_TOLERANCE_S - 5, True),
                                             (-1000.0, False), (1000.0, False)])
def test_the_clearance_is_judged_by_the_local_clock_within_the_tolerance(home, skew_s, allowed):
    """Never by the offset learnt from server_time (which an on-path answer can set): here the
    monitor learnt the right offset, and a clock further off than the tolerance still refuses,
    with words that say to set the clock."""
    local_now = NOW + skew_s
    write_state(state(updated_at=local_now, clock_offset_s=-skew_s))
    d = decide_login(now=lambda: local_now, transport=gate_center({**ALLOWED,
                                                                   "clearance": echoed()}))
    assert d.allowed is allowed
    if not allowed:
        assert "clock" in d.reasons[0] and "17 min" in d.reasons[0]


def test_an_old_genuine_clearance_behind_a_forged_clock_skew_refuses(home):
    """Issue 15, attack 2: an on-path answer 401 clock_skew with an old server_time, then an
    old genuine clearance (no nonce: what the ACD's gate requests carry)."""
    old = NOW - 86_400
    answers = iter([httpx.Response(401, json={"error": "clock_skew", "detail": "",
                                              "server_time": int(old)}),
                    httpx.Response(200, json={**ALLOWED, "clearance": clearance(iat=old)})])
    d = decide_login(now=lambda: NOW,
                     transport=httpx.MockTransport(lambda request: next(answers)))
    assert not d.allowed and d.code == EXIT_CLOSED and "not made for this login" in d.reasons[0]


def test_no_pinned_key_says_enroll_again_and_asks_nothing(home):
    clearance_key_path().unlink()
    d = decide(AssertionError("the center must not be asked"))
    assert not d.allowed and d.code == EXIT_NO_STATE and "enroll it again" in d.headline
    clearance_key_path().write_text("-----BEGIN PUBLIC KEY-----\nnot a key\n")
    assert decide(AssertionError("not asked")).code == EXIT_NO_STATE


DOWN = [httpx.ConnectError("refused"), httpx.Response(503, json={"error": "db", "detail": ""})]


@pytest.mark.parametrize("failure", DOWN)
def test_center_unreachable_follows_the_policy(home, failure):
    assert decide({**ALLOWED, "clearance": echoed()}).allowed   # a clearance at NOW
    local = decide(failure, center_unreachable="local")
    assert local.allowed and any("cannot be reached" in n for n in local.notes)
    assert any("for 30 min" in n for n in local.notes)
    deny = decide(failure, center_unreachable="deny")
    assert not deny.allowed and deny.code == EXIT_CLOSED


@pytest.mark.parametrize("failure", DOWN)
def test_local_alone_lasts_only_local_login_max_s_after_the_last_clearance(home, failure):
    rule = UnreachableRule("local", 600.0)
    never = decide(failure, center_unreachable=rule)
    assert not never.allowed and never.code == EXIT_CLOSED and "never cleared" in never.headline
    # the center's clock 290 s behind ours (within the tolerance): accepted, and kept
    assert decide({**ALLOWED, "clearance": echoed(iat=NOW - 290)}, center_unreachable=rule,
                  ).code == EXIT_OPEN

    def at(local_now):
        write_state(state(updated_at=local_now))
        return decide_login(now=lambda: local_now, transport=gate_center(failure),
                            center_unreachable=rule)

    assert at(NOW + 300).allowed          # 590 s after the clearance's signed issue time
    late = at(NOW + 320)                  # 610 s after it
    assert not late.allowed and late.code == EXIT_CLOSED and "too old" in late.headline
    assert any("10 min ago" in r and "within 10 min" in r for r in late.reasons)


def test_a_clock_set_back_since_the_last_clearance_does_not_stretch_it(home):
    assert decide({**ALLOWED, "clearance": echoed()}).allowed   # kept, issued at NOW
    write_state(state(updated_at=NOW - 3600))
    d = decide_login(now=lambda: NOW - 3600, transport=gate_center(DOWN[0]))
    assert not d.allowed and d.code == EXIT_CLOSED and "60 min away" in d.reasons[1]


def test_a_kept_clearance_of_another_key_does_not_count(home):
    last_clearance_path().write_text(clearance(key=key_pair()[0]))
    assert not decide(DOWN[0]).allowed
    last_clearance_path().write_text(clearance(sub="ws-2"))
    assert not decide(DOWN[0]).allowed
    last_clearance_path().write_text(clearance())
    assert decide(DOWN[0]).allowed


def test_retired_refuses(home):
    d = decide(httpx.Response(403, json={"error": "retired", "detail": "x"}))
    assert not d.allowed and "retired" in d.reasons[0]


# ---------------------------------------------------------------- enroll

def enroll_center(status=201, key: bool | str = True):
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.path == "/api/v1/clearance-key":
            return httpx.Response(200 if key else 404, json={
                "alg": "EdDSA", "public_key_pem": key if isinstance(key, str) else CENTER_PEM})
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
    assert [r.url.path for r in seen] == ["/api/v1/clearance-key", "/api/v1/enroll"]
    with pytest.raises(EnrollError, match="already enrolled as ws-9"):
        enroll("http://center.test", "tok2", transport=transport)


@pytest.mark.parametrize("key", [False, "-----BEGIN PUBLIC KEY-----\nnot a key\n"])
def test_enroll_fails_before_spending_the_token_when_the_center_gives_no_key(
        tmp_path, monkeypatch, key):
    monkeypatch.setenv("AGENT_KIT_HOME", str(tmp_path / "home"))
    transport, seen = enroll_center(key=key)
    with pytest.raises(EnrollError, match="no login clearance key .*token is still good"):
        enroll("http://center.test", "tok", transport=transport)
    assert [r.url.path for r in seen] == ["/api/v1/clearance-key"]
    assert not enrollment_path().exists() and not clearance_key_path().exists()


def test_enroll_again_forgets_the_last_clearance(home, monkeypatch):
    last_clearance_path().write_text(clearance())
    transport, _ = enroll_center()
    enroll("http://center.test", "tok", force=True, transport=transport)
    assert not last_clearance_path().exists()


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
    # the note names the check by its title (issue 16: no raw ids such as audio.headset)
    assert any("Jitter (RFC 3550)" in n for n in data["notes"]), data["notes"]
    assert not any("network.jitter" in n for n in data["notes"])
