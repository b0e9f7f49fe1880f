"""What crosses the network is defined once (agent_kit/core/wire) and both sides agree: a request
the agent's client signs verifies with the center's own functions, and any one-byte change does
not; a heartbeat the monitor builds (through the spool and the client, as sent) is accepted by
the center's route; the center's strict models are derived from the wire's declarations and
keep its limits; the lean monitor process still loads no pydantic."""

from __future__ import annotations

import asyncio
import json
import math
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from agent_kit.center import auth, models
from agent_kit.center.errors import APIError
from agent_kit.center.heartbeat_route import accept_heartbeats
from agent_kit.center.runtime import CenterRuntime, build_runtime
from agent_kit.center.settings import CenterSettings
from agent_kit.core.checks import CATALOGUE
from agent_kit.core.results import CheckResult, Status
from agent_kit.core.wire import heartbeat as wire
from agent_kit.core.wire import signing
from agent_kit.link.client import CenterClient
from agent_kit.link.report_upload import upload_report
from agent_kit.link.state_folder import Enrollment
from agent_kit.loop.hysteresis import Gate
from agent_kit.loop.monitor import build_heartbeat
from agent_kit.loop.spool import Spool
from tests.center_seed import typical_heartbeat, typical_results

ROOT = Path(__file__).resolve().parents[1]
NOW = 1_800_000_000.0


@pytest.fixture
def center(tmp_path, monkeypatch):
    """A real center runtime (SQLite) with one enrolled workstation, its clock at NOW."""
    monkeypatch.setenv("AGENT_CENTER_ADMIN_TOKEN", "adm-wire-test-" + "0" * 32)
    rt = build_runtime(CenterSettings(db_url=f"sqlite:///{tmp_path / 'center.db'}",
                                      data_dir=str(tmp_path), now=lambda: NOW))
    token, _, _ = rt.store.create_token(1, 3600, None, NOW)
    made = rt.store.enroll(token, "home-wire", None, NOW)
    assert made is not None
    agent_id, _ = made
    secret, _ = rt.agent_auth(agent_id) or ("", True)
    rt.intake.start()
    try:
        yield rt, Enrollment(center_url="http://center.test", agent_id=agent_id, secret=secret)
    finally:
        rt.close()


def sent_by_the_agent(enrollment: Enrollment, method: str, path: str,
                      payload: object = None) -> httpx.Request:
    """The request the agent's CenterClient puts on the wire (captured, answered 200)."""
    seen: list[httpx.Request] = []

    def capture(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"results": [], "server_time": int(NOW)})

    with CenterClient(enrollment, transport=httpx.MockTransport(capture),
                      clock=lambda: NOW) as client:
        client.request(method, path, payload)
    return seen[0]


def center_verifies(rt: CenterRuntime, method: str, path: str, headers: httpx.Headers,
                    body: bytes) -> str:
    """What the center's auth does with a request (auth.py, both ways in): the agent id."""
    agent_id, timestamp, signature = auth.signature_headers(
        rt, headers.get(signing.AGENT_ID_HEADER), headers.get(signing.TIMESTAMP_HEADER),
        headers.get(signing.SIGNATURE_HEADER), "127.0.0.1")
    asyncio.run(auth.verify_workstation(rt, method, path, agent_id, timestamp, body, signature,
                                        "127.0.0.1"))
    return agent_id


def one_byte_changed(text: bytes | str, at: int = -1) -> bytes | str:
    if isinstance(text, str):
        return text[:at] + chr(ord(text[at]) ^ 1) + text[at:][1:]
    return text[:at] + bytes([text[at] ^ 1]) + text[at:][1:]


