"""Files and folders only this user may read: the enrollment secret, the heartbeat spool and the
folder that holds them.

Chosen once at import. On POSIX the mode bits say it (0600 files, a 0700 folder, tightened when
the folder or file already existed, whatever the umask). On Windows the mode bits mean nothing
beyond read-only; the state folder sits in the user's own profile (``%LOCALAPPDATA%``), whose
inherited ACL already keeps other users out, so nothing is changed there.
"""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Iterable
from pathlib import Path

PRIVATE_FILE_MODE = 0o600

if sys.platform == "win32":
    def make_private_folder(folder: Path) -> None:
        """Create ``folder`` (and its parents); its ACL is inherited from the user's profile."""
        folder.mkdir(parents=True, exist_ok=True)

    def make_private_files(paths: Iterable[Path]) -> None:
        """Nothing to do on Windows (see the module docstring)."""

    def _exactly_private(fd: int) -> None:
        """Nothing to do on Windows."""

    def create_private_file(path: Path) -> None:
        """Create ``path`` empty if it does not exist."""
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, PRIVATE_FILE_MODE))

else:
    def make_private_folder(folder: Path) -> None:
        """Create ``folder`` (and its parents) 0700, whatever the umask, or take the group's
        and others' access away from an existing one (its owner's own bits stay: a folder the
        user made read-only is not made writable behind their back)."""
        existed = folder.is_dir()
        folder.mkdir(parents=True, exist_ok=True)
        mode = stat.S_IMODE(folder.stat().st_mode)
        wanted = mode & 0o700 if existed else 0o700
        if mode != wanted:
            os.chmod(folder, wanted)

    def make_private_files(paths: Iterable[Path]) -> None:
        """Take the group's and others' access away from each existing one of ``paths``."""
        for path in paths:
            try:
                mode = stat.S_IMODE(path.stat().st_mode)
                if mode & 0o077:
                    os.chmod(path, mode & 0o700)
            except FileNotFoundError:
                continue

    def _exactly_private(fd: int) -> None:
        """0600 whatever the umask (a umask of 0277 would leave the owner read-only)."""
        os.fchmod(fd, PRIVATE_FILE_MODE)

    def create_private_file(path: Path) -> None:
        """Create ``path`` empty and exactly 0600 (whatever the umask) if it does not exist:
        before SQLite creates a database with 0644, whose ``-wal``/``-shm`` then follow it."""
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE)
        except FileExistsError:
            return
        try:
            _exactly_private(fd)
        finally:
            os.close(fd)


def write_private_file(path: Path, text: str) -> None:
    """Write ``text`` atomically (a temporary file, fsync, rename) with owner-only permissions
    (0600 where the OS has mode bits); the folder must exist."""
    tmp = path.with_suffix(".tmp")
    tmp.unlink(missing_ok=True)   # a leftover keeps its own mode: start from a new file
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE)
    _exactly_private(fd)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
