"""Fault tests: the real `agent-kit monitor` against the real `agent-center serve`.

Every process is real and talks HTTP over loopback; faults are real too: the center stopped for
a minute, `kill -9` of the monitor and of the center, a workstation clock 10 minutes off, a
workstation retired by IT. The monitor runs with a 1 s heartbeat interval (15 s in production)
so "minutes" of traffic fit in seconds, and with `--only system` plus a lenient policy so the
gate does not depend on this machine's audio hardware or load.

What "nothing lost, nothing duplicated" means here: the center's history for the workstation
holds seq 1..N, each once, where N is the last seq the workstation's spool handed out, and
every heartbeat the center acknowledged before a crash is still there after it.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from agent_kit.loop.state_file import read_state

pytestmark = pytest.mark.lab

LENIENT = """
[checks."system.cpu"]
warn = "none"
fail = "none"
min_cores = 1
[checks."system.memory"]
warn = 0
fail = 0
[checks."system.disk"]
warn = 0
fail = 0
[checks."system.uptime"]
warn = "none"
[checks."system.power"]
warn = 0
fail = 0
[checks."vpn.connected"]
unknown_blocks = false
[checks."audio.headset"]
unknown_blocks = false
"""
# The same file is the center's fleet policy (``serve --policy``): the center's gate denies a
# workstation that leaves out a check its policy blocks on or judges more leniently, so a
# system-only workstation is allowed only by a fleet policy that asks for no VPN or headset.


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class CenterProc:
    """``agent-center serve`` that can be stopped, killed and started again on the same port."""

    data_dir: Path
    port: int
    udp_port: int
    admin_token: str
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        env = {**os.environ, "AGENT_CENTER_ADMIN_TOKEN": self.admin_token}
        fleet_policy = self.data_dir / "fleet.toml"
        fleet_policy.write_text(LENIENT)
        log = (self.data_dir / "center.log").open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-c", "from agent_kit.center.cli import main; main()", "serve",
             "--data-dir", str(self.data_dir), "--host", "127.0.0.1", "--port", str(self.port),
             "--udp-port", str(self.udp_port), "--policy", str(fleet_policy)],
            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError("agent-center serve exited: " + self.log_tail())
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            time.sleep(0.1)
        raise RuntimeError("agent-center serve did not start: " + self.log_tail())

    def log_tail(self) -> str:
        return (self.data_dir / "center.log").read_text(errors="replace")[-3000:]

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, sig)
            self.process.wait(timeout=15)
        self.process = None

    def admin(self, method: str, path: str, **kw) -> httpx.Response:
        return httpx.request(method, self.url + path, timeout=30,
                             headers={"Authorization": f"Bearer {self.admin_token}"}, **kw)

    def token(self) -> str:
        r = self.admin("POST", "/api/v1/tokens", json={"uses": 1, "ttl_s": 600, "note": "t"})
        r.raise_for_status()
        return str(r.json()["token"])

    def seqs(self, agent_id: str) -> list[int]:
        """Every stored heartbeat's seq, in order, with repeats if any were stored twice."""
        out: list[int] = []
        since = 0
        while True:
            r = self.admin("GET", f"/api/v1/agents/{agent_id}/heartbeats",
                           params={"since_seq": since, "limit": 1000})
            r.raise_for_status()
            # since_seq=N: after N (tolerate an inclusive reading: drop what we already have)
            beats = [b for b in r.json()["heartbeats"] if int(b["seq"]) > since]
            if not beats:
                return out
            out += [int(b["seq"]) for b in beats]
            ids = [b["id"] for b in beats]
            assert len(ids) == len(set(ids))
            since = out[-1]


@pytest.fixture
def center(tmp_path) -> Iterator[CenterProc]:
    proc = CenterProc(tmp_path / "center", free_port(), free_port(socket.SOCK_DGRAM),
                      "admin-" + uuid.uuid4().hex)
    proc.data_dir.mkdir()
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()


@dataclass
class Workstation:
    home: Path
    policy: Path

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "AGENT_KIT_HOME": str(self.home)}

    def cli(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "agent_kit.face.cli", *args], env=self.env,
                              capture_output=True, text=True, timeout=timeout)

    def start_monitor(self, interval: float = 1.0) -> subprocess.Popen[str]:
        log = (self.home / "monitor.log").open("a")
        proc = subprocess.Popen([sys.executable, "-m", "agent_kit.face.cli", "monitor", "--interval",
                                 str(interval), "--only", "system", "--policy", str(self.policy)],
                                env=self.env, stdout=log, stderr=subprocess.STDOUT, text=True)
        log.close()
        return proc

    @property
    def agent_id(self) -> str:
        return str(json.loads((self.home / "enrollment.json").read_text())["agent_id"])

    def spool_rows(self) -> tuple[int, set[int]]:
        """(next seq, pending seqs) read from the spool database (WAL allows a reader)."""
        path = self.home / "spool.db"
        if not path.exists():
            return 1, set()
        db = sqlite3.connect(path, timeout=10)
        try:
            assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            try:
                row = db.execute("SELECT value FROM meta WHERE key='next_seq'").fetchone()
            except sqlite3.OperationalError:   # the monitor is creating it right now
                return 1, set()
            nxt = int(row[0]) if row else 1
            pending = {int(r[0]) for r in db.execute("SELECT seq FROM heartbeats")}
        finally:
            db.close()
        return nxt, pending

    def log(self) -> str:
        return (self.home / "monitor.log").read_text(errors="replace")[-3000:]


