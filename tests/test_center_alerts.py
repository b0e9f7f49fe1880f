"""Alerts with real parts: real HTTP receivers (a generic webhook and a Slack-compatible chat
webhook, small servers in threads), a real SMTP server (aiosmtpd: plain, STARTTLS with login,
TLS from the first byte) and a real ``agent-center serve`` fed by enrolled workstations'
signed heartbeats (tests/center_seed.py).

What is pinned: each rule opens one incident, delivered once per channel on opening and once on
recovery; nothing is sent again while it lasts, nor after a restart of the center; a channel
that is down gets the event once it is back (rounds of retries, bounded); transient failures
are tried again, refusals are not; two center processes on one database (SQLite, and
PostgreSQL for the race) deliver once; secrets never reach the log. Rule durations are short
(seconds, from the alerts file) and every wait is on a condition with a deadline: no timed
assertion."""

from __future__ import annotations

import http.server
import json
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from stamina.instrumentation import RetryDetails, get_on_retry_hooks, set_on_retry_hooks

from agent_kit.center.alert_channels import post_json, send_email
from agent_kit.center.alert_config import AlertConfigError, Channel, alert_config
from agent_kit.center.alerts import AlertLoop
from agent_kit.center.models import Heartbeat
from agent_kit.center.runtime import build_runtime
from agent_kit.center.settings import CenterSettings
from tests.center_seed import Center, Workstation, free_port, heartbeat, run_center
from tests.smtp_lab import smtp_server

pytestmark = [
    pytest.mark.lab,
    # the lab's SMTP server (aiosmtpd 1.4) warns about its own attribute at every login, and
    # about a login rule that does not count a TLS-first session as TLS (which it is)
    pytest.mark.filterwarnings("ignore:Session.login_data is deprecated:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning"),
]

FAST = {"attempts": 3, "timeout_s": 2.0, "backoff_s": 0.0}
HOLD = -1.0      # a script delay: answer only once the test releases the receiver
REQUIRED = {"vpn.connected": ("pass", None), "audio.headset": ("pass", None)}
GOOD = {**REQUIRED, "network.loss": ("pass", 0.1), "network.jitter": ("pass", 4.0)}
LOSSY = {**REQUIRED, "network.loss": ("fail", 6.0), "network.jitter": ("pass", 4.0)}
ADMIN = "adm-test-" + "0" * 32


# -- real receivers ------------------------------------------------------------------------
class Receiver(http.server.ThreadingHTTPServer):
    """Answers each POST with the next scripted status (then 200): ``(status, delay_s)``; a
    delay of ``HOLD`` keeps that answer back until ``release`` is set (at most 10 s)."""

    def __init__(self, script: list[tuple[int, float]], port: int = 0) -> None:
        super().__init__(("127.0.0.1", port), _Handler)
        self.script = list(script)
        self.hits: list[int] = []                 # the status answered to each POST
        self.accepted: list[dict] = []            # bodies answered 2xx: delivered
        self.paths: list[str] = []
        self.lock = threading.Lock()
        self.release = threading.Event()
        self.held = 0                             # requests kept back right now

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/hook"


class _Handler(http.server.BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        with self.server.lock:
            status, delay_s = self.server.script.pop(0) if self.server.script else (200, 0.0)
        if delay_s == HOLD:
            with self.server.lock:
                self.server.held += 1
            self.server.release.wait(10)
            with self.server.lock:
                self.server.held -= 1
        else:
            time.sleep(delay_s)
        with self.server.lock:
            self.server.hits.append(status)
            self.server.paths.append(self.path)
            if 200 <= status < 300:
                self.server.accepted.append(body)
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        return None


def start_receiver(script: list[tuple[int, float]] | None = None, port: int = 0) -> Receiver:
    server = Receiver(script or [], port)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                     daemon=True).start()
    return server


def stop_receiver(server: Receiver) -> None:
    server.shutdown()
    server.server_close()


@pytest.fixture
def receiver(request) -> Iterator[Receiver]:
    server = start_receiver(getattr(request, "param", []))
    yield server
    stop_receiver(server)


