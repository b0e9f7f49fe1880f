"""``replace_process``: ``agent-kit login`` becomes the softphone, the monitor its lean self."""

from __future__ import annotations

import subprocess
import sys

from agent_kit.core.process_replacement import REPLACES_IN_PLACE

HAND_OVER = ("import os, sys\n"
             "from agent_kit.core.process_replacement import replace_process\n"
             "print('agent-kit', os.getpid(), end=' ')   # buffered: must come out first\n"
             "replace_process(sys.argv[1:])\n")


def test_the_command_takes_over_with_its_output_after_ours_and_its_exit_code() -> None:
    proc = subprocess.run([sys.executable, "-c", HAND_OVER, sys.executable, "-c",
                           "import os, sys; print('softphone', os.getpid()); sys.exit(3)"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 3, proc.stderr
    ours, theirs = proc.stdout.split("softphone")
    assert ours.startswith("agent-kit ")
    if REPLACES_IN_PLACE:   # exec: the same process, so service managers and signals see one
        assert ours.split()[1] == theirs.split()[0]


def test_a_missing_command_raises_for_the_caller_to_say_so() -> None:
    proc = subprocess.run([sys.executable, "-c", HAND_OVER, "no-such-softphone-xyz"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and "FileNotFoundError" in proc.stderr
