"""How the window is reached from the command line, without a screen."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ENV = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)}


def test_no_arguments_without_a_screen_prints_help() -> None:
    out = subprocess.run([sys.executable, "-m", "agent_kit.face.cli"], capture_output=True, text=True,
                         env=ENV, stdin=subprocess.DEVNULL, timeout=60)
    assert out.returncode == 0 and "window" in out.stdout and "diagnose" in out.stdout


def test_window_without_a_screen_is_one_line_and_exit_2() -> None:
    out = subprocess.run([sys.executable, "-m", "agent_kit.face.cli", "window"], capture_output=True,
                         text=True, env=ENV, stdin=subprocess.DEVNULL, timeout=60)
    assert out.returncode == 2
    assert out.stderr.startswith("agent-kit: cannot open a window") and \
        out.stderr.count("\n") == 1, out.stderr
