"""Test helper: a real ``agent-center serve`` process, and workstations that talk to it.

Everything goes through the center's HTTP API exactly as docs/center-api.md writes it:
enrollment with a token made by the admin API, heartbeats signed with HMAC-SHA256 over
``METHOD\\nPATH\\nTIMESTAMP\\nhex(SHA256(body))`` with the per-workstation secret. The signing is
written here from the document (not imported from the center), so a test that passes proves
the document and the server agree.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

START_TIMEOUT_S = 30.0


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    """A port nobody listens on right now (loopback)."""
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class Center:
    """A running center: where it listens and its admin token."""

    url: str
    admin_token: str
    data_dir: Path
    process: subprocess.Popen[bytes]

    def admin(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30.0,
                            headers={"Authorization": f"Bearer {self.admin_token}"})

    def create_token(self, uses: int = 100, ttl_s: int = 3600, note: str | None = None) -> str:
        with self.admin() as client:
            response = client.post("/api/v1/tokens",
                                   json={"uses": uses, "ttl_s": ttl_s, "note": note})
        response.raise_for_status()
        return str(response.json()["token"])

    def enroll(self, token: str, hostname: str, display_name: str | None = None) -> Workstation:
        body: dict[str, Any] = {"token": token, "hostname": hostname}
        if display_name is not None:
            body["display_name"] = display_name
        response = httpx.post(f"{self.url}/api/v1/enroll", json=body, timeout=30.0)
        if response.status_code != 201:
            raise AssertionError(f"enroll: {response.status_code} {response.text}")
        data = response.json()
        return Workstation(center_url=self.url, agent_id=data["agent_id"], secret=data["secret"],
                           interval_s=float(data["heartbeat_interval_s"]))


@contextlib.contextmanager
def run_center(data_dir: Path, admin_token: str = "admin-" + uuid.uuid4().hex,
               extra_args: Sequence[str] = (), log_path: Path | None = None) -> Iterator[Center]:
    """Start ``agent-center serve`` on free loopback ports; stop it (SIGTERM) afterwards."""
    port, udp_port = free_port(), free_port(socket.SOCK_DGRAM)
    data_dir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "AGENT_CENTER_ADMIN_TOKEN": admin_token}
    cmd = [sys.executable, "-c", "from agent_kit.center.cli import main; main()", "serve",
           "--data-dir", str(data_dir), "--host", "127.0.0.1", "--port", str(port),
           "--udp-port", str(udp_port), *extra_args]
    log = (log_path or data_dir / "center.log").open("wb")
    process = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT,
                               start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, process, log.name)
        yield Center(url=url, admin_token=admin_token, data_dir=data_dir, process=process)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        log.close()


def _wait_healthy(url: str, process: subprocess.Popen[bytes], log_name: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"agent-center serve exited with {process.returncode}: "
                               f"{Path(log_name).read_text(errors='replace')[-2000:]}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/healthz", timeout=1.0).status_code == 200:
                return
        time.sleep(0.1)
    raise RuntimeError(f"agent-center serve did not answer /healthz within {START_TIMEOUT_S} s: "
                       f"{Path(log_name).read_text(errors='replace')[-2000:]}")


def signature(secret: str, method: str, path: str, timestamp: int, body: bytes) -> str:
    """The workstation signature of docs/center-api.md:
    hex(HMAC-SHA256(secret, METHOD\\nPATH\\nTIMESTAMP\\nhex(SHA256(body))))."""
    message = "\n".join((method.upper(), path, str(timestamp), hashlib.sha256(body).hexdigest()))
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Workstation:
    """An enrolled workstation: signs its requests with its own secret."""

    center_url: str
    agent_id: str
    secret: str
    interval_s: float = 15.0

    def __repr__(self) -> str:
        return f"Workstation({self.agent_id!r})"

    def request(self, method: str, path: str, body: Any = None, timestamp: int | None = None,
                content: bytes | None = None,
                content_type: str = "application/json") -> httpx.Response:
        """A signed request; ``body`` is sent as JSON, ``content`` as it is."""
        raw = content if content is not None else (
            b"" if body is None else json.dumps(body).encode())
        ts = int(time.time()) if timestamp is None else timestamp
        headers = {"X-Agent-Id": self.agent_id, "X-Agent-Timestamp": str(ts),
                   "X-Agent-Signature": signature(self.secret, method, path.split("?")[0], ts, raw)}
        if raw:
            headers["Content-Type"] = content_type
        return httpx.request(method, self.center_url + path, content=raw, headers=headers,
                             timeout=30.0)

    def upload_report(self, html: str) -> str:
        """POST a diagnosis report (HTML); its report id."""
        response = self.request("POST", "/api/v1/reports", content=html.encode(),
                                content_type="text/html; charset=utf-8")
        if response.status_code != 201:
            raise AssertionError(f"report: {response.status_code} {response.text}")
        return str(response.json()["report_id"])

    def send(self, heartbeats: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        """POST the heartbeats (in batches of 500); the center's acknowledgements."""
        results: list[Any] = []
        for start in range(0, len(heartbeats), 500):
            response = self.request("POST", "/api/v1/heartbeats",
                                    {"heartbeats": list(heartbeats[start:start + 500])})
            if response.status_code != 200:
                raise AssertionError(f"heartbeats: {response.status_code} {response.text}")
            results += response.json()["results"]
        return {"results": results}


Reading = tuple[str, float | None]  # (status, value)


def heartbeat(seq: int, measured_at: datetime, readings: Mapping[str, Reading],
              interval_s: float = 15, gate_open: bool | None = None,
              reasons: Sequence[str] = (), gate_since: datetime | None = None,
              agent_version: str = "0.1.0",
              messages: Mapping[str, str] | None = None) -> dict[str, Any]:
    """One heartbeat as the agent sends it. The verdict is the worst status; the gate is open
    unless a check fails (or as given)."""
    from agent_kit.core.checks import BY_ID

    statuses = [status for status, _ in readings.values()]
    verdict = "fail" if "fail" in statuses else "warn" if "warn" in statuses else "pass"
    is_open = verdict != "fail" if gate_open is None else gate_open
    checks = []
    for check_id, (status, value) in readings.items():
        check: dict[str, Any] = {"id": check_id, "status": status, "value": value,
                                 "unit": BY_ID[check_id].unit if check_id in BY_ID else None}
        if messages and check_id in messages:
            check["message"] = messages[check_id]
        checks.append(check)
    gate: dict[str, Any] = {"open": is_open, "reasons": list(reasons)}
    if gate_since is not None:
        gate["since"] = gate_since.isoformat()
    return {"id": str(uuid.uuid4()), "seq": seq, "measured_at": measured_at.isoformat(),
            "interval_s": interval_s, "agent_version": agent_version, "verdict": verdict,
            "gate": gate, "checks": checks}


def history(count: int, readings: Callable[[int], Mapping[str, Reading]],
            end: datetime | None = None, interval_s: float = 15,
            first_seq: int = 1) -> list[dict[str, Any]]:
    """``count`` heartbeats one interval apart, the last at ``end`` (default now), with
    ``readings(i)`` the checks of the i-th; failing checks close the gate with a reason each."""
    end = end or datetime.now(UTC)
    out = []
    for i in range(count):
        at = end - timedelta(seconds=interval_s * (count - 1 - i))
        checks = readings(i)
        reasons = [f"{check_id} fails" for check_id, (status, _) in checks.items()
                   if status == "fail"]
        out.append(heartbeat(first_seq + i, at, checks, interval_s=interval_s, reasons=reasons))
    return out