def test_a_request_the_agent_signs_verifies_at_the_center_and_no_byte_can_change(center):
    rt, enrollment = center
    request = sent_by_the_agent(enrollment, "POST", wire.PATH,
                                wire.heartbeat_batch([typical_heartbeat(1)]))
    method, path, body = request.method, request.url.path, request.content
    assert center_verifies(rt, method, path, request.headers, body) == enrollment.agent_id

    def refused(method: str, path: str, headers: httpx.Headers, body: bytes) -> str:
        with pytest.raises(APIError) as caught:
            center_verifies(rt, method, path, headers, body)
        return f"{caught.value.status_code} {caught.value.error}"

    for at in (0, len(body) // 2, -1):
        assert refused(method, path, request.headers, one_byte_changed(body, at)) \
            == "401 bad_signature"
    assert refused(method, one_byte_changed(path), request.headers, body) == "401 bad_signature"
    assert refused("PUT", path, request.headers, body) == "401 bad_signature"
    assert refused(one_byte_changed(method), path, request.headers, body) == "401 bad_signature"
    timestamp = request.headers[signing.TIMESTAMP_HEADER]
    moved = httpx.Headers({**request.headers, signing.TIMESTAMP_HEADER:
                           one_byte_changed(timestamp)})  # one second off, inside the window
    assert refused(method, path, moved, body) == "401 bad_signature"
    # a GET (no body) and the report upload (its own client) are signed the same one way
    get = sent_by_the_agent(enrollment, "GET", "/api/v1/policy")
    assert center_verifies(rt, "GET", "/api/v1/policy", get.headers, b"") == enrollment.agent_id
    uploads: list[httpx.Request] = []

    def report_center(request: httpx.Request) -> httpx.Response:
        uploads.append(request)
        return httpx.Response(201, json={"report_id": "r1"})

    upload_report(enrollment, "<h1>report</h1>", transport=httpx.MockTransport(report_center),
                  clock=lambda: NOW)
    (upload,) = uploads
    assert center_verifies(rt, "POST", upload.url.path, upload.headers, upload.content) \
        == enrollment.agent_id


def test_hostile_signature_headers_are_refused_not_a_crash():
    good = ("ws-1", str(int(NOW)), "a" * 64)
    assert signing.parse_signature_headers(*good) == good
    for agent_id, timestamp, signature in [
            ("ws-1", "\u00b2" * 3, "a" * 64),            # digits int() does not read
            ("ws-1", "1e9", "a" * 64), ("ws-1", "-170", "a" * 64),
            ("ws-1", "1" * 13, "a" * 64), ("w" * 65, "17", "a" * 64),
            ("ws-1", "17", "\u00e9" * 64), ("ws-1", "17", "a" * 63)]:
        with pytest.raises(signing.SignatureMalformed):
            signing.parse_signature_headers(agent_id, timestamp, signature)
    for missing in [(None, "1", "a" * 64), ("ws-1", "", "a" * 64), ("ws-1", "1", None)]:
        with pytest.raises(signing.SignatureMissing):
            signing.parse_signature_headers(*missing)
    assert not signing.signature_matches("k", "GET", "/", "1", b"", "\u00e9" * 64)
    assert signing.within_clock_window(str(int(NOW) + signing.CLOCK_WINDOW_S), NOW)
    assert not signing.within_clock_window(str(int(NOW) + signing.CLOCK_WINDOW_S + 1), NOW)


def test_a_heartbeat_the_monitor_builds_is_stored_by_the_center(center, tmp_path):
    rt, enrollment = center
    gate = Gate(clock=lambda: NOW)
    results = typical_results()
    state = gate.observe(results, full=True, at=NOW)
    latest = {r.id: r for r in results}
    with Spool(tmp_path / "spool.db", enrollment.agent_id) as spool:
        spooled = spool.add(build_heartbeat(latest, state, interval_s=15, measured_at=NOW))
        request = sent_by_the_agent(enrollment, "POST", wire.PATH,
                                    wire.heartbeat_batch([spooled.body]))
    assert {c["id"] for c in spooled.body["checks"]} == {spec.id for spec in CATALOGUE}
    agent_id = center_verifies(rt, "POST", wire.PATH, request.headers, request.content)
    ack = asyncio.run(accept_heartbeats(rt, agent_id, request.headers["content-type"],
                                        request.content))
    assert ack["results"] == [{"id": spooled.id, "seq": 1, "status": "stored"}]
    (stored,) = rt.store.heartbeats(agent_id, 0, 10)
    assert stored["checks"] == spooled.body["checks"]      # every value and message as sent
    assert stored["gate"]["open"] is state.open and stored["verdict"] == "warn"


values = st.one_of(st.none(), st.booleans(), st.text(max_size=5), st.integers(-10**30, 10**30),
                   st.floats(allow_nan=True, allow_infinity=True))
# Any character, lone surrogates included, and often one the center refuses (core.wire.text):
# a message or a device name can carry them, and the builder must clean them.
any_chars = st.one_of(st.sampled_from("\x00\x1b\x7f\x85\x9b\ud800\udcff\t\n\r"),
                      st.characters(exclude_categories=()))
texts = st.text(any_chars, max_size=wire.MAX_TEXT_CHARS * 2)


@st.composite
def check_results(draw: st.DrawFn) -> CheckResult:
    spec = draw(st.sampled_from(CATALOGUE))
    return CheckResult(id=spec.id, group=spec.group, status=draw(st.sampled_from(list(Status))),
                       value=draw(values),
                       unit=draw(st.one_of(st.none(), st.text(any_chars, max_size=40))),
                       warn=None, fail=None, message=draw(texts),
                       unknown_blocks=draw(st.booleans()))


@given(results=st.lists(check_results(), max_size=wire.MAX_CHECKS + 30),
       reasons=st.lists(texts, max_size=wire.MAX_REASONS + 20), gate_open=st.booleans(),
       interval_s=st.floats(0, 10**6), since=st.one_of(st.none(), st.floats(0, 4e9)),
       dropped=st.integers(0, 10**6), version=st.text(any_chars, max_size=60))
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
def test_whatever_the_results_the_builders_heartbeat_is_valid_at_the_center(
        results, reasons, gate_open, interval_s, since, dropped, version):
    content = wire.build_heartbeat(results, gate_open=gate_open, gate_since=since,
                                   gate_reasons=reasons, interval_s=interval_s,
                                   measured_at=NOW, agent_version=version)
    body = json.dumps(wire.heartbeat_batch(
        [wire.identified_heartbeat(content, seq=7, dropped=dropped)])).encode()
    batch = models.HeartbeatBatch.model_validate_json(body)
    (hb,) = batch.heartbeats  # type: ignore[attr-defined]
    assert hb.seq == 7 and len(hb.checks) == min(len(results), wire.MAX_CHECKS)
    assert hb.dropped == (dropped or None)
    assert all(c.value is None or math.isfinite(c.value) for c in hb.checks)


def test_the_centers_models_keep_the_wire_limits():
    good = typical_heartbeat(3)
    models.HeartbeatBatch.model_validate_json(json.dumps({"heartbeats": [good]}))

    def refused(change: dict[str, object], *, batch: list[object] | None = None) -> bool:
        body = {"heartbeats": batch if batch is not None else [{**good, **change}]}
        try:
            models.HeartbeatBatch.model_validate_json(json.dumps(body))
        except ValidationError:
            return True
        return False

    checks, gate = good["checks"], good["gate"]
    long_message = [{**checks[0], "message": "x" * (wire.MAX_TEXT_CHARS + 1)}]
    assert refused({"checks": long_message})
    assert not refused({"checks": [{**checks[0], "message": "x" * wire.MAX_TEXT_CHARS}]})
    assert refused({"checks": checks[:1] * (wire.MAX_CHECKS + 1)})
    assert refused({"gate": {**gate, "reasons": ["r"] * (wire.MAX_REASONS + 1)}})
    assert refused({"agent_version": "v" * (wire.MAX_VERSION_CHARS + 1)})
    assert refused({"interval_s": wire.MAX_INTERVAL_S + 1}) and refused({"interval_s": 0.5})
    assert refused({"seq": "7"}) and refused({"seq": 0}) and refused({"seq": wire.MAX_SEQ + 1})
    assert refused({"measured_at": "2026-11-23T12:00:00"})          # no UTC offset
    assert refused({"id": "not-a-uuid"}) and refused({"agent_id": "ws-other"})
    assert refused({"checks": [{**checks[0], "id": "Network.Jitter"}]})
    assert refused({"checks": [{**checks[0], "extra": 1}]})
    assert refused({}, batch=[]) and refused({}, batch=[good] * (wire.MAX_BATCH + 1))
    marked = json.dumps({"heartbeats": [{**good, "checks": [{**checks[0], "value": 12345.678}]}]})
    for not_a_number in ("NaN", "Infinity", "-Infinity"):
        with pytest.raises(ValidationError):
            models.HeartbeatBatch.model_validate_json(marked.replace("12345.678", not_a_number))


def test_the_openapi_document_carries_the_wire_limits():
    schema = models.HeartbeatBatch.model_json_schema()
    heartbeat = schema["$defs"]["Heartbeat"]
    assert schema["properties"]["heartbeats"]["maxItems"] == wire.MAX_BATCH
    assert heartbeat["properties"]["checks"]["maxItems"] == wire.MAX_CHECKS
    assert heartbeat["additionalProperties"] is False
    assert list(heartbeat["properties"]) == list(wire.Heartbeat.__annotations__)
    assert heartbeat["properties"]["measured_at"]["format"] == "date-time"


def test_the_lean_monitor_process_loads_no_pydantic():
    lean = "import sys; sys.modules['httpx._main'] = None; import agent_kit.loop.monitor"
    proc = subprocess.run([sys.executable, "-X", "importtime", "-c", lean], capture_output=True,
                          text=True, cwd=ROOT, timeout=60)
    assert proc.returncode == 0, proc.stderr
    imported = {line.split("|")[-1].strip() for line in proc.stderr.splitlines()
                if line.startswith("import time:")}
    assert "agent_kit.core.wire.heartbeat" in imported and "agent_kit.core.wire.signing" in imported
    heavy = sorted(m for m in imported for h in ("pydantic", "pydantic_core", "annotated_types",
                                                 "fastapi", "agent_kit.center")
                   if m == h or m.startswith(h + "."))
    assert not heavy, heavy
