"""Webhook delivery (agent_kit/center/alerts.py) against a real local HTTP receiver: transient
failures (5xx, 429, a timeout, nobody listening) are tried again up to the bound, a refusal
(4xx) is not, and with two center processes on one database an alert is claimed, and
delivered, by exactly one of them, once, through the receiver's failures. The back-off comes
from the center's settings (0 here, so the tests do not wait)."""

from __future__ import annotations

import http.server
import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from stamina.instrumentation import RetryDetails, get_on_retry_hooks, set_on_retry_hooks

from agent_kit.center.alerts import AlertLoop, post_json
from agent_kit.center.models import Heartbeat
from agent_kit.center.runtime import build_runtime
from agent_kit.center.settings import CenterSettings
from tests.center_seed import free_port, heartbeat

FAST = {"attempts": 3, "timeout_s": 2.0, "backoff_s": 0.0}
HOLD = -1.0      # a script delay: answer only once the test releases the receiver


class Receiver(http.server.ThreadingHTTPServer):
    """Answers each POST with the next scripted status (then 200): ``(status, delay_s)``; a
    delay of ``HOLD`` keeps that answer back until ``release`` is set (at most 10 s)."""

    def __init__(self, script: list[tuple[int, float]]) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.script = list(script)
        self.hits: list[int] = []                 # the status answered to each POST
        self.accepted: list[dict] = []            # bodies answered 2xx: delivered
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
            if 200 <= status < 300:
                self.server.accepted.append(body)
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        return None


@pytest.fixture
def receiver(request) -> Iterator[Receiver]:
    server = Receiver(getattr(request, "param", []))
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                     daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("receiver", [[(500, 0.0), (503, 0.0)]], indirect=True)
def test_two_server_errors_then_delivered_once(receiver):
    assert post_json(receiver.url, {"event": "agent_offline"}, **FAST) is True
    assert receiver.hits == [500, 503, 200]
    assert receiver.accepted == [{"event": "agent_offline"}]


@pytest.mark.parametrize("receiver", [[(429, 0.0)]], indirect=True)
def test_too_many_requests_is_tried_again(receiver):
    assert post_json(receiver.url, {"n": 1}, **FAST) is True
    assert receiver.hits == [429, 200]


@pytest.mark.parametrize("receiver", [[(400, 0.0)], [(404, 0.0)], [(410, 0.0)]],
                         indirect=True)
def test_a_refusal_is_not_tried_again(receiver):
    assert post_json(receiver.url, {"n": 1}, **FAST) is False
    assert len(receiver.hits) == 1 and receiver.accepted == []


@pytest.mark.parametrize("receiver", [[(500, 0.0)] * 5], indirect=True)
def test_tries_are_bounded(receiver):
    assert post_json(receiver.url, {"n": 1}, **FAST) is False
    assert receiver.hits == [500, 500, 500]


@pytest.mark.parametrize("receiver", [[(200, HOLD)]], indirect=True)
def test_a_timeout_is_tried_again(receiver):
    assert post_json(receiver.url, {"n": 1}, attempts=3, timeout_s=0.2, backoff_s=0.0) is True
    # delivered by a later try while the first was still held: it did not wait for it
    assert receiver.held == 1 and receiver.hits[-1] == 200 and receiver.accepted
    receiver.release.set()
    # the first request was answered (late, to nobody), then the second: at least once
    deadline = time.monotonic() + 10
    while len(receiver.hits) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
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
    assert post_json(f"http://127.0.0.1:{free_port()}/hook", {"n": 1}, **FAST) is False
    # three tries, so two retries, each refused at once and none waited for (no back-off)
    assert [r.retry_num for r in retries] == [1, 2]
    assert all(r.wait_for == 0 for r in retries), retries
    assert all(type(r.caused_by).__name__ == "ConnectError" for r in retries)


@pytest.mark.parametrize("receiver", [[(500, 0.0), (502, 0.0)]], indirect=True)
def test_two_processes_one_database_one_delivery(receiver, tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("AGENT_CENTER_ADMIN_TOKEN", "adm-test-" + "0" * 32)
    settings = CenterSettings(db_url=f"sqlite:///{tmp_path / 'center.db'}",
                              data_dir=str(tmp_path), webhook_url=receiver.url,
                              webhook_backoff_s=0.0, webhook_timeout_s=2.0)
    a, b = build_runtime(settings), build_runtime(settings)   # two processes' runtimes
    try:
        token, _, _ = a.store.create_token(1, 3600, None, a.now)
        agent_id, _ = a.store.enroll(token, "home-1", None, a.now)
        bad = heartbeat(1, datetime.now(UTC), {"vpn.connected": ("pass", None),
                                               "audio.headset": ("pass", None),
                                               "network.jitter": ("fail", 45.0)},
                        interval_s=60)
        a.intake.start()
        b.intake.start()
        asyncio_store(a, agent_id, bad)
        sent = [AlertLoop(a).check_once(), AlertLoop(b).check_once(),
                AlertLoop(a).check_once()]
    finally:
        a.close()
        b.close()
    assert sorted(sent) == [0, 0, 1]
    assert receiver.hits == [500, 502, 200]
    assert [(e["event"], e["agent_id"], e["failing"]) for e in receiver.accepted] == [
        ("agent_not_ready", agent_id, ["network.jitter"])]
    retries = [r.getMessage() for r in caplog.records if r.name == "agent_kit.center.alerts"]
    assert retries == ["webhook delivery failed (try 1), trying again in 0.0 s: HTTP 500",
                       "webhook delivery failed (try 2), trying again in 0.0 s: HTTP 502"]


def asyncio_store(rt, agent_id: str, body: dict) -> None:
    import asyncio

    batch = [Heartbeat.model_validate_json(json.dumps(body))]
    asyncio.run(rt.intake.store(agent_id, batch, rt.now))
