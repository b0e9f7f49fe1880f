"""One monitor per state folder: an exclusive OS lock on ``monitor.lock``.

The lock is the operating system's own (``flock`` on POSIX, ``msvcrt.locking`` on Windows),
chosen once at import. The OS drops it when the holding process ends in any way, ``kill -9`` and
a crash included, so a service manager can restart the monitor at once: no stale lock to clean.

Why not the ``filelock`` package: its ``FileLock`` takes the same OS locks, but where ``flock``
is missing it silently falls back to a soft lock (a lock file that outlives a killed process,
which would keep the restarted monitor out), and its timeouts, re-entrancy and leases serve a
try-once lock nothing, while importing it (4.3) costs the lean monitor about 1 MB and 30 ms.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import IO

if sys.platform == "win32":
    import msvcrt

    def _try_lock(fh: IO[str]) -> None:
        """Lock the file's first byte without waiting; OSError if another process holds it."""
        msvcrt.locking(fh.fileno(), msvcrt.LK_NBLCK, 1)

else:
    import fcntl

    def _try_lock(fh: IO[str]) -> None:
        """Lock the whole file without waiting; OSError if another process holds it."""
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)


class SingleInstance:
    """One monitor per state folder: an exclusive lock on ``monitor.lock``, held for the
    process's life (released on exit, even on kill -9, by the OS)."""

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / "monitor.lock"
        self._fh: IO[str] | None = None

    def acquire(self) -> bool:
        """True when this process now holds the lock; False when another monitor does."""
        # held for the process's life; 0600 whatever the umask (an empty file, but the
        # state folder is the user's own)
        fh = os.fdopen(os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600), "a+")
        try:
            _try_lock(fh)
        except OSError:
            fh.close()
            return False
        self._fh = fh
        return True

    def release(self) -> None:
        """Let go of the lock now (the process's end does it too, however it ends)."""
        if self._fh is not None:
            self._fh.close()
            self._fh = None