@pytest.fixture
def ws(tmp_path, center) -> Workstation:
    policy = tmp_path / "lenient.toml"
    policy.write_text(LENIENT)
    station = Workstation(tmp_path / "agent", policy)
    enrolled = station.cli("enroll", "--center", center.url, "--token", center.token())
    assert enrolled.returncode == 0, enrolled.stderr
    assert station.agent_id in enrolled.stdout
    return station


def wait_for(predicate, timeout: float, what: str, diag=lambda: "") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what}\n{diag()}")


def stop(proc: subprocess.Popen[str]) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    return proc.wait(timeout=20)


def all_delivered(center: CenterProc, ws: Workstation) -> bool:
    nxt, pending = ws.spool_rows()
    return not pending and center.seqs(ws.agent_id) == list(range(1, nxt))


def assert_exactly_once(center: CenterProc, ws: Workstation) -> int:
    nxt, pending = ws.spool_rows()
    seqs = center.seqs(ws.agent_id)
    assert not pending
    assert seqs == list(range(1, nxt)), f"center holds {seqs[:5]}..{seqs[-5:]}, next {nxt}"
    return nxt - 1


def test_center_down_for_a_minute_nothing_lost_nothing_duplicated(center, ws):
    monitor = ws.start_monitor()
    try:
        wait_for(lambda: len(center.seqs(ws.agent_id)) >= 3, 60, "first heartbeats", ws.log)
        state = read_state(ws.home / "gate.json")
        assert state is not None and state.gate_open, ws.log()
        center.stop()
        time.sleep(60)
        nxt, pending = ws.spool_rows()
        assert len(pending) >= 40               # a minute of heartbeats waits on disk
        state = read_state(ws.home / "gate.json")
        assert state.delivery.error and state.gate_open   # the outage does not close the gate
        center.start()
        wait_for(lambda: all_delivered(center, ws), 60, "the backlog", ws.log)
    finally:
        assert stop(monitor) == 0, ws.log()
    total = assert_exactly_once(center, ws)
    assert total >= 60
    detail = center.admin("GET", f"/api/v1/agents/{ws.agent_id}").json()
    assert detail["last_seq"] == total


def test_kill_9_of_the_monitor_spool_intact_seq_continues(center, ws):
    rng = random.Random(11)
    last_next = 1
    for _ in range(3):
        monitor = ws.start_monitor(interval=1.0)
        try:
            wait_for(lambda floor=last_next + 1: ws.spool_rows()[0] > floor, 60, "heartbeats",
                     ws.log)
            time.sleep(rng.uniform(0.5, 2.5))
        finally:
            monitor.send_signal(signal.SIGKILL)
            monitor.wait(timeout=10)
        nxt, _pending = ws.spool_rows()    # integrity_check inside
        assert nxt > last_next             # seq continues, never goes back
        last_next = nxt
    monitor = ws.start_monitor(interval=1.0)
    try:
        floor = last_next
        wait_for(lambda: ws.spool_rows()[0] > floor, 60, "seq after restarts", ws.log)
        wait_for(lambda: all_delivered(center, ws), 60, "delivery", ws.log)
    finally:
        assert stop(monitor) == 0, ws.log()
    assert_exactly_once(center, ws)


def test_kill_9_of_the_center_keeps_every_acknowledged_heartbeat(center, ws):
    monitor = ws.start_monitor(interval=1.0)
    try:
        wait_for(lambda: len(center.seqs(ws.agent_id)) >= 5, 60, "heartbeats", ws.log)
        time.sleep(random.Random(5).uniform(0.3, 1.5))
        center.stop(signal.SIGKILL)
        # acknowledged = handed out and no longer in the spool (the ack deletes it)
        nxt, pending = ws.spool_rows()
        acknowledged = set(range(1, nxt)) - pending
        assert len(acknowledged) >= 5
        center.start()
        stored = set(center.seqs(ws.agent_id))
        assert acknowledged <= stored, sorted(acknowledged - stored)
        wait_for(lambda: all_delivered(center, ws), 60, "delivery after restart", ws.log)
    finally:
        assert stop(monitor) == 0, ws.log()
    assert_exactly_once(center, ws)