def wait_for(what: str, probe: Callable[[], Any], timeout_s: float = 60.0) -> Any:
    """``probe()``'s first truthy value, polled until the deadline; fails saying ``what``."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout_s} s: {what} (last: {value!r})")
        time.sleep(0.05)


# -- one round of sending: tried again when the failure may pass, never after a refusal -----
@pytest.mark.parametrize("receiver", [[(500, 0.0), (503, 0.0)]], indirect=True)
def test_two_server_errors_then_delivered_once(receiver):
    assert post_json(receiver.url, {"event": "incident_opened"}, **FAST).sent
    assert receiver.hits == [500, 503, 200]
    assert receiver.accepted == [{"event": "incident_opened"}]


@pytest.mark.parametrize("receiver", [[(429, 0.0)]], indirect=True)
def test_too_many_requests_is_tried_again(receiver):
    assert post_json(receiver.url, {"n": 1}, **FAST).sent
    assert receiver.hits == [429, 200]


@pytest.mark.parametrize("receiver", [[(400, 0.0)], [(404, 0.0)], [(410, 0.0)]],
                         indirect=True)
def test_a_refusal_is_not_tried_again(receiver):
    outcome = post_json(receiver.url, {"n": 1}, **FAST)
    assert not outcome.sent and not outcome.retry
    assert outcome.reason == f"HTTP {receiver.hits[0]}"
    assert len(receiver.hits) == 1 and receiver.accepted == []


@pytest.mark.parametrize("receiver", [[(500, 0.0)] * 5], indirect=True)
def test_tries_are_bounded(receiver):
    outcome = post_json(receiver.url, {"n": 1}, **FAST)
    assert (outcome.sent, outcome.retry, outcome.reason) == (False, True, "HTTP 500")
    assert receiver.hits == [500, 500, 500]


@pytest.mark.parametrize("receiver", [[(200, HOLD)]], indirect=True)
def test_a_timeout_is_tried_again(receiver):
    assert post_json(receiver.url, {"n": 1}, attempts=3, timeout_s=0.2, backoff_s=0.0).sent
    # delivered by a later try while the first was still held: it did not wait for it
    assert receiver.held == 1 and receiver.hits[-1] == 200 and receiver.accepted
    receiver.release.set()
    # the first request was answered (late, to nobody), then the second: at least once
    wait_for("the held request answered", lambda: len(receiver.hits) >= 2, 10)
    assert len(receiver.accepted) == 2


@pytest.fixture
def retries() -> Iterator[list[RetryDetails]]:
    """The retries stamina schedules (its instrumentation hook), hooks restored after."""
    seen: list[RetryDetails] = []
    before = get_on_retry_hooks()
    set_on_retry_hooks([seen.append])
    yield seen
    set_on_retry_hooks(before)


def test_nobody_listening_gives_up_after_the_bound(retries):
    outcome = post_json(f"http://127.0.0.1:{free_port()}/hook", {"n": 1}, **FAST)
    assert (outcome.sent, outcome.retry, outcome.reason) == (False, True, "ConnectError")
    # three tries, so two retries, each refused at once and none waited for (no back-off)
    assert [r.retry_num for r in retries] == [1, 2]
    assert all(r.wait_for == 0 for r in retries), retries
    assert all(type(r.caused_by).__name__ == "ConnectError" for r in retries)


# -- email over a real SMTP server ---------------------------------------------------------
def _mail_channel(server, security: str, login: tuple[str, str] | None = None) -> Channel:
    return Channel(name="mail", kind="email", host=server.host, port=server.port,
                   security=security, username=login[0] if login else None,
                   password=login[1] if login else None, sender="center@example.com",
                   recipients=("it@example.com", "lead@example.com"), ca_file=server.ca_file)


def test_email_plain_text_reaches_every_recipient():
    with smtp_server("plain") as server:
        outcome = send_email(_mail_channel(server, "none"), "Inte redo: hemma-1",
                             "Inte redo: hemma-1 kan inte ta samtal.\n", **FAST)
        assert outcome.sent
        (message,) = server.mailbox.messages
    assert message["Subject"] == "Inte redo: hemma-1"
    assert message["To"] == "it@example.com, lead@example.com"
    assert message["From"] == "center@example.com"
    assert message.get_content_type() == "text/plain"
    assert message.get_content().replace("\r\n", "\n") == "Inte redo: hemma-1 kan inte ta samtal.\n"


@pytest.mark.parametrize("security", ["starttls", "ssl"])
def test_email_over_tls_with_login(tmp_path: Path, security: str):
    login = ("alerts", "pw-" + "x" * 20)
    with smtp_server(security, tmp_path, login=login) as server:
        channel = _mail_channel(server, security, login)
        assert send_email(channel, "s", "b\n", **FAST).sent
        assert len(server.mailbox.messages) == 1
        # a wrong password is a refusal (535): not tried again
        from dataclasses import replace

        wrong = send_email(replace(channel, password="nope"), "s", "b\n", **FAST)
        assert (wrong.sent, wrong.retry, wrong.reason) == (False, False, "SMTP 535")
        # a server whose certificate is not trusted is refused, not tried again
        untrusted = send_email(replace(channel, ca_file=None), "s", "b\n", **FAST)
        assert (untrusted.sent, untrusted.retry) == (False, False)
        assert untrusted.reason == "SSLCertVerificationError"
        assert len(server.mailbox.messages) == 1


def test_email_busy_relay_is_tried_again_and_refusal_is_not():
    with smtp_server("plain", script=["451 4.3.0 busy, try later"]) as server:
        assert send_email(_mail_channel(server, "none"), "s", "b\n", **FAST).sent
        assert (server.mailbox.refused, len(server.mailbox.messages)) == (1, 1)
    with smtp_server("plain", script=["554 5.7.1 rejected"]) as server:
        outcome = send_email(_mail_channel(server, "none"), "s", "b\n", **FAST)
        assert (outcome.sent, outcome.retry, outcome.reason) == (False, False, "SMTP 554")
        assert (server.mailbox.refused, server.mailbox.messages) == (1, [])


# -- the alerts file -----------------------------------------------------------------------
@pytest.mark.parametrize(("doc", "reason"), [
    ({"rule": [{"name": "a", "kind": "offlien"}]}, "rule 'a': kind: one of offline"),
    ({"rule": [{"name": "a", "kind": "offline", "for": "ten minutes"}]},
     "rule 'a': for: 'ten minutes' is not a duration"),
    ({"rule": [{"name": "a", "kind": "not_ready"}]}, "rule 'a': above:"),
    ({"rule": [{"name": "a", "kind": "check_failing"}]}, "give at_least"),
    ({"rule": [{"name": "a", "kind": "check_failing", "at_least": 2,
                "checks": ["network.lossy"]}]}, "no check 'network.lossy'"),
    ({"rule": [{"name": "a", "kind": "offline", "above": 3}]}, "unknown key 'above'"),
    ({"rule": [{"name": "a", "kind": "offline", "channels": ["pager"]}]},
     "no channel named 'pager'"),
    ({"rule": [{"name": "a", "kind": "offline"}, {"name": "a", "kind": "offline"}]},
     "two rules are named 'a'"),
    ({"channel": [{"name": "c", "kind": "chat", "url": "hooks.example/T0"}]},
     "an http:// or https:// URL"),
    ({"channel": [{"name": "m", "kind": "email", "host": "smtp.example", "from": "a@b.c",
                   "to": ["x@y.z"], "security": "none", "username": "u", "password": "p"}]},
     "never sent without TLS"),
    ({"channel": [{"name": "m", "kind": "email", "host": "smtp.example", "from": "a@b.c",
                   "to": ["x@y.z"], "username": "u"}]}, "go together"),
    ({"language": "fr"}, "language: 'fr'"),
    ({"delivery": {"attempts": 0}}, "delivery: attempts: a whole number from 1 to 10"),
])
def test_alerts_file_mistakes_are_named(doc: dict, reason: str):
    with pytest.raises(AlertConfigError) as refused:
        alert_config(doc, environ={})
    assert reason in str(refused.value)


def test_secrets_stay_out_of_repr_and_errors():
    secret_url = "https://chat.example/hooks/T000/B000/SeCrEtToKeN"
    config = alert_config({"channel": [
        {"name": "chat", "kind": "chat", "url_env": "AK_CHAT"},
        {"name": "mail", "kind": "email", "host": "smtp.example", "from": "a@b.c",
         "to": ["x@y.z"], "username": "u", "password_env": "AK_PW"}]},
        environ={"AK_CHAT": secret_url, "AK_PW": "pAsSwOrD-123"})
    assert config.channel("chat").url == secret_url   # type: ignore[union-attr]
    assert "SeCrEtToKeN" not in repr(config) and "pAsSwOrD" not in repr(config)
    # channels but no rule: the default rules (offline, not ready per workstation)
    assert [r.kind for r in config.rules] == ["offline", "workstation_not_ready"]
    with pytest.raises(AlertConfigError) as refused:
        alert_config({"channel": [{"name": "c", "kind": "chat",
                                   "url": "ftp://x/SeCrEtToKeN"}]}, environ={})
    assert "SeCrEtToKeN" not in str(refused.value)


# -- a real center ---------------------------------------------------------------------------
def _alerts_file(path: Path, rules: str, channels: str, language: str = "en",
                 delivery: str = 'attempts = 2\nbackoff = "0s"\ntimeout = "2s"\n'
                                 'retry = "0.2s"\nretry_max = "0.5s"\n') -> Path:
    path.write_text(f'language = "{language}"\ncheck_every = "0.1s"\n\n{rules}\n{channels}\n'
                    f"[delivery]\n{delivery}", "utf-8")
    return path


def _hook(name: str, kind: str, url: str) -> str:
    return f'[[channel]]\nname = "{name}"\nkind = "{kind}"\nurl = "{url}"\n'


def _incidents(center: Center, **params: Any) -> list[dict]:
    with center.admin() as admin:
        r = admin.get("/api/v1/incidents", params=params)
    assert r.status_code == 200, r.text
    return list(r.json()["incidents"])


def _now() -> datetime:
    return datetime.now(UTC)


class Seqs:
    """Each workstation's next heartbeat seq."""

    def __init__(self) -> None:
        self.next: dict[str, int] = {}

    def send(self, ws: Workstation, readings: dict, interval_s: float) -> None:
        seq = self.next.get(ws.agent_id, 1)
        self.next[ws.agent_id] = seq + 1
        ws.send([heartbeat(seq, _now(), readings, interval_s=interval_s)])


