"""Desktop notifications: tell the agent at once when the gate closes or opens.

One function, the platform's way chosen once (psutil's habit): ``notify-send`` on Linux
(freedesktop notifications) when installed, ``osascript`` on macOS, a PowerShell toast on
Windows. A notification that cannot be shown is logged and otherwise ignored: the monitor keeps
running, and ``agent-kit status`` still tells the same thing.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import sys
from collections.abc import Callable

log = logging.getLogger("agent_kit.loop.notifications")

Notifier = Callable[[str, str, bool], None]   # (title, body, urgent)


def _linux(title: str, body: str, urgent: bool) -> None:
    exe = shutil.which("notify-send")
    if exe is None:
        log.info("no notify-send: %s: %s", title, body)
        return
    _run([exe, "--app-name=agent-kit", f"--urgency={'critical' if urgent else 'normal'}",
          title, body])


def _macos(title: str, body: str, urgent: bool) -> None:
    script = f"display notification {_applescript(body)} with title {_applescript(title)}"
    if urgent:
        script += ' sound name "Basso"'
    _run(["osascript", "-e", script])


def _windows(title: str, body: str, urgent: bool) -> None:
    # Windows.UI.Notifications toast through PowerShell (no extra module needed on Windows 10+)
    xml = (f"<toast><visual><binding template='ToastGeneric'><text>{_xml(title)}</text>"
           f"<text>{_xml(body)}</text></binding></visual></toast>")
    ps = (
        "[Windows.UI.Notifications.ToastNotificationManager, Windows.UI.Notifications, "
        "ContentType=WindowsRuntime] > $null;"
        "$d = New-Object Windows.Data.Xml.Dom.XmlDocument;"
        f"$d.LoadXml('{xml.replace(chr(39), chr(39) * 2)}');"
        "$t = New-Object Windows.UI.Notifications.ToastNotification $d;"
        "[Windows.UI.Notifications.ToastNotificationManager]::CreateToastNotifier('agent-kit')"
        ".Show($t)"
    )
    _run(["powershell", "-NoProfile", "-NonInteractive", "-Command", ps])


def _run(argv: list[str]) -> None:
    try:
        proc = subprocess.run(argv, capture_output=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        log.warning("desktop notification failed: %s", exc)
        return
    if proc.returncode != 0:
        log.warning("desktop notification failed (exit %d): %s", proc.returncode,
                    proc.stderr[:200].decode(errors="replace"))


def _applescript(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _xml(text: str) -> str:
    return (text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace("'", "&apos;").replace('"', "&quot;"))


if sys.platform == "darwin":
    desktop_notify: Notifier = _macos
elif sys.platform == "win32":
    desktop_notify = _windows
else:
    desktop_notify = _linux
