"""The on-disk heartbeat spool: ids, seq kept across restarts, overflow policy, kill -9."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
import uuid

import pytest

from agent_kit.loop.spool import Spool

HB = {"verdict": "pass", "checks": []}


def test_ids_and_seq_are_assigned_and_kept_across_restarts(tmp_path):
    path = tmp_path / "spool.db"
    with Spool(path, "ag1") as spool:
        first = [spool.add(HB) for _ in range(3)]
        assert [s.seq for s in first] == [1, 2, 3]
        assert all(uuid.UUID(s.id).version == 4 for s in first)
        assert first[0].body["seq"] == 1 and first[0].body["id"] == first[0].id
        spool.ack([s.id for s in first])
        assert spool.stats().pending == 0
    with Spool(path, "ag1") as spool:   # acknowledged rows are gone; seq is not reused
        assert spool.add(HB).seq == 4
        assert spool.stats().acked_total == 3


def test_newest_first_then_oldest_backlog(tmp_path):
    with Spool(tmp_path / "s.db", "ag1") as spool:
        for _ in range(10):
            spool.add(HB)
        newest = spool.newest()
        assert newest is not None and newest.seq == 10
        assert [s.seq for s in spool.oldest(4, excluding=[newest.seq])] == [1, 2, 3, 4]
        assert [s.seq for s in spool.oldest(100, excluding=[10])][-1] == 9


def test_overflow_drops_the_oldest_and_reports_the_count_once(tmp_path):
    with Spool(tmp_path / "s.db", "ag1", max_rows=5) as spool:
        added = [spool.add(HB) for _ in range(5)]
        assert all("dropped" not in s.body for s in added)
        sixth = spool.add(HB)
        assert sixth.body["dropped"] == 1
        assert [s.seq for s in spool.oldest(10)] == [2, 3, 4, 5, 6]
        seventh = spool.add(HB)        # drops seq 2; the count is reported once, not again
        assert seventh.body["dropped"] == 1
        assert spool.stats().dropped_total == 2 and spool.stats().pending == 5
        spool.ack([s.id for s in spool.oldest(10)])
        assert "dropped" not in spool.add(HB).body


def test_a_dropped_heartbeat_that_carried_a_count_passes_it_on(tmp_path):
    with Spool(tmp_path / "s.db", "ag1", max_rows=2) as spool:
        spool.add(HB), spool.add(HB)
        third = spool.add(HB)           # drops 1, carries 1
        assert third.body["dropped"] == 1
        spool.add(HB)                   # drops 2 -> carries 1
        fifth = spool.add(HB)           # drops 3 (which carried 1) -> carries 1 + 1
        assert fifth.body["dropped"] == 2
        assert spool.stats().dropped_total == 3


def test_a_new_enrollment_starts_a_fresh_spool(tmp_path):
    path = tmp_path / "s.db"
    with Spool(path, "old") as spool:
        spool.add(HB), spool.add(HB)
    with Spool(path, "new") as spool:
        assert spool.stats().pending == 0
        assert spool.add(HB).seq == 1


def test_resync_renumbers_what_waits_after_the_center_s_last_seq(tmp_path):
    """A spool that started again at 1 below the center's seq 10 (lost, replaced): what waits
    keeps its order and ids, gets 11, 12, 13, and the counter goes on after them; the resync
    is remembered across a restart (``agent-kit status`` tells it)."""
    path = tmp_path / "s.db"
    with Spool(path, "ag1", clock=lambda: 1234.0) as spool:
        waiting = [spool.add(HB) for _ in range(3)]
        assert spool.resync(10) is not None
        moved = spool.oldest(10)
        assert [s.seq for s in moved] == [11, 12, 13]
        assert [s.id for s in moved] == [w.id for w in waiting]
        assert [s.body["seq"] for s in moved] == [11, 12, 13]
        assert spool.add(HB).seq == 14
        assert spool.resync(10) is None          # nothing waits at or below 10 any more
    with Spool(path, "ag1") as spool:
        resync = spool.stats().resync
        assert resync is not None and (resync.at, resync.after_seq, resync.renumbered) == \
            (1234.0, 10, 3)
        assert spool.stats().pending == 4


def test_wal_and_full_sync(tmp_path):
    with Spool(tmp_path / "s.db", "ag1") as spool:
        assert spool._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert spool._db.execute("PRAGMA synchronous").fetchone()[0] == 2   # FULL


WRITER = textwrap.dedent("""
    import sys
    from pathlib import Path
    from agent_kit.loop.spool import Spool
    spool = Spool(Path(sys.argv[1]), "ag1", max_rows=100000)
    while True:
        s = spool.add({"verdict": "pass", "checks": [{"id": "x", "pad": "y" * 2000}]})
        if s.seq % 3 == 0:
            spool.ack([s.id])
        sys.stdout.write(f"{s.seq} {s.id}\\n")   # written only after the commit returned
        sys.stdout.flush()
""")


@pytest.mark.parametrize("delay_s", [0.15, 0.4, 0.9])
def test_kill_9_mid_write_leaves_the_spool_intact_and_seq_continues(tmp_path, delay_s):
    path = tmp_path / "spool.db"
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    committed: dict[int, str] = {}
    for _round in range(2):
        proc = subprocess.Popen([sys.executable, str(script), str(path)],
                                stdout=subprocess.PIPE, text=True)
        # Kill it delay_s into a steady stream of commits, not into its start-up: a busy machine
        # can spend longer than the delay importing, and the test would then kill nothing.
        assert proc.stdout is not None
        first = [proc.stdout.readline() for _ in range(6)]
        time.sleep(delay_s)
        proc.send_signal(signal.SIGKILL)
        out, _ = proc.communicate(timeout=10)
        for line in [*first, *out.splitlines()]:
            parts = line.split()
            if len(parts) == 2 and len(parts[1]) == 36:   # the kill may cut the last line
                committed[int(parts[0])] = parts[1]
    assert len(committed) > 10
    with Spool(path, "ag1") as spool:
        assert spool.integrity_ok()
        rows = dict(spool._db.execute("SELECT seq, id FROM heartbeats").fetchall())
        # every committed, unacknowledged heartbeat survived with its id
        for seq, hid in committed.items():
            if seq % 3:
                assert rows[seq] == hid
        # seq never went back: the next one is after everything ever handed out
        nxt = spool.add(HB).seq
        assert nxt > max(committed) and nxt > max(rows)
    # seqs handed out are 1..N, no repeat; the only ones unseen may be an acknowledged one whose
    # print the kill cut off (at most one per round)
    seen = set(committed) | set(rows)
    unseen = set(range(1, max(seen) + 1)) - seen
    assert len(unseen) <= 2 and all(s % 3 == 0 for s in unseen)
    db = sqlite3.connect(path)
    assert db.execute("SELECT COUNT(DISTINCT id) = COUNT(*) FROM heartbeats").fetchone()[0] == 1
    db.close()
