"""Hand this process over to a command: ``exec`` on POSIX, spawn-and-wait on Windows.

Chosen once at import (psutil's habit). ``agent-kit login`` becomes the softphone this way, and
the monitor re-executes itself as a lean process (``agent_kit.loop.monitor``). Plain stdlib, so
both the face and the loop layers can use it.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import NoReturn

if sys.platform == "win32":
    import subprocess

    # Windows has no exec that keeps the process: os.exec* starts a new process and ends this
    # one at once, so whoever waits on this one (a shortcut, a script) would see it exit early.
    REPLACES_IN_PLACE = False

    def replace_process(argv: Sequence[str]) -> NoReturn:
        """Run ``argv`` (searched on PATH), wait for it and exit with its exit code.

        Raises OSError (FileNotFoundError, PermissionError...) when it cannot be started."""
        _flush()
        raise SystemExit(subprocess.call(list(argv)))

else:
    import os

    REPLACES_IN_PLACE = True   # same pid: service managers and signals are unaffected

    def replace_process(argv: Sequence[str]) -> NoReturn:
        """Become ``argv`` (searched on PATH unless it names a path): same pid, never returns.

        Raises OSError (FileNotFoundError, PermissionError...) when it cannot be started."""
        _flush()
        os.execvp(argv[0], list(argv))


def _flush() -> None:
    # what this process printed must come out before the command's own output
    sys.stdout.flush()
    sys.stderr.flush()
