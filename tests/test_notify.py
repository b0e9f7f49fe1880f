"""Desktop notifications on Linux go through notify-send (a stand-in on PATH records them)."""

from __future__ import annotations

import os
import stat

from agent_kit.loop import notifications as notify


def test_linux_notification_uses_notify_send(tmp_path, monkeypatch):
    log = tmp_path / "calls.txt"
    exe = tmp_path / "notify-send"
    exe.write_text(f'#!/bin/sh\nfor a in "$@"; do printf "%s\\n" "$a" >> {log}; done\n')
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    notify._linux("Not ready to take calls", "Jitter: 45 ms", True)
    assert log.read_text().splitlines() == ["--app-name=agent-kit", "--urgency=critical",
                                            "Not ready to take calls", "Jitter: 45 ms"]


def test_no_notifier_installed_is_not_an_error(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("PATH", str(tmp_path))
    caplog.set_level("INFO")
    notify._linux("t", "b", False)
    assert "no notify-send" in caplog.text


def test_a_failing_notifier_is_logged(tmp_path, monkeypatch, caplog):
    exe = tmp_path / "notify-send"
    exe.write_text("#!/bin/sh\necho 'no bus' >&2\nexit 1\n")
    exe.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    notify._linux("t", "b", False)
    assert "exit 1" in caplog.text and "no bus" in caplog.text


def test_quoting_for_macos_and_windows():
    assert notify._applescript('say "hi" \\') == '"say \\"hi\\" \\\\"'
    assert notify._xml("<a & 'b'>") == "&lt;a &amp; &apos;b&apos;&gt;"
