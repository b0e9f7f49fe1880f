"""Test helper: a real ``agent-center serve`` process, and workstations that talk to it.

Everything goes through the center's HTTP API exactly as docs/center-api.md writes it:
enrollment with a token made by the admin API, heartbeats signed with HMAC-SHA256 over
``METHOD\\nPATH\\nTIMESTAMP\\nhex(SHA256(body))`` with the per-workstation secret. The signature
and the heartbeat body are the agent's own (``agent_kit.core.wire``: one definition that the
agent and the center both import); tests/test_heartbeat_client.py checks the signature against
the documented formula.
"""

from __future__ import annotations

import contextlib
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

from agent_kit.core.checks import BY_ID, CATALOGUE
from agent_kit.core.results import CheckResult, Status
from agent_kit.core.wire import heartbeat as wire_heartbeat
from agent_kit.core.wire import signing

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

    def create_token(self, uses: int = 100, ttl_s: int = 3600, note: str | None = None,
                     team: str | None = None) -> str:
        with self.admin() as client:
            response = client.post("/api/v1/tokens", json={"uses": uses, "ttl_s": ttl_s,
                                                           "note": note, "team": team})
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
               extra_args: Sequence[str] = (), log_path: Path | None = None,
               env: Mapping[str, str] | None = None,
               port: int | None = None) -> Iterator[Center]:
    """Start ``agent-center serve`` on free loopback ports (``port``: this HTTP port, for a
    URL that must be known before, such as a single sign-on redirect URL); stop it (SIGTERM)
    afterwards. ``env``: more environment (e.g. the ``AGENT_CENTER_SECRETS_KEY`` that several
    processes on one PostgreSQL share)."""
    port, udp_port = port or free_port(), free_port(socket.SOCK_DGRAM)
    data_dir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "AGENT_CENTER_ADMIN_TOKEN": admin_token, **(env or {})}
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
    """The workstation signature of docs/center-api.md (``core.wire.signing.sign``)."""
    return signing.sign(secret, method, path, timestamp, body)


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
        headers = signing.signature_headers(self.agent_id, self.secret, method,
                                            path.split("?")[0], raw, ts)
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

    def send(self, heartbeats: Sequence[wire_heartbeat.Heartbeat]) -> dict[str, Any]:
        """POST the heartbeats (in batches of 500); the center's acknowledgements."""
        results: list[Any] = []
        step = wire_heartbeat.MAX_BATCH
        for start in range(0, len(heartbeats), step):
            response = self.request("POST", wire_heartbeat.PATH,
                                    wire_heartbeat.heartbeat_batch(heartbeats[start:start + step]))
            if response.status_code != 200:
                raise AssertionError(f"heartbeats: {response.status_code} {response.text}")
            results += response.json()["results"]
        return {"results": results}


Reading = tuple[str, float | None]  # (status, value)


def heartbeat(seq: int, measured_at: datetime, readings: Mapping[str, Reading],
              interval_s: float = 15, gate_open: bool | None = None,
              reasons: Sequence[str] = (), gate_since: datetime | None = None,
              agent_version: str = "0.1.0",
              messages: Mapping[str, str] | None = None) -> wire_heartbeat.Heartbeat:
    """One heartbeat as the agent sends it, made by the agent's builder from a CheckResult per
    reading (the verdict is the agent's); the gate is open unless a check fails (or as
    given)."""
    messages = messages or {}
    results = [CheckResult(id=check_id, group=check_id.split(".")[0], status=Status(status),
                           value=value, unit=BY_ID[check_id].unit if check_id in BY_ID else None,
                           warn=None, fail=None, message=messages.get(check_id, ""))
               for check_id, (status, value) in readings.items()]
    return sent_heartbeat(seq, results, measured_at, interval_s=interval_s, gate_open=gate_open,
                          reasons=reasons, gate_since=gate_since, agent_version=agent_version)


def sent_heartbeat(seq: int, results: Sequence[CheckResult], measured_at: datetime, *,
                   interval_s: float = 15, gate_open: bool | None = None,
                   reasons: Sequence[str] = (), gate_since: datetime | None = None,
                   agent_version: str = "0.1.0") -> wire_heartbeat.Heartbeat:
    """The heartbeat of these results, built and numbered as the agent's monitor and spool do
    (``core.wire.heartbeat``); the gate is open unless a result blocks (or as given)."""
    is_open = not any(r.blocks for r in results) if gate_open is None else gate_open
    content = wire_heartbeat.build_heartbeat(
        results, gate_open=is_open, gate_reasons=reasons, interval_s=interval_s,
        gate_since=gate_since.timestamp() if gate_since is not None else None,
        measured_at=measured_at.timestamp(), agent_version=agent_version)
    return wire_heartbeat.identified_heartbeat(content, seq=seq)