def _at(ws: Workstation, center: Center) -> Workstation:
    """The same workstation, talking to the center at its new address (after a restart)."""
    return Workstation(center_url=center.url, agent_id=ws.agent_id, secret=ws.secret)


def _events(receiver: Receiver, rule: str) -> list[str]:
    with receiver.lock:
        return [e["event"] for e in receiver.accepted if e.get("rule") == rule]


def test_rules_open_once_stay_quiet_survive_a_restart_and_recover_once(tmp_path: Path):
    """Four workstations: three lose packets at once (one ISP), one goes silent. The ISP case
    is one incident, not three; so is the team's not-ready count; the silent one is offline.
    Each reaches the generic webhook, the chat and the mailbox once on opening (while the
    conditions go on, and across a restart of the center) and once on recovery."""
    hook, chat = start_receiver(), start_receiver()
    try:
        with smtp_server("plain") as mail:
            alerts = _alerts_file(tmp_path / "alerts.toml", '''
[[rule]]
name = "isp"
kind = "check_failing"
at_least = 3
percent = 50
for = "1s"

[[rule]]
name = "not-ready"
kind = "not_ready"
above = 1
for = "1s"

[[rule]]
name = "offline"
kind = "offline"
for = "1s"
''', _hook("hook", "webhook", hook.url) + _hook("chat", "chat", chat.url) + f'''
[[channel]]
name = "mail"
kind = "email"
host = "{mail.host}"
port = {mail.port}
security = "none"
from = "center@example.com"
to = ["it@example.com"]
''', language="sv")
            data = tmp_path / "center"
            seqs = Seqs()
            with run_center(data, admin_token=ADMIN, extra_args=["--alerts", str(alerts)],
                            log_path=tmp_path / "center-1.log") as center:
                token = center.create_token(uses=10)
                lossy = [center.enroll(token, f"home-{i}") for i in range(3)]
                quiet = center.enroll(token, "home-quiet")
                for ws in [*lossy, quiet]:   # a long interval: they stay online
                    seqs.send(ws, LOSSY if ws in lossy else GOOD, interval_s=60)
                wait_for("the isp and not-ready incidents delivered everywhere", lambda:
                         _events(hook, "isp") == ["incident_opened"]
                         and _events(hook, "not-ready") == ["incident_opened"]
                         and len(chat.accepted) == 2 and len(mail.mailbox.messages) == 2)
                (isp,) = [e for e in hook.accepted if e["rule"] == "isp"]
                assert (isp["kind"], isp["subject"]) == ("check_failing", "/network.loss")
                assert isp["facts"] == {"team": None, "check_id": "network.loss", "count": 3,
                                        "seen": 4, "percent": 75.0}
                assert isp["message"]["params"]["count"] == 3
                texts = sorted(e["text"] for e in chat.accepted)
                # the chat's words are the center's language (sv), the check's title too
                assert any(t.startswith("Inte redo: 3 av 4 arbetsplatser online") for t in
                           texts), texts
                assert any("underkänns på 3 av 4 arbetsplatser samtidigt (75 %)" in t
                           for t in texts), texts
                subjects = sorted(m["Subject"] for m in mail.mailbox.messages)
                assert all(s.startswith("[agent-center] ") for s in subjects), subjects
            # the center restarts while both incidents go on: nothing is sent again
            with run_center(data, admin_token=ADMIN, extra_args=["--alerts", str(alerts)],
                            log_path=tmp_path / "center-2.log") as center:
                lossy, quiet = [_at(ws, center) for ws in lossy], _at(quiet, center)
                # the quiet workstation's silence (interval 1 s + grace 10 s) opens the offline
                # incident: by then the other two were evaluated many times after the restart
                seqs.send(quiet, GOOD, interval_s=1)
                wait_for("the offline incident delivered", lambda:
                         _events(hook, "offline") == ["incident_opened"]
                         and len(chat.accepted) == 3 and len(mail.mailbox.messages) == 3, 90)
                (offline,) = [e for e in hook.accepted if e["rule"] == "offline"]
                assert offline["facts"]["agent_id"] == quiet.agent_id
                assert offline["facts"]["workstation"] == "home-quiet"
                assert _events(hook, "isp") == ["incident_opened"]
                assert _events(hook, "not-ready") == ["incident_opened"]
                # the line comes back: both fleet incidents resolve, the quiet one returns
                for ws in lossy:
                    seqs.send(ws, GOOD, interval_s=60)
                seqs.send(quiet, GOOD, interval_s=60)
                wait_for("three recoveries delivered everywhere", lambda:
                         len(hook.accepted) == 6 and len(chat.accepted) == 6
                         and len(mail.mailbox.messages) == 6)
                every = sorted((c, e, "sent") for c in ("chat", "hook", "mail")
                               for e in ("opened", "resolved"))
                # a receiver answers before its sender marks the delivery sent
                listed = wait_for("every delivery marked sent", lambda: (found := _incidents(
                    center)) and all(sorted((d["channel"], d["event"], d["state"])
                                            for d in i["deliveries"]) == every
                                     for i in found) and found)
                assert sorted((i["rule"], i["state"]) for i in listed) == [
                    ("isp", "resolved"), ("not-ready", "resolved"), ("offline", "resolved")]
                sv = {i["rule"]: i["text"] for i in _incidents(center, lang="sv")}
                assert sv["isp"].startswith("Löst: "), sv
            for rule in ("isp", "not-ready", "offline"):
                assert _events(hook, rule) == ["incident_opened", "incident_resolved"]
            (isp_resolved,) = [e for e in hook.accepted if e["rule"] == "isp"
                               and e["event"] == "incident_resolved"]
            # resolved as soon as fewer than 3 failed (the heartbeats come one by one, or
            # together between two passes: then none fails)
            assert isp_resolved["resolved_facts"]["check_id"] == "network.loss"
            assert isp_resolved["resolved_facts"]["count"] < 3
            # seen: the three, and the quiet one if its return came first
            assert isp_resolved["resolved_facts"]["seen"] in (3, 4)
            assert isp_resolved["incident_id"] == isp["incident_id"]
    finally:
        stop_receiver(hook)
        stop_receiver(chat)


