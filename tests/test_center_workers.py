"""``agent-center serve --workers 2`` on SQLite: two worker processes, each with its own
``SO_REUSEPORT`` socket and intake writer, serve one center (every heartbeat sent over many
connections stored once, counted once, by the database and by /metrics whichever worker answers
the scrape), and SIGTERM stops the supervisor and both workers."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from agent_kit.center.workers import listening_socket
from tests.center_seed import heartbeat, run_center

pytestmark = pytest.mark.lab


def children(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True,
                         text=True).stdout
    return [int(p) for p in out.split()]


def test_two_workers_serve_one_center_and_stop_on_sigterm(tmp_path):
    with run_center(tmp_path / "center", extra_args=["--workers", "2"]) as center:
        workers = children(center.process.pid)
        assert len(workers) >= 2, workers  # (spawn may add its resource tracker)
        token = center.create_token(uses=8)
        stations = [center.enroll(token, f"w-{i}") for i in range(8)]
        now = datetime.now(UTC)

        sent = [heartbeat(i // 8 + 1, now, {}) for i in range(160)]

        def send(i: int) -> list[str]:
            return [r["status"] for r in stations[i % 8].send([sent[i]])["results"]]

        with ThreadPoolExecutor(16) as pool:  # httpx opens a connection per request
            statuses = [s for r in pool.map(send, range(160)) for s in r]
        assert statuses == ["stored"] * 160
        metrics = httpx.get(f"{center.url}/metrics", timeout=30,
                            headers={"Authorization": f"Bearer {center.admin_token}"}).text
        assert "agent_center_heartbeats_stored_total 160" in metrics
        # A resend through whichever worker takes it: stored once.
        again = stations[0].send([sent[0]])["results"]
        assert [r["status"] for r in again] == ["duplicate"]

        center.process.send_signal(signal.SIGTERM)  # the supervisor only, not the group
        assert center.process.wait(timeout=30) == 0
        deadline = time.monotonic() + 10
        while any(os.path.exists(f"/proc/{w}") for w in workers) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(os.path.exists(f"/proc/{w}") for w in workers)


def intake_figures(center) -> tuple[float, float, float]:
    """One scrape, on a new connection: (stored, duplicate) counted by the workers' intake,
    and the database's stored counter."""
    text = httpx.get(f"{center.url}/metrics", timeout=30,
                     headers={"Authorization": f"Bearer {center.admin_token}"}).text
    got = {(s.name, tuple(s.labels.values())): s.value
           for family in text_string_to_metric_families(text) for s in family.samples}
    return (got["agent_center_intake_heartbeats_total", ("stored",)],
            got["agent_center_intake_heartbeats_total", ("duplicate",)],
            got["agent_center_heartbeats_stored_total", ()])


def test_intake_counters_add_up_over_the_workers_whichever_answers(tmp_path, monkeypatch):
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    monkeypatch.setenv("TMPDIR", str(tmp))  # where the center makes its metrics folder
    with run_center(tmp_path / "center", extra_args=["--workers", "2"]) as center:
        folders = list(tmp.glob("agent-center-metrics-*"))
        assert len(folders) == 1, folders   # one for this start, shared by both workers
        assert intake_figures(center) == (0, 0, 0)
        token = center.create_token(uses=4)
        stations = [center.enroll(token, f"m-{i}") for i in range(4)]
        now = datetime.now(UTC)
        count = 60
        sent = [heartbeat(i // 4 + 1, now, {}) for i in range(count)]

        def send(i: int) -> list[str]:  # a new connection each: spread over both workers
            return [r["status"] for r in stations[i % 4].send([sent[i]])["results"]]

        with ThreadPoolExecutor(8) as pool:
            statuses = [s for r in pool.map(send, range(count)) for s in r]
        assert statuses == ["stored"] * count
        with ThreadPoolExecutor(4) as pool:
            resent = [s for r in pool.map(send, range(5)) for s in r]
        assert resent == ["duplicate"] * 5
        # Twenty scrapes, each on its own connection: the kernel hashes them over both
        # workers (all twenty on one of two: about one chance in half a million), and every
        # answer sums both workers' counters.
        assert {intake_figures(center) for _ in range(20)} == {(count, 5, count)}
    assert not folders[0].exists()          # removed when the center stopped


def test_a_port_taken_by_another_program_fails_the_start(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = subprocess.run(
            [sys.executable, "-c", "from agent_kit.center.cli import main; main()", "serve",
             "--data-dir", str(tmp_path), "--host", "127.0.0.1",
             "--port", str(port), "--udp-port", "0", "--workers", "2"],
            capture_output=True, text=True, timeout=60,
            env={**os.environ, "AGENT_CENTER_ADMIN_TOKEN": "adm-test-" + "0" * 32})
    assert proc.returncode == 2 and "cannot listen" in proc.stderr


def test_reuseport_sockets_share_one_address():
    first = listening_socket("127.0.0.1", 0)
    try:
        second = listening_socket("127.0.0.1", first.getsockname()[1])
        second.close()
    finally:
        first.close()
