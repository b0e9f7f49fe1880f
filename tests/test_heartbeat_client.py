"""The heartbeat client against an in-memory center behind httpx.MockTransport.

The same behaviours are shown against the real `agent-center` in tests/test_monitor_faults.py;
these cover the error classes a real center is hard to make produce (429, lost answers...).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import random

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent_kit.core.wire.signing import signature_headers
from agent_kit.link.client import (
    CenterClient,
    CenterRefused,
    CenterUnavailable,
)
from agent_kit.link.state_folder import Enrollment
from agent_kit.loop.courier import Backoff, Courier
from agent_kit.loop.spool import Spool

ENR = Enrollment(center_url="http://center.test", agent_id="ws-1", secret="s3cret" * 8)
NOW = 1_800_000_000.0


class FakeCenter:
    """What docs/center-api.md says the center does with heartbeats, and nothing more."""

    def __init__(self, clock_s: float = NOW) -> None:
        self.clock_s = clock_s
        self.stored: dict[str, int] = {}     # id -> seq
        self.requests: list[list[int]] = []  # seqs per accepted request
        self.script: list[httpx.Response | Exception | None] = []   # next answers, None = real
        self.lose_answer_once = False
        self.bad_seq: int | None = None      # a heartbeat the center refuses (422)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if self.script:
            planned = self.script.pop(0)
            if isinstance(planned, Exception):
                raise planned
            if planned is not None:
                return planned
        body = request.content
        ts = int(request.headers["X-Agent-Timestamp"])
        expected = hmac.new(ENR.secret.encode(), "\n".join(
            (request.method, request.url.path, str(ts), hashlib.sha256(body).hexdigest())
        ).encode(), hashlib.sha256).hexdigest()
        if request.headers["X-Agent-Signature"] != expected:
            return httpx.Response(401, json={"error": "bad_signature", "detail": "no"})
        if abs(ts - self.clock_s) > 300:
            return httpx.Response(401, json={"error": "clock_skew", "detail": "off",
                                             "server_time": int(self.clock_s)})
        beats = json.loads(body)["heartbeats"]
        if self.bad_seq is not None and any(b["seq"] == self.bad_seq for b in beats):
            return httpx.Response(422, json={"error": "invalid", "detail": []})
        results = []
        for b in beats:
            dup = b["id"] in self.stored
            self.stored[b["id"]] = b["seq"]
            results.append({"id": b["id"], "seq": b["seq"],
                            "status": "duplicate" if dup else "stored"})
        self.requests.append([b["seq"] for b in beats])
        if self.lose_answer_once:
            self.lose_answer_once = False
            raise httpx.ReadTimeout("answer lost")
        return httpx.Response(200, json={"results": results, "server_time": int(self.clock_s)})


class Mono:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def make(tmp_path, center: FakeCenter, *, local_clock_s: float = NOW, batch_size: int = 100):
    spool = Spool(tmp_path / "spool.db", ENR.agent_id)
    client = CenterClient(ENR, transport=httpx.MockTransport(center),
                          clock=lambda: local_clock_s)
    mono = Mono()
    courier = Courier(spool, client, batch_size=batch_size,
                      backoff=Backoff(rng=random.Random(7)), clock=mono)
    return spool, client, courier, mono


def fill(spool: Spool, n: int) -> list[str]:
    return [spool.add({"verdict": "pass"}).id for _ in range(n)]


def test_signature_matches_the_documented_formula():
    headers = signature_headers("ws-1", "k", "post", "/api/v1/heartbeats", b'{"a":1}', 1700)
    body_hash = hashlib.sha256(b'{"a":1}').hexdigest()
    want = hmac.new(b"k", f"POST\n/api/v1/heartbeats\n1700\n{body_hash}".encode(),
                    hashlib.sha256).hexdigest()
    assert headers == {"X-Agent-Id": "ws-1", "X-Agent-Timestamp": "1700",
                       "X-Agent-Signature": want}


def test_newest_first_then_backlog_oldest_first_in_batches(tmp_path):
    center = FakeCenter()
    spool, _, courier, _ = make(tmp_path, center, batch_size=4)
    ids = fill(spool, 10)
    result = courier.deliver()
    assert result.delivered == 10 and result.error is None
    assert center.requests == [[10], [1, 2, 3, 4], [5, 6, 7, 8], [9]]
    assert set(center.stored) == set(ids) and spool.stats().pending == 0


def test_outage_keeps_everything_and_backs_off_with_jitter(tmp_path):
    center = FakeCenter()
    spool, _, courier, mono = make(tmp_path, center)
    fill(spool, 3)
    center.script = [httpx.ConnectError("refused")] * 4
    delays = []
    for _ in range(4):
        assert courier.due()
        result = courier.deliver()
        assert result.delivered == 0 and result.retry_in_s is not None
        delays.append(result.retry_in_s)
        assert not courier.due()
        mono.t += result.retry_in_s
    # 2 s, 4 s, 8 s, 16 s steps, each between half the step and the step
    for i, d in enumerate(delays):
        step = 2.0 * 2 ** i
        assert step / 2 <= d <= step
    fill(spool, 2)
    assert courier.deliver().delivered == 5
    assert len(center.stored) == 5 and spool.stats().pending == 0
    assert courier.backoff.failures == 0


def test_backoff_is_capped_and_jittered():
    backoff = Backoff(base_s=2, cap_s=60, rng=random.Random(1))
    delays = [backoff.next_delay() for _ in range(40)]
    assert max(delays) <= 60 and min(delays[10:]) >= 30
    assert len({round(d, 6) for d in delays[10:]}) > 20   # not in lock-step


@pytest.mark.parametrize("status", [429, 503])
def test_retry_after_is_respected(tmp_path, status):
    center = FakeCenter()
    spool, _, courier, _ = make(tmp_path, center)
    fill(spool, 1)
    center.script = [httpx.Response(status, headers={"Retry-After": "45"},
                                    json={"error": "busy", "detail": "later"})]
    result = courier.deliver()
    assert result.retry_in_s is not None and result.retry_in_s >= 45
    assert spool.stats().pending == 1


def test_a_lost_answer_is_resent_and_stored_once(tmp_path):
    center = FakeCenter()
    spool, _, courier, mono = make(tmp_path, center)
    ids = fill(spool, 3)
    center.lose_answer_once = True
    first = courier.deliver()
    assert first.error and spool.stats().pending == 3   # stored at the center, not acked here
    mono.t += 100
    second = courier.deliver()
    assert second.duplicates >= 1 and spool.stats().pending == 0
    assert sorted(center.stored) == sorted(ids)


def test_clock_skew_is_corrected_from_server_time(tmp_path):
    center = FakeCenter(clock_s=NOW)
    spool, client, courier, _ = make(tmp_path, center, local_clock_s=NOW - 1000)
    fill(spool, 2)
    assert courier.deliver().delivered == 2
    assert client.offset_s == pytest.approx(1000, abs=1)
    assert abs(client.now() - NOW) < 2


def test_a_malformed_heartbeat_is_isolated_and_dropped_not_retried(tmp_path):
    center = FakeCenter()
    spool, _, courier, _ = make(tmp_path, center)
    fill(spool, 5)
    center.bad_seq = 3
    result = courier.deliver()
    assert result.rejected == 1 and result.delivered == 4
    assert sorted(center.stored.values()) == [1, 2, 4, 5]
    assert spool.stats().pending == 0 and spool.stats().rejected_total == 1
    assert courier.due()   # not a reason to stop or back off


def test_retired_stops_delivery_and_keeps_the_spool(tmp_path):
    center = FakeCenter()
    spool, _, courier, _ = make(tmp_path, center)
    fill(spool, 2)
    center.script = [httpx.Response(403, json={"error": "retired", "detail": "revoked"})]
    result = courier.deliver()
    assert result.stopped is not None and result.stopped.retired
    assert not courier.due() and spool.stats().pending == 2
    assert courier.deliver().stopped is not None and not center.requests


def test_a_refused_signature_is_permanent(tmp_path):
    center = FakeCenter()
    spool = Spool(tmp_path / "s.db", "ws-1")
    wrong = Enrollment(center_url=ENR.center_url, agent_id="ws-1", secret="wrong")
    client = CenterClient(wrong, transport=httpx.MockTransport(center), clock=lambda: NOW)
    courier = Courier(spool, client, clock=Mono())
    fill(spool, 1)
    result = courier.deliver()
    assert result.stopped is not None and result.stopped.status == 401
    assert not result.stopped.retired and spool.stats().pending == 1


def test_request_errors_are_typed():
    def answer(request: httpx.Request) -> httpx.Response:
        return {"/a": httpx.Response(500, text="oops"),
                "/b": httpx.Response(404, json={"error": "not_found", "detail": "no"}),
                }[request.url.path]

    client = CenterClient(ENR, transport=httpx.MockTransport(answer))
    with pytest.raises(CenterUnavailable):
        client.request("GET", "/a")
    with pytest.raises(CenterRefused) as info:
        client.request("GET", "/b")
    assert info.value.credential_problem and "not_found" in str(info.value)


def test_the_secret_never_appears_in_a_repr_or_log(tmp_path, caplog):
    caplog.set_level("DEBUG")
    center = FakeCenter()
    spool, client, courier, _ = make(tmp_path, center)
    fill(spool, 1)
    center.script = [httpx.ConnectError("refused")]
    courier.deliver()
    assert ENR.secret not in repr(ENR) and ENR.secret not in caplog.text


faults = st.sampled_from(["ok", "connect", "timeout_after_store", "503", "429"])


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.integers(0, 4), faults), min_size=1, max_size=25))
def test_property_any_fault_sequence_ends_exactly_once(tmp_path_factory, plan):
    """Whatever mix of outages, lost answers and throttling: once the center is healthy again,
    it holds every heartbeat exactly once, seq 1..N."""
    center = FakeCenter()
    spool, _, courier, mono = make(tmp_path_factory.mktemp("p"), center, batch_size=3)
    for new, fault in plan:
        fill(spool, new)
        if fault == "connect":
            center.script = [httpx.ConnectError("down")]
        elif fault == "timeout_after_store":
            center.lose_answer_once = True
        elif fault in ("503", "429"):
            center.script = [httpx.Response(int(fault), json={"error": "busy", "detail": ""})]
        mono.t += 1000          # past any backoff
        courier.deliver()
        center.script, center.lose_answer_once = [], False
    mono.t += 1000
    courier.deliver()
    total = spool.stats().next_seq - 1
    assert spool.stats().pending == 0
    assert sorted(center.stored.values()) == list(range(1, total + 1))