# A typical mid-shift state of every check of the catalogue, with the agent's own words (values
# and messages as in docs/sample-report.html): what a real heartbeat carries.
TYPICAL: dict[str, tuple[Status, float | str | None, str]] = {
    "system.cpu": (Status.PASS, 26.0, "CPU 26 % busy on 4 cores"),
    "system.memory": (Status.PASS, 5120.0, "5120 MB of 8192 MB memory available"),
    "system.disk": (Status.PASS, 76.6, "76.6 GB free on C:\\"),
    "system.power": (Status.PASS, None, "no battery: mains powered"),
    "system.uptime": (Status.PASS, 0.4, "restarted 0.4 days ago"),
    "network.link": (Status.PASS, "wired", "wired Ethernet (eth0, 1000 Mbit/s)"),
    "vpn.connected": (Status.PASS, "yes", "VPN tunnel tun0 is up (OpenVPN)"),
    "vpn.route": (Status.PASS, "tun0", "center 10.8.0.1 is reached via tun0: through the VPN"),
    "network.rtt": (Status.PASS, 23.4, "23.4 ms round trip to the center (95 % of packets "
                                       "within 31.0 ms)"),
    "network.jitter": (Status.PASS, 4.2, "4.2 ms jitter (towards the center 3.9 ms, back "
                                         "4.4 ms)"),
    "network.loss": (Status.PASS, 0.3, "0.3 % of packets lost (1 of 300; worst 200 ms: 2 %)"),
    "network.mos": (Status.PASS, 4.31, "estimated MOS 4.31 (R 90) for G.711 calls"),
    "network.hops": (Status.PASS, "clean", "no hop on the way to the center adds delay or loss"),
    "bandwidth.down": (Status.PASS, 94.2, "download 94.2 Mbit/s"),
    "bandwidth.up": (Status.WARN, 9.5, "upload 9.5 Mbit/s"),
    "bandwidth.bufferbloat": (Status.WARN, 36.9, "grade B: latency rises by 37 ms while "
                                                 "uploading (22.8 ms idle, 59.7 ms loaded)"),
    "audio.headset": (Status.PASS, "usb_headset", "calls use Jabra Evolve2 40 (USB headset)"),
    "audio.noise": (Status.PASS, -58.2, "background noise -58 dBFS(A)"),
    "audio.speech_level": (Status.PASS, -21.5, "speech at -21.5 dBFS (P.56 active level)"),
    "audio.snr": (Status.PASS, 36.7, "speech 36.7 dB above the room noise"),
    "audio.clipping": (Status.PASS, 0.0, "0.000 % of the sound clipped (0 times)"),
    "audio.dropouts": (Status.PASS, 0.0, "0 dropouts in 4.5 s of sound"),
    "audio.hum": (Status.PASS, -120.0, "no mains hum"),
    "audio.voice_bandwidth": (Status.PASS, 7.25, "the microphone sends your voice up to 7.2 "
                                                 "kHz: wideband (HD voice) sound"),
}


def typical_results() -> tuple[CheckResult, ...]:
    """A CheckResult for every check of the catalogue (a check without a typical reading above
    gets a plain pass with a message of typical length)."""
    out = []
    for spec in CATALOGUE:
        status, value, message = TYPICAL.get(spec.id, (Status.PASS, 1.0,
                                                       f"{spec.id} measured: as expected"))
        out.append(CheckResult(id=spec.id, group=spec.group, status=status, value=value,
                               unit=spec.unit, warn=None, fail=None, message=message))
    return tuple(out)


def typical_heartbeat(seq: int, measured_at: datetime | None = None,
                      gate_since: datetime | None = None) -> wire_heartbeat.Heartbeat:
    """A realistic heartbeat: every catalogue check with its message, the gate open since the
    start of the shift (what the load bench sends and the validation micro-benchmark times)."""
    at = measured_at or datetime.now(UTC)
    return sent_heartbeat(seq, typical_results(), at,
                          gate_since=gate_since or at - timedelta(hours=2))


def history(count: int, readings: Callable[[int], Mapping[str, Reading]],
            end: datetime | None = None, interval_s: float = 15,
            first_seq: int = 1) -> list[wire_heartbeat.Heartbeat]:
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


def home_results(*, vpn_up: bool = True, link: tuple[str, str, int | None] = ("eth0", "wired",
                 1000), microphone: str = "Jabra Evolve2 40", microphone_kind: str = "usb_headset",
                 speaker: str | None = None) -> list[CheckResult]:
    """A workstation's VPN, link and headset checks judged by the agent's own evaluators
    (default policy), with their message ids and parameters: a tunnel up or not, the link
    ``(interface, kind, speed)`` and the default microphone (and another default speaker)."""
    from agent_kit.core.policy import load_policy
    from agent_kit.evaluate.audio import evaluate_headset
    from agent_kit.evaluate.link import evaluate_link
    from agent_kit.evaluate.vpn import evaluate_vpn
    from probes.audio.devices import AudioDevice, DeviceInventory
    from probes.network.vpn import TunnelInfo, VpnReading
    from probes.system import LinkReading

    policy = load_policy(None)
    tunnels = (TunnelInfo(name="tun0", is_up=True, addresses=("10.8.0.2",),
                          reason="a tun device"),) if vpn_up else ()
    vpn = VpnReading(tunnels=tunnels, center_host="center.example", center_address="10.8.0.1",
                     center_interface="tun0" if vpn_up else "eth0",
                     center_via_tunnel=vpn_up, default_interface="eth0",
                     default_via_tunnel=False, problem=None)
    interface, kind, speed = link
    mic = AudioDevice("input", "mic", microphone, microphone_kind,  # type: ignore[arg-type]
                      ("device.bus=usb",), True)
    out = AudioDevice("output", "out", speaker or microphone,
                      "builtin" if speaker else microphone_kind,  # type: ignore[arg-type]
                      (), True)
    return [*evaluate_vpn(vpn, policy),
            *evaluate_link(LinkReading(interface, kind, "", speed), policy),  # type: ignore[arg-type]
            evaluate_headset(DeviceInventory("pulseaudio", (mic, out)), policy)]
