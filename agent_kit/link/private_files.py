"""Files and folders only this user may read: the enrollment secret and the folder that holds it.

Chosen once at import. On POSIX the mode bits say it (0600 files, a 0700 folder, tightened when
the folder already existed). On Windows the mode bits mean nothing beyond read-only; the state
folder sits in the user's own profile (``%LOCALAPPDATA%``), whose inherited ACL already keeps
other users out, so nothing is changed there.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

if sys.platform == "win32":
    def make_private_folder(folder: Path) -> None:
        """Create ``folder`` (and its parents); its ACL is inherited from the user's profile."""
        folder.mkdir(parents=True, exist_ok=True)

else:
    def make_private_folder(folder: Path) -> None:
        """Create ``folder`` (and its parents) and make it the owner's only (0700)."""
        folder.mkdir(parents=True, exist_ok=True)
        os.chmod(folder, 0o700)


def write_private_file(path: Path, text: str) -> None:
    """Write ``text`` atomically (a temporary file, fsync, rename) with owner-only permissions
    (0600 where the OS has mode bits); the folder must exist."""
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