def test_team_rules_count_each_team_apart(tmp_path: Path):
    """A not-ready count per team (tokyo and osaka, and a workstation without a team that no
    per-team rule counts), and an ISP rule for osaka only."""
    hook, chat = start_receiver(), start_receiver()
    try:
        alerts = _alerts_file(tmp_path / "alerts.toml", '''
[[rule]]
name = "team-not-ready"
kind = "not_ready"
per_team = true
above = 1
for = "1s"

[[rule]]
name = "osaka-isp"
kind = "check_failing"
team = "osaka"
at_least = 2
''', _hook("hook", "webhook", hook.url) + _hook("chat", "chat", chat.url))
        with run_center(tmp_path / "center", admin_token=ADMIN,
                        extra_args=["--alerts", str(alerts)]) as center:
            tokyo = [center.enroll(center.create_token(team="tokyo"), f"tokyo-{i}")
                     for i in range(3)]
            osaka = [center.enroll(center.create_token(team="osaka"), f"osaka-{i}")
                     for i in range(2)]
            # two without a team, both not ready: counted by no per-team rule
            loners = [center.enroll(center.create_token(), f"no-team-{i}") for i in range(2)]
            seqs = Seqs()
            for ws in [*tokyo[:2], osaka[0], *loners]:
                seqs.send(ws, LOSSY, interval_s=60)
            for ws in [tokyo[2], osaka[1]]:
                seqs.send(ws, GOOD, interval_s=60)
            wait_for("tokyo's incident", lambda: len(hook.accepted) == len(chat.accepted) == 1)
            (opened,) = hook.accepted
            assert (opened["rule"], opened["subject"]) == ("team-not-ready", "tokyo")
            assert opened["facts"] == {"team": "tokyo", "count": 2, "online": 3, "above": 1}
            assert chat.accepted[0]["text"].startswith(
                "Not ready in team tokyo: 2 of 3 online workstations cannot take calls")
            seqs.send(osaka[1], LOSSY, interval_s=60)   # now osaka has two down, both lossy
            wait_for("osaka's two incidents", lambda: len(hook.accepted) == 3)
            assert sorted((e["rule"], e["subject"]) for e in hook.accepted[1:]) == [
                ("osaka-isp", "osaka/network.loss"), ("team-not-ready", "osaka")]
            isp = next(e for e in hook.accepted if e["rule"] == "osaka-isp")
            assert isp["facts"]["team"] == "osaka" and isp["facts"]["seen"] == 2
            for ws in tokyo[:2]:
                seqs.send(ws, GOOD, interval_s=60)
            wait_for("tokyo's recovery", lambda: len(hook.accepted) == 4)
            resolved = hook.accepted[3]
            assert (resolved["event"], resolved["subject"]) == ("incident_resolved", "tokyo")
            assert resolved["incident_id"] == opened["incident_id"]
            assert [(i["rule"], i["subject"], i["state"]) for i in
                    _incidents(center, state="open")] in (
                [("team-not-ready", "osaka", "open"), ("osaka-isp", "osaka/network.loss",
                                                        "open")],
                [("osaka-isp", "osaka/network.loss", "open"),
                 ("team-not-ready", "osaka", "open")])
    finally:
        stop_receiver(hook)
        stop_receiver(chat)


