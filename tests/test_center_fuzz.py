"""Any input to the center's API gives an answer below 500 (the issue's "no input produces a
500"), proved against a real ``agent-center serve`` on SQLite and on PostgreSQL (whose text
cannot hold NUL: a NUL that reached it once gave 500s and 503s):

- schemathesis generates requests from the published OpenAPI document (every operation, valid
  and invalid data), sent with the admin token; bodies for workstation operations are also sent
  correctly signed, so validation and intake are reached, not only the signature check; and
  most examples get one hostile string (NUL, another control character, non-ASCII text) in
  place of one of their strings (a query or path parameter, a string of the JSON body);
- hypothesis sends raw garbage over a socket: random bytes as bodies, hostile header values,
  odd paths and methods.

Both centers get the same examples (derandomized), 15 per operation (30 when only SQLite was
fuzzed): the module costs the CPU time it did then.
"""

from __future__ import annotations

import json
import socket
import time

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.center_seed import run_center, signature
from tests.lab.postgres import postgres_cluster

pytestmark = pytest.mark.lab
SIGNED = {"/api/v1/heartbeats", "/api/v1/policy", "/api/v1/reports"}
FUZZ = settings(max_examples=30, deadline=None, derandomize=True,
                suppress_health_check=list(HealthCheck))
GENERATED = settings(FUZZ, max_examples=15)
# What a hostile client puts in a string: NUL and other control characters (C0, DEL, C1, an
# escape sequence), non-ASCII text, and any UTF-8 text at all (no lone surrogates: they cannot
# be encoded into a URL or UTF-8, and the hostile module sends them in JSON).
HOSTILE_TEXT = st.one_of(
    st.sampled_from(["\x00", "a\x00b", "\x1b[2J", "\x07", "\x7f", "\x85", "\x9b31m", "tab\there",
                     "日本語", "Åäö", "😀", "\u202e", "\ufeff", "=HYPERLINK(\"x\")"]),
    st.text(st.characters(codec="utf-8"), min_size=1, max_size=30))


@pytest.fixture(scope="module")
def pg_url():
    with postgres_cluster() as url:
        yield url


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def center(request, tmp_path_factory):
    args = ["--db", request.getfixturevalue("pg_url")] if request.param == "postgresql" else []
    with run_center(tmp_path_factory.mktemp(f"fuzz-{request.param}"), extra_args=args) as c:
        yield c


@pytest.fixture(scope="module")
def workstation(center):
    return center.enroll(center.create_token(), "fuzz-ws")


@pytest.fixture(scope="module")
def api_schema(center):
    return schemathesis.openapi.from_url(f"{center.url}/api/v1/openapi.json")


schema = schemathesis.pytest.from_fixture("api_schema")


def _assert_json_error(response: httpx.Response | object, what: str) -> None:
    status = response.status_code  # type: ignore[attr-defined]
    assert status < 500, f"{what} -> {status}: {response.text[:300]}"  # type: ignore[attr-defined]
    if status >= 400:
        body = response.json()  # type: ignore[attr-defined]
        assert isinstance(body, dict) and body.get("error"), f"{what}: {body}"


def _string_spots(value: object) -> list[tuple[dict | list, str | int]]:
    """Every (container, key) of a JSON value that holds a string."""
    spots: list[tuple[dict | list, str | int]] = []
    items = value.items() if isinstance(value, dict) else \
        enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        if isinstance(item, str):
            spots.append((value, key))  # type: ignore[arg-type]
        else:
            spots += _string_spots(item)
    return spots


def _put_hostile_text(case, data) -> None:
    """Replace one string of the case (query, path parameter or JSON body) with hostile text,
    in most examples (hypothesis draws where, what, and whether)."""
    spots = [(params, key) for params in (case.query, case.path_parameters)
             if isinstance(params, dict) for key, v in params.items() if isinstance(v, str)]
    spots += _string_spots(case.body)
    if spots and data.draw(st.integers(0, 3), label="hostile?") > 0:
        container, key = data.draw(st.sampled_from(spots), label="where")
        container[key] = data.draw(HOSTILE_TEXT, label="hostile text")


