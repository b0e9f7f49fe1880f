"""Hostile: a lost, replaced or restored heartbeat spool must not silence a workstation.

The attack that worked (issue 15, point 4): with the spool moved away, the agent's seq counter
restarted at 1, the center refused every heartbeat (409 ``seq_conflict``, the seq was taken) and
the agent dropped each one: 113 in a row in the review, a day offline at 15 s, and ``agent-kit
status`` said nothing. Now the center says its highest stored seq (``detail.last_seq``), the
agent renumbers what it still has after it and sends it again at once, and status says so.

Real parts: ``agent-center serve`` as a subprocess (SQLite and a throwaway PostgreSQL), the real
``agent-kit monitor`` and ``agent-kit status``, real spool files.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import signal
import socket
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from agent_kit.link.client import CenterClient
from agent_kit.link.state_folder import Enrollment
from agent_kit.loop.courier import Courier
from agent_kit.loop.spool import Spool
from agent_kit.loop.state_file import read_state
from tests.center_seed import free_port, heartbeat, run_center
from tests.lab.postgres import postgres_cluster
from tests.test_monitor_faults import LENIENT, CenterProc, Workstation, stop, wait_for

pytestmark = pytest.mark.lab

GOOD = {"vpn.connected": ("pass", None), "audio.headset": ("pass", None),
        "network.jitter": ("pass", 4.0)}
CONTENT = {"measured_at": "2026-11-23T12:00:00+00:00", "interval_s": 15.0,
           "agent_version": "0.1.0", "verdict": "pass", "gate": {"open": True, "reasons": []},
           "checks": []}


@pytest.fixture
def center(tmp_path) -> Iterator[CenterProc]:
    """``agent-center serve`` (SQLite) with the lenient fleet policy of the fault tests."""
    proc = CenterProc(tmp_path / "center", free_port(), free_port(socket.SOCK_DGRAM),
                      "admin-" + uuid.uuid4().hex)
    proc.data_dir.mkdir()
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture
def ws(tmp_path, center) -> Workstation:
    """A workstation enrolled with ``center`` by the real ``agent-kit enroll``."""
    policy = tmp_path / "lenient.toml"
    policy.write_text(LENIENT)
    station = Workstation(tmp_path / "agent", policy)
    enrolled = station.cli("enroll", "--center", center.url, "--token", center.token())
    assert enrolled.returncode == 0, enrolled.stderr
    return station


def spool_files(home: Path) -> list[Path]:
    return [home / name for name in ("spool.db", "spool.db-wal", "spool.db-shm")]


def stored(center: CenterProc, agent_id: str) -> list[dict]:
    r = center.admin("GET", f"/api/v1/agents/{agent_id}/heartbeats",
                     params={"since_seq": 0, "limit": 1000})
    r.raise_for_status()
    return list(r.json()["heartbeats"])


def test_a_spool_lost_mid_shift_is_heard_again_within_one_interval(center, ws, tmp_path):
    """kill -9 of the monitor mid-shift, its spool moved away, the monitor started again: the
    very first heartbeat of the new spool is renumbered after the center's last and stored, the
    history stays 1..N once each, nothing is dropped, and status says what happened."""
    monitor = ws.start_monitor(interval=1.0)
    try:
        wait_for(lambda: len(center.seqs(ws.agent_id)) >= 5, 60, "first heartbeats", ws.log)
    finally:
        monitor.send_signal(signal.SIGKILL)
        monitor.wait(timeout=10)
    # a request the killed monitor had in flight may still be committed: wait until it is
    before = center.seqs(ws.agent_id)
    while True:
        time.sleep(1.0)
        settled = center.seqs(ws.agent_id)
        if settled == before:
            break
        before = settled
    last = before[-1]
    aside = tmp_path / "moved-away"
    aside.mkdir()
    for path in spool_files(ws.home):
        if path.exists():
            shutil.move(path, aside / path.name)
    restarted_at = time.time()
    monitor = ws.start_monitor(interval=1.0)
    try:
        wait_for(lambda: len(center.seqs(ws.agent_id)) >= len(before) + 5, 60,
                 "heartbeats after the spool was lost", ws.log)
        state = read_state(ws.home / "gate.json")
        status = ws.cli("status", "--lang", "en")
        status_json = json.loads(ws.cli("status", "--json", "--lang", "en").stdout)
        status_sv = ws.cli("status", "--lang", "sv")
    finally:
        assert stop(monitor) == 0, ws.log()
    seqs = center.seqs(ws.agent_id)     # asserts every id once per page
    assert seqs == list(range(1, len(seqs) + 1)), seqs   # no gap, nothing twice
    beats = stored(center, ws.agent_id)
    assert len({b["id"] for b in beats}) == len(beats)
    after = [b for b in beats if b["seq"] > last]
    # the new spool's heartbeats, from its first one on: measured after the restart
    assert after and all(datetime.fromisoformat(b["measured_at"]).timestamp()
                         >= restarted_at - 2 for b in after)
    assert state is not None
    d = state.delivery
    # the very first heartbeat of the new spool met the conflict and was renumbered: heard
    # again in the interval it was made in, not after its history's length
    assert d.resynced_after_seq == last and d.resynced_count == 1, d
    assert d.rejected_total == 0 and d.dropped_total == 0
    assert "refused heartbeat" not in ws.log()
    assert status.returncode == 0, status.stdout + status.stderr
    assert "lost or replaced" in status.stdout and f"no. {last}," in status.stdout
    assert any("lost or replaced" in n for n in status_json["notes"])
    assert "lost or replaced" not in status_sv.stdout and str(last) in status_sv.stdout


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def any_center(request, tmp_path_factory):
    args: list[str] = []
    with contextlib.ExitStack() as stack:
        if request.param == "postgresql":
            args = ["--db", stack.enter_context(postgres_cluster())]
        yield stack.enter_context(run_center(tmp_path_factory.mktemp(f"c-{request.param}"),
                                             extra_args=args))


def test_the_409_says_the_last_stored_seq_and_where_an_id_is_stored(any_center):
    station = any_center.enroll(any_center.create_token(), "home-409")
    first = [heartbeat(seq, datetime.now(UTC), GOOD) for seq in range(1, 8)]
    station.send(first)
    # a spool that started again at 1: its seq 3 is another heartbeat's
    clash = station.request("POST", "/api/v1/heartbeats",
                       {"heartbeats": [heartbeat(8, datetime.now(UTC), GOOD),
                                       heartbeat(3, datetime.now(UTC), GOOD)]})
    assert clash.status_code == 409, clash.text
    body = clash.json()
    assert body["error"] == "seq_conflict"
    assert body["detail"]["last_seq"] == 7 and body["detail"]["seq"] == 3
    assert body["detail"]["stored_seq"] is None and "last stored seq is 7" in \
        body["detail"]["message"]
    assert body["seq"] == 3   # the fields 409 always had stay where they were
    # a heartbeat the center already holds, sent again under a new seq: says where it is
    moved = {**first[1], "seq": 12}
    again = station.request("POST", "/api/v1/heartbeats", {"heartbeats": [moved]})
    assert again.status_code == 409
    assert again.json()["detail"]["stored_seq"] == 2
    assert again.json()["detail"]["last_seq"] == 7
    with any_center.admin() as admin:
        history = admin.get(f"/api/v1/agents/{station.agent_id}/heartbeats").json()[
            "heartbeats"]
    assert [h["seq"] for h in history] == list(range(1, 8))   # nothing of a refused batch


def test_a_spool_restored_from_an_old_copy_delivers_everything_once(any_center, tmp_path):
    """An old copy of the spool (a backup restored, a profile copied back) still holds
    heartbeats the center has had since, and numbers new ones below the center's: everything is
    stored exactly once, the old heartbeats under their original seqs."""
    made = any_center.enroll(any_center.create_token(), "home-restored")
    enrollment = Enrollment(center_url=made.center_url, agent_id=made.agent_id,
                            secret=made.secret)
    live = tmp_path / "live" / "spool.db"
    with Spool(live, made.agent_id) as spool, CenterClient(enrollment) as client:
        for _ in range(4):
            spool.add(CONTENT)
        assert Courier(spool, client).deliver().delivered == 4
        # seqs 5..8, not delivered yet when the copy is taken
        pending = [spool.add(CONTENT) for _ in range(4)]
    copy = tmp_path / "copy"
    shutil.copytree(live.parent, copy)
    with Spool(live, made.agent_id) as spool, CenterClient(enrollment) as client:
        for _ in range(2):
            spool.add(CONTENT)
        assert Courier(spool, client).deliver().delivered == 6    # 5..10
    with Spool(copy / "spool.db", made.agent_id) as restored, \
            CenterClient(enrollment) as client:
        newer = restored.add(CONTENT)     # seq 9 again: another heartbeat's at the center
        assert newer.seq == 9
        result = Courier(restored, client).deliver()
        stats = restored.stats()
    assert result.error is None and result.rejected == 0, result
    assert result.delivered == 1 and result.duplicates == 4   # the old ones were there already
    assert stats.pending == 0 and stats.resync is not None and stats.resync.after_seq == 10
    with any_center.admin() as admin:
        history = admin.get(f"/api/v1/agents/{made.agent_id}/heartbeats").json()["heartbeats"]
    by_id = {h["id"]: h["seq"] for h in history}
    assert len(by_id) == len(history) == 11
    assert [by_id[p.id] for p in pending] == [5, 6, 7, 8]   # once, under their first seqs
    assert by_id[newer.id] > 10                             # after the center's last


def test_an_older_center_without_last_seq_is_still_refused_as_before(tmp_path):
    """Against a 409 with no ``last_seq`` (an older center), the courier cannot know where to
    continue: it drops the heartbeat as it always did rather than guess (the center is upgraded
    with the agents; this is the fallback, not the fix)."""
    enrollment = Enrollment(center_url="http://center.test", agent_id="ws-old", secret="s" * 64)

    def old_center(request: httpx.Request) -> httpx.Response:
        return httpx.Response(409, json={"error": "seq_conflict",
                                         "detail": "seq 1 is already stored under another "
                                                   "heartbeat id"})

    with Spool(tmp_path / "spool.db", enrollment.agent_id) as spool, \
            CenterClient(enrollment, transport=httpx.MockTransport(old_center)) as client:
        spool.add(CONTENT)
        result = Courier(spool, client).deliver()
        assert result.rejected == 1 and spool.stats().resync is None