def test_a_channel_down_then_up_gets_each_event_once(tmp_path: Path):
    """The chat is down (nobody listens) when the incident opens: the delivery is tried in
    rounds, logged without the URL's token; once the chat is up it gets the event, once."""
    port = free_port()
    token_path = "/hooks/T0001/B0001/" + "SeCrEt" * 4
    url = f"http://127.0.0.1:{port}{token_path}"
    alerts = _alerts_file(tmp_path / "alerts.toml", '''
[[rule]]
name = "not-ready"
kind = "workstation_not_ready"
''', _hook("chat", "chat", url))
    log = tmp_path / "center.log"
    with run_center(tmp_path / "center", admin_token=ADMIN, log_path=log,
                    extra_args=["--alerts", str(alerts)]) as center:
        # the incidents are the admin's: no credential is a 401, a bad query a 422
        bare = httpx.get(f"{center.url}/api/v1/incidents")
        assert bare.status_code == 401 and bare.json()["error"] == "unauthorized"
        with center.admin() as admin:
            for query in ({"state": "pending"}, {"limit": 0}, {"limit": "x"}):
                r = admin.get("/api/v1/incidents", params=query)
                assert r.status_code == 422 and r.json()["error"] == "validation_error", r.text
        ws = center.enroll(center.create_token(), "home-1")
        seqs = Seqs()
        seqs.send(ws, LOSSY, interval_s=60)

        def chat_delivery() -> dict | None:
            found = [d for i in _incidents(center) for d in i["deliveries"]]
            return found[0] if found else None

        failing = wait_for("two rounds failed", lambda: (d := chat_delivery()) is not None
                           and d["tries"] >= 2 and d)
        assert (failing["state"], failing["last_error"]) in {("due", "ConnectError"),
                                                             ("sending", "ConnectError")}
        chat = start_receiver(port=port)
        try:
            wait_for("the chat got the opening", lambda: len(chat.accepted) == 1)
            wait_for("the delivery marked sent",
                     lambda: (d := chat_delivery()) is not None and d["state"] == "sent")
            seqs.send(ws, GOOD, interval_s=60)
            wait_for("the recovery", lambda: len(chat.accepted) == 2)
            assert chat.accepted[0]["text"].startswith("Not ready: home-1 cannot take calls")
            assert chat.accepted[1]["text"].startswith("Resolved: home-1 no longer reports")
            assert chat.paths == [token_path, token_path]
        finally:
            stop_receiver(chat)
    text = log.read_text("utf-8", errors="replace")
    assert "alert delivery to channel chat failed (ConnectError)" in text, text[-2000:]
    assert "SeCrEt" not in text and f"127.0.0.1:{port}" not in text