@schema.parametrize()
@schema.given(data=st.data())
@GENERATED
def test_generated_requests_never_get_a_500(case, data, center, workstation):
    _put_hostile_text(case, data)
    response = case.call(headers={"Authorization": f"Bearer {center.admin_token}"}, timeout=30)
    _assert_json_error(response, f"{case.method} {case.formatted_path}")
    if case.path in SIGNED and case.method.upper() in ("POST", "GET"):
        unset = case.body is None or type(case.body).__name__ == "NotSet"
        raw = b"" if unset or case.method.upper() == "GET" else (
            case.body if isinstance(case.body, bytes) else
            case.body.encode() if isinstance(case.body, str) else
            json.dumps(case.body, default=repr).encode())
        ts = int(time.time())
        path = case.formatted_path
        ctype = "text/html" if path.endswith("/reports") else "application/json"
        signed = httpx.request(case.method.upper(), center.url + path, content=raw, timeout=30,
                               headers={"Content-Type": ctype, "X-Agent-Id": workstation.agent_id,
                                        "X-Agent-Timestamp": str(ts),
                                        "X-Agent-Signature": signature(
                                            workstation.secret, case.method.upper(), path, ts,
                                            raw)})
        _assert_json_error(signed, f"signed {case.method} {path}")


PATHS = ["/api/v1/enroll", "/api/v1/heartbeats", "/api/v1/agents", "/api/v1/tokens",
         "/api/v1/gate/x", "/api/v1/session", "/api/v1/reports", "/metrics", "/healthz",
         "/api/v1/agents/%00", "/api/v1/agents/..%2f..%2fetc", "/static/../../etc/passwd",
         "/api/v1/agents.csv?limit=-1&sort=%ff", "/" + "a" * 3000]
header_text = st.binary(max_size=300).map(
    lambda b: b.replace(b"\r", b"").replace(b"\n", b"").replace(b":", b""))


def _raw_request(port: int, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        sock.shutdown(socket.SHUT_WR)
        chunks = []
        while True:
            try:
                data = sock.recv(65536)
            except (ConnectionResetError, TimeoutError):
                break
            if not data:
                break
            chunks.append(data)
    return b"".join(chunks)


@given(method=st.sampled_from([b"GET", b"POST", b"DELETE", b"PUT", b"PATCH", b"OPTIONS"]),
       path=st.sampled_from(PATHS), body=st.binary(max_size=2000),
       ctype=st.sampled_from([b"application/json", b"text/html", b"application/x-www-form-"
                              b"urlencoded", b"multipart/form-data; boundary=x", b"\xff\xfe",
                              b""]),
       hostile=st.lists(st.tuples(st.sampled_from([b"Authorization", b"X-Agent-Id",
                                                   b"X-Agent-Timestamp", b"X-Agent-Signature",
                                                   b"Cookie", b"Content-Length", b"Host",
                                                   b"Transfer-Encoding"]), header_text),
                        max_size=4))
@FUZZ
def test_garbage_bytes_and_hostile_headers_never_get_a_500(center, method, path, body, ctype,
                                                            hostile):
    port = int(center.url.rsplit(":", 1)[1])
    names = {n.lower() for n, _ in hostile}
    head = [method + b" " + path.encode() + b" HTTP/1.1", b"Host: 127.0.0.1",
            b"Connection: close", b"Content-Type: " + ctype]
    if b"content-length" not in names and b"transfer-encoding" not in names:
        head.append(b"Content-Length: " + str(len(body)).encode())
    head += [n + b": " + v for n, v in hostile]
    answer = _raw_request(port, b"\r\n".join(head) + b"\r\n\r\n" + body)
    status_line = answer.split(b"\r\n", 1)[0]
    if status_line:  # a request the HTTP parser rejects may just be closed: that is fine
        code = int(status_line.split()[1])
        assert code < 500, answer[:400]
    assert httpx.get(f"{center.url}/healthz", timeout=10).status_code == 200
    assert httpx.head(f"{center.url}/healthz", timeout=10).status_code == 200  # load balancers
