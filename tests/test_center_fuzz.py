"""Any input to the center's API gives an answer below 500 (the issue's "no input produces a
500"), proved against a real ``agent-center serve``:

- schemathesis generates requests from the published OpenAPI document (every operation, valid
  and invalid data), sent with the admin token; bodies for workstation operations are also sent
  correctly signed, so validation and intake are reached, not only the signature check;
- hypothesis sends raw garbage over a socket: random bytes as bodies, hostile header values,
  odd paths and methods.
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

pytestmark = pytest.mark.lab
SIGNED = {"/api/v1/heartbeats", "/api/v1/policy", "/api/v1/reports"}
FUZZ = settings(max_examples=30, deadline=None, derandomize=True,
                suppress_health_check=list(HealthCheck))


@pytest.fixture(scope="module")
def center(tmp_path_factory):
    with run_center(tmp_path_factory.mktemp("fuzz-center")) as c:
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


@schema.parametrize()
@FUZZ
def test_generated_requests_never_get_a_500(case, center, workstation):
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