def test_two_center_processes_on_one_database_deliver_once(tmp_path: Path):
    """Two `agent-center serve` on one SQLite database, both evaluating every 0.1 s, the
    webhook failing twice first: one opening and one recovery arrive."""
    hook = start_receiver([(503, 0.0), (500, 0.0)])
    try:
        alerts = _alerts_file(tmp_path / "alerts.toml", '''
[[rule]]
name = "not-ready"
kind = "workstation_not_ready"
''', _hook("hook", "webhook", hook.url))
        data = tmp_path / "center"
        args = ["--alerts", str(alerts)]
        with run_center(data, admin_token=ADMIN, extra_args=args,
                        log_path=tmp_path / "a.log") as a, \
                run_center(data, admin_token=ADMIN, extra_args=args,
                           log_path=tmp_path / "b.log") as b:
            ws = a.enroll(a.create_token(), "home-1")
            at_b = Workstation(center_url=b.url, agent_id=ws.agent_id, secret=ws.secret)
            at_b.send([heartbeat(1, _now(), LOSSY, interval_s=60)])
            wait_for("the opening", lambda: len(hook.accepted) == 1)
            ws.send([heartbeat(2, _now(), GOOD, interval_s=60)])
            wait_for("the recovery", lambda: len(hook.accepted) == 2)
            for center in (a, b):   # the receiver answered before the sender marked it
                wait_for("both deliveries marked sent", lambda c=center: [
                    d["state"] for i in _incidents(c) for d in i["deliveries"]] == ["sent"] * 2)
        assert [e["event"] for e in hook.accepted] == ["incident_opened", "incident_resolved"]
        assert hook.hits == [503, 500, 200, 200]
    finally:
        stop_receiver(hook)