def test_a_clock_10_minutes_off_still_delivers(center, ws, tmp_path):
    from agent_kit.link.client import CenterClient
    from agent_kit.loop.courier import Courier
    from agent_kit.link.state_folder import Enrollment
    from agent_kit.loop.spool import Spool

    enr = Enrollment(**json.loads((ws.home / "enrollment.json").read_text()))
    skew = 600.0
    with Spool(tmp_path / "skew.db", enr.agent_id) as spool, \
            CenterClient(enr, clock=lambda: time.time() + skew) as client:
        courier = Courier(spool, client)
        for _ in range(3):
            spool.add({"measured_at": "2026-11-23T12:00:00+00:00", "interval_s": 15.0,
                       "agent_version": "0.1.0", "verdict": "pass",
                       "gate": {"open": True, "reasons": []}, "checks": []})
        result = courier.deliver()
        assert result.error is None and result.delivered == 3
        assert client.offset_s == pytest.approx(-skew, abs=3)
    assert center.seqs(enr.agent_id) == [1, 2, 3]


def test_login_gate_with_the_real_center_then_retired(center, ws, tmp_path):
    marker = tmp_path / "softphone-started"
    assert ws.cli("status").returncode == 2          # no monitor yet
    assert ws.cli("login", "--", "touch", str(marker)).returncode == 2
    monitor = ws.start_monitor(interval=1.0)
    try:
        wait_for(lambda: ws.cli("status").returncode == 0, 60, "gate open", ws.log)
        # the center has the heartbeats too: its signed clearance is verified by login
        login = ws.cli("login", "--", "touch", str(marker))
        assert login.returncode == 0, login.stderr
        assert marker.exists() and "cleared by the center" in login.stderr
        marker.unlink()
        # IT retires the workstation: the monitor stops and says so; login refuses
        assert center.admin("POST", f"/api/v1/agents/{ws.agent_id}/retire").status_code < 300
        assert monitor.wait(timeout=90) == 1, ws.log()   # the center caches credentials 30 s
        assert "retired" in ws.log()
    finally:
        stop(monitor)
    status = ws.cli("status")
    assert status.returncode == 1 and "retired" in status.stdout
    login = ws.cli("login", "--", "touch", str(marker))
    assert login.returncode == 1 and not marker.exists()
    gate = center.admin("GET", f"/api/v1/gate/{ws.agent_id}").json()
    assert gate["allowed"] is False


def test_login_when_the_center_is_unreachable_follows_the_policy(center, ws, tmp_path):
    marker = tmp_path / "started"
    monitor = ws.start_monitor(interval=1.0)
    try:
        wait_for(lambda: ws.cli("status").returncode == 0, 60, "gate open", ws.log)
        # the local gate alone counts only within gate.local_login_max_s of a clearance
        wait_for(lambda: ws.cli("login", "--", "true").returncode == 0, 60, "a clearance",
                 ws.log)
        center.stop()
        login = ws.cli("login", "--", "touch", str(marker))
        assert login.returncode == 0 and marker.exists(), login.stderr
        assert "cannot be reached" in login.stderr
        strict = tmp_path / "strict.toml"
        strict.write_text(LENIENT + '\n[gate]\ncenter_unreachable = "deny"\n')
        marker.unlink()
        login = ws.cli("login", "--policy", str(strict), "--", "touch", str(marker))
        assert login.returncode == 1 and not marker.exists()
    finally:
        assert stop(monitor) == 0, ws.log()


def test_spool_overflow_is_reported_to_the_center(center, ws, tmp_path):
    """A full spool drops its oldest; the center gets the newest and the count."""
    from agent_kit.link.client import CenterClient
    from agent_kit.loop.courier import Courier
    from agent_kit.link.state_folder import Enrollment
    from agent_kit.loop.spool import Spool

    enr = Enrollment(**json.loads((ws.home / "enrollment.json").read_text()))
    with Spool(tmp_path / "small.db", enr.agent_id, max_rows=3) as spool, \
            CenterClient(enr) as client:
        for _ in range(5):
            spool.add({"measured_at": "2026-11-23T12:00:00+00:00", "interval_s": 15.0,
                       "agent_version": "0.1.0", "verdict": "pass",
                       "gate": {"open": True, "reasons": []}, "checks": []})
        result = Courier(spool, client).deliver()
        assert result.error is None and result.delivered == 3
    assert center.seqs(enr.agent_id) == [3, 4, 5]
    beats = center.admin("GET", f"/api/v1/agents/{enr.agent_id}/heartbeats",
                         params={"since_seq": 0}).json()["heartbeats"]
    # each drop is counted once, in a heartbeat the center did get: the counts explain the gap
    assert [b.get("dropped") for b in beats] == [None, 1, 1]
    assert sum(b.get("dropped") or 0 for b in beats) == 5 - len(beats)
