"""One monitor per state folder: the OS lock refuses a second holder and dies with a killed one."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from agent_kit.loop.single_instance import SingleInstance

HOLD = ("import sys, time\n"
        "from pathlib import Path\n"
        "from agent_kit.loop.single_instance import SingleInstance\n"
        "lock = SingleInstance(Path(sys.argv[1]))\n"
        "assert lock.acquire()\n"
        "print('held', flush=True)\n"
        "time.sleep(120)\n")


def test_a_second_holder_is_refused_while_the_first_lives(tmp_path: Path) -> None:
    first, other = SingleInstance(tmp_path / "state"), SingleInstance(tmp_path / "other")
    try:
        assert first.acquire()
        assert not SingleInstance(tmp_path / "state").acquire()
        assert other.acquire()   # another state folder: its own monitor
    finally:
        first.release()
        other.release()
    again = SingleInstance(tmp_path / "state")
    assert again.acquire()
    again.release()


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")
def test_the_lock_dies_with_a_kill_9ed_holder(tmp_path: Path) -> None:
    with subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path)],
                          stdout=subprocess.PIPE, text=True) as holder:
        try:
            assert holder.stdout is not None and holder.stdout.readline() == "held\n"
            assert not SingleInstance(tmp_path).acquire()
        finally:
            holder.send_signal(signal.SIGKILL)
            holder.wait(timeout=30)
    assert (tmp_path / "monitor.lock").exists()   # the file stays; only the lock went
    after = SingleInstance(tmp_path)
    assert after.acquire()
    after.release()