# -- the race itself: many checkers on one database at once ---------------------------------
@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    from tests.lab.postgres import postgres_cluster

    with postgres_cluster() as url:
        yield url


def _store_heartbeat(rt, agent_id: str, seq: int, readings: dict) -> None:
    import asyncio

    body = heartbeat(seq, _now(), readings, interval_s=60)
    asyncio.run(rt.intake.store(agent_id, [Heartbeat.model_validate_json(json.dumps(body))],
                                rt.now))


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_racing_checkers_open_and_resolve_once(request, tmp_path: Path, monkeypatch,
                                               dialect: str):
    monkeypatch.setenv("AGENT_CENTER_ADMIN_TOKEN", ADMIN)
    if dialect == "postgresql":
        monkeypatch.setenv("AGENT_CENTER_SECRETS_KEY", "5e" * 32)
    db_url = request.getfixturevalue("pg_url") if dialect == "postgresql" \
        else f"sqlite:///{tmp_path / 'center.db'}"
    hook = start_receiver([(500, 0.0)])
    alerts = _alerts_file(tmp_path / "alerts.toml", '''
[[rule]]
name = "isp"
kind = "check_failing"
at_least = 2
''', _hook("hook", "webhook", hook.url), delivery='attempts = 3\nbackoff = "0s"\n')
    settings = CenterSettings(db_url=db_url, data_dir=str(tmp_path), alerts_path=str(alerts))
    runtimes = [build_runtime(settings), build_runtime(settings)]   # two processes' parts
    try:
        a = runtimes[0]
        for rt in runtimes:
            rt.intake.start()
        token, _, _ = a.store.create_token(2, 3600, None, a.now)
        agents = [a.store.enroll(token, f"home-{i}", None, a.now)[0] for i in range(2)]
        loops = [AlertLoop(rt) for rt in runtimes for _ in range(3)]   # three threads each

        def race() -> None:
            start = threading.Barrier(len(loops))

            def run(loop: AlertLoop) -> None:
                start.wait()
                for _ in range(5):
                    loop.check_once()

            threads = [threading.Thread(target=run, args=(lp,)) for lp in loops]
            for t in threads:
                t.start()
            for t in threads:
                t.join(60)

        for agent_id in agents:
            _store_heartbeat(a, agent_id, 1, LOSSY)
        race()
        assert [e["event"] for e in hook.accepted] == ["incident_opened"]
        for agent_id in agents:
            _store_heartbeat(a, agent_id, 2, GOOD)
        race()
        assert [e["event"] for e in hook.accepted] == ["incident_opened", "incident_resolved"]
        assert hook.hits == [500, 200, 200]
    finally:
        for rt in runtimes:
            rt.close()
        stop_receiver(hook)
        if dialect == "postgresql":   # the module's cluster is shared: leave it empty
            import psycopg

            with psycopg.connect(db_url, autocommit=True) as conn:
                conn.execute("DROP SCHEMA public CASCADE")
                conn.execute("CREATE SCHEMA public")


# -- durations and bounds, on the center's own (injected) clock -----------------------------
class Clock:
    def __init__(self) -> None:
        self.t = 1_800_000_000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def clocked(tmp_path: Path, monkeypatch) -> Iterator[Callable[..., Any]]:
    """A center runtime on a clock the test moves, with one workstation, and the alerts file
    the test gives; yields ``make(rules, channels, delivery) -> (rt, loop, clock, agent)``."""
    monkeypatch.setenv("AGENT_CENTER_ADMIN_TOKEN", ADMIN)
    made: list[Any] = []

    def make(rules: str, channels: str, delivery: str) -> tuple[Any, AlertLoop, Clock, str]:
        clock = Clock()
        alerts = _alerts_file(tmp_path / "alerts.toml", rules, channels, delivery=delivery)
        rt = build_runtime(CenterSettings(db_url=f"sqlite:///{tmp_path / 'center.db'}",
                                          data_dir=str(tmp_path), alerts_path=str(alerts),
                                          now=clock))
        made.append(rt)
        rt.intake.start()
        token, _, _ = rt.store.create_token(1, 3600, None, rt.now)
        agent_id, _ = rt.store.enroll(token, "home-1", None, rt.now)
        return rt, AlertLoop(rt), clock, agent_id

    yield make
    for rt in made:
        rt.close()


