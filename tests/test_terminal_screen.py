"""``agent-kit check`` as an agent sees it: in a real pseudo-terminal of 80x24, its output fed to
a VT100 screen (pyte), so the progress line that rewrites itself and the colours are played as
a terminal plays them. The screen is saved to test-artifacts/terminal-*-80x24.txt to be looked
at.

The run is the real one on this machine (``--only system,vpn``), with a policy that makes four
checks fail: the VPN (no tunnel), free disk space, available memory and time since restart.
The whole check on this machine, with no center and no sound system, is saved too
(terminal-full-en-80x24.txt): what an agent who has not enrolled sees at the end of it.
"""

from __future__ import annotations

import fcntl
import os
import pty
import select
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pyte
import pytest

from agent_kit.core.i18n import _, set_language
from agent_kit.face.check_steps import step_label

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts"
COLUMNS, LINES = 80, 24
FOUR_PROBLEMS = ('[checks."system.disk"]\nwarn = 100000\nfail = 100000\n'
                 '[checks."system.memory"]\nwarn = 1000000000\nfail = 1000000000\n'
                 '[checks."system.uptime"]\nwarn = -2\nfail = -1\n'
                 '[checks."system.cpu"]\nwarn = "none"\nfail = "none"\n')


def run_in_terminal(args: list[str], env: dict[str, str], timeout_s: float = 90
                    ) -> tuple[int, bytes]:
    """Run ``args`` with a pseudo-terminal of COLUMNS x LINES as stdin, stdout and stderr."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", LINES, COLUMNS, 0, 0))
    proc = subprocess.Popen(args, stdin=slave, stdout=slave, stderr=slave, env=env, cwd=ROOT,
                            close_fds=True)
    os.close(slave)
    out = bytearray()
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(master, 65536)
            except OSError:      # EIO: the child closed the terminal
                break
            if not chunk:
                break
            out += chunk
        elif proc.poll() is not None:
            break
    os.close(master)
    code = proc.wait(timeout=10)
    return code, bytes(out)


def screen_of(output: bytes) -> list[str]:
    """The 24 rows a VT100 of 80 columns shows after ``output``."""
    screen = pyte.Screen(COLUMNS, LINES)
    stream = pyte.ByteStream(screen)
    stream.feed(output)
    return [row.rstrip() for row in screen.display]


def check_in_terminal(tmp_path: Path, *args: str) -> tuple[int, list[str]]:
    policy = tmp_path / "four-problems.toml"
    policy.write_text(FOUR_PROBLEMS)
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "TERM": "xterm-256color",
           "COLUMNS": str(COLUMNS), "LINES": str(LINES), "AGENT_KIT_HOME": str(tmp_path / "h"),
           "XDG_RUNTIME_DIR": str(tmp_path / "run"), "HOME": str(tmp_path)}
    (tmp_path / "run").mkdir(exist_ok=True)
    code, output = run_in_terminal([sys.executable, "-m", "agent_kit.face.cli", "check",
                                    "--policy", str(policy), *args], env)
    return code, screen_of(output)


def save(name: str, rows: list[str]) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / name).write_text("\n".join(rows) + "\n", "utf-8")


@pytest.mark.parametrize("lang", ["en", "ja", "ko", "sv"])
def test_a_check_with_four_problems_fits_80x24(tmp_path: Path, lang: str) -> None:
    code, rows = check_in_terminal(tmp_path, "--only", "system,vpn", "--lang", lang)
    save(f"terminal-{lang}-80x24.txt", rows)
    text = "\n".join(rows)
    assert code == 1, text
    set_language(lang)
    try:
        computer, vpn, verdict = step_label("system", "system"), step_label("vpn", "vpn"), \
            _("NOT READY")
    finally:
        set_language("en")
    # Everything is on one screen: the first step row and the verdict, nothing scrolled off
    assert rows[0].startswith("✘ " + computer) and rows[1].startswith("✘ " + vpn), text
    assert any(row.startswith(verdict) for row in rows), text
    assert rows[-1] == "", "a full screen: something may have scrolled off"
    # The progress line rewrote itself: no trace of it is left on the screen
    assert "…" not in text, text
    # The four problems are there, each with its fix on a line of its own
    fix = {"en": "Fix: ", "ja": "対処: ", "ko": "해결 방법: ", "sv": "Åtgärd: "}[lang]
    assert sum(row.startswith("   " + fix) for row in rows) == 4, text


def test_the_whole_check_without_a_center_or_sound_system_is_saved(tmp_path: Path) -> None:
    code, rows = check_in_terminal(tmp_path, "--lang", "en")
    save("terminal-full-en-80x24.txt", rows)
    text = "\n".join(rows)
    assert code == 1, text
    assert any(row.startswith("NOT READY") for row in rows), text
    assert "…" not in text and "RFC 3550" not in text and "dBFS" not in text, text
