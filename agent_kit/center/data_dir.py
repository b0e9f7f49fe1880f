"""The center's data dir and the files in it that hold secrets are the owner's only.

The data dir holds the SQLite database (``center.db`` with its ``-wal``/``-shm``: enrollment
state, workstation nonces, the sealed center secrets) and the key that unseals those secrets
(``secrets.key``, see :mod:`agent_kit.center.sealed_secrets`). A local user who can read them
could recompute a workstation's secret, so:

- the folder is 0700 and those files 0600, whatever the umask: new files are created with that
  mode (the SQLite file before SQLite opens it: SQLite gives its ``-wal``/``-shm`` the mode of the
  database file), and
- an existing data dir or file open to the group or to others (an older center, a folder made by
  a package, a restore) is *repaired* at start, not refused: the center keeps running for its
  workstations, and one log line says what was changed.

Chosen once at import: on Windows the mode bits mean nothing beyond read-only, and a data dir in
the user's profile inherits its ACL, so nothing is changed there.
"""

from __future__ import annotations

import logging
import os
import stat
import sys
from collections.abc import Iterable
from pathlib import Path

log = logging.getLogger("agent_kit.center")

PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600
# What SQLite writes beside a database file, and the center's write-turn lock file.
SQLITE_SIDE_SUFFIXES = ("-wal", "-shm", "-journal", ".writelock")


def sqlite_files(db_file: Path) -> list[Path]:
    """The database file and the side files SQLite (and the center) write beside it."""
    return [db_file, *(db_file.with_name(db_file.name + s) for s in SQLITE_SIDE_SUFFIXES)]


if sys.platform == "win32":
    def make_private_dir(folder: Path) -> list[str]:
        """Create ``folder`` (and its parents); its ACL is inherited from the user's profile."""
        folder.mkdir(parents=True, exist_ok=True)
        return []

    def make_private_files(paths: Iterable[Path]) -> list[str]:
        """Nothing to do on Windows (see the module docstring)."""
        return []

    def create_private_file(path: Path) -> None:
        """Create ``path`` empty if it does not exist."""
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, PRIVATE_FILE_MODE))

else:
    def make_private_dir(folder: Path) -> list[str]:
        """Create ``folder`` (and its parents) 0700, or take the group's and others' access
        away from an existing one; what was changed, for the log line."""
        try:
            folder.mkdir(mode=PRIVATE_DIR_MODE)
        except FileExistsError:
            pass
        except FileNotFoundError:   # its parents first (they keep the umask's mode)
            folder.parent.mkdir(parents=True, exist_ok=True)
            folder.mkdir(mode=PRIVATE_DIR_MODE, exist_ok=True)
            os.chmod(folder, PRIVATE_DIR_MODE)
        else:
            os.chmod(folder, PRIVATE_DIR_MODE)   # exactly 0700, whatever the umask
        mode = stat.S_IMODE(folder.stat().st_mode)
        if mode & 0o077:
            os.chmod(folder, mode & PRIVATE_DIR_MODE)   # the owner's own bits stay as they are
            return [f"{folder.name}/ {mode:04o} -> {mode & PRIVATE_DIR_MODE:04o}"]
        return []

    def make_private_files(paths: Iterable[Path]) -> list[str]:
        """Take the group's and others' access away from every existing one of ``paths``;
        what was changed, for the log line."""
        changed = []
        for path in paths:
            try:
                mode = stat.S_IMODE(path.stat().st_mode)
            except FileNotFoundError:
                continue
            if mode & 0o077:
                os.chmod(path, mode & PRIVATE_FILE_MODE)
                changed.append(f"{path.name} {mode:04o} -> {mode & PRIVATE_FILE_MODE:04o}")
        return changed

    def create_private_file(path: Path) -> None:
        """Create ``path`` empty and exactly 0600 (whatever the umask) if it does not exist;
        an existing file is left as it is (:func:`make_private_files` repairs, and says so)."""
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE)
        except FileExistsError:
            return
        try:
            os.fchmod(fd, PRIVATE_FILE_MODE)
        finally:
            os.close(fd)


def secure_center_files(data_dir: Path, db_url: str, key_file: Path) -> list[str]:
    """Make the data dir 0700 and the database files and key file 0600 (see the module
    docstring); logs one line when anything had to be repaired and returns what was."""
    changed = make_private_dir(data_dir)
    files = [key_file]
    if db_url.startswith("sqlite:///"):
        files += sqlite_files(Path(db_url[len("sqlite:///"):]))
    changed += make_private_files(files)
    if changed:
        log.warning("agent-center: other users could read the center's data in %s: made it "
                    "owner-only (%s)", data_dir, ", ".join(changed))
    return changed