def test_for_and_recover_for_hold_an_incident_back(clocked, receiver):
    rt, loop, clock, agent = clocked('''
[[rule]]
name = "not-ready"
kind = "workstation_not_ready"
for = "60s"
recover_for = "30s"
''', _hook("hook", "webhook", receiver.url), 'backoff = "0s"\n')
    events = lambda: [e["event"] for e in receiver.accepted]  # noqa: E731
    seq = iter(range(1, 100))

    def at(t: float, readings: dict | None = None) -> list[str]:
        clock.t = 1_800_000_000.0 + t
        if readings is not None:
            _store_heartbeat(rt, agent, next(seq), readings)
        loop.check_once()
        return events()

    assert at(0, LOSSY) == []            # pending
    assert at(59) == []
    assert at(60) == ["incident_opened"]
    assert at(61, GOOD) == ["incident_opened"]   # clearing since 61
    assert at(70, LOSSY) == ["incident_opened"]  # back: the clearing starts over
    assert at(75, GOOD) == ["incident_opened"]
    assert at(104) == ["incident_opened"]
    assert at(105) == ["incident_opened", "incident_resolved"]
    # a condition shorter than `for` is no incident at all
    assert at(200, LOSSY) == ["incident_opened", "incident_resolved"]
    assert at(230, GOOD) == ["incident_opened", "incident_resolved"]
    assert at(400) == ["incident_opened", "incident_resolved"]
    assert [i.state for i in loop.store.incidents(None, 10)] == ["resolved"]


@pytest.mark.parametrize("receiver", [[(503, 0.0)] * 10], indirect=True)
def test_a_delivery_is_given_up_after_its_bound(clocked, receiver, caplog):
    rt, loop, clock, agent = clocked('''
[[rule]]
name = "not-ready"
kind = "workstation_not_ready"
''', _hook("hook", "webhook", receiver.url),
        'attempts = 1\nbackoff = "0s"\nretry = "10s"\ngive_up_after = "25s"\n')
    _store_heartbeat(rt, agent, 1, LOSSY)
    loop.check_once()                   # round 1 fails: due again in 10 s
    assert receiver.hits == [503]
    clock.t += 5
    loop.check_once()
    assert receiver.hits == [503]       # not before its time
    clock.t += 5
    loop.check_once()                   # round 2 fails; the next (20 s) would pass the bound
    assert receiver.hits == [503, 503]
    clock.t += 60                       # (still online: its deadline is 180 s after)
    loop.check_once()
    assert receiver.hits == [503, 503]
    (incident,) = loop.store.incidents(None, 10)
    (delivery,) = incident.deliveries
    assert (delivery.state, delivery.tries, delivery.last_error) == ("failed", 2, "HTTP 503")
    gave_up = [r.getMessage() for r in caplog.records if "giving up" in r.getMessage()]
    assert gave_up == [f"alert delivery to channel hook failed (HTTP 503) for 2 round(s), "
                       f"giving up: incident {incident.event.incident_id}, opened not "
                       "delivered"]


@pytest.mark.parametrize("receiver", [[(404, 0.0)]], indirect=True)
def test_a_refused_delivery_fails_at_once_and_the_recovery_still_goes(clocked, receiver):
    rt, loop, clock, agent = clocked('''
[[rule]]
name = "not-ready"
kind = "workstation_not_ready"
''', _hook("hook", "webhook", receiver.url), 'backoff = "0s"\nretry = "1s"\n')
    _store_heartbeat(rt, agent, 1, LOSSY)
    loop.check_once()
    clock.t += 60
    _store_heartbeat(rt, agent, 2, GOOD)
    loop.check_once()
    assert receiver.hits == [404, 200]
    assert [e["event"] for e in receiver.accepted] == ["incident_resolved"]
    (incident,) = loop.store.incidents(None, 10)
    assert sorted((d.event, d.state) for d in incident.deliveries) == [
        ("opened", "failed"), ("resolved", "sent")]


def test_a_check_no_workstation_fails_any_more_resolves_with_its_facts(clocked, receiver):
    rt, loop, clock, agent = clocked('''
[[rule]]
name = "isp"
kind = "check_failing"
at_least = 1
''', _hook("hook", "webhook", receiver.url), 'backoff = "0s"\n')
    _store_heartbeat(rt, agent, 1, LOSSY)
    loop.check_once()
    _store_heartbeat(rt, agent, 2, GOOD)   # no workstation fails network.loss now
    loop.check_once()
    opened, resolved = receiver.accepted
    assert opened["facts"] == {"team": None, "check_id": "network.loss", "count": 1,
                               "seen": 1, "percent": 100.0}
    assert resolved["resolved_facts"] == {"team": None, "check_id": "network.loss",
                                          "count": 0, "seen": 1, "percent": 0.0}
    assert resolved["message"]["params"]["count"] == 0
