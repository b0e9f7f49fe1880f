"""Packaging without building: the service definitions are well-formed and agree with each other,
and ``agent-kit --version`` stays cheap (nothing heavy imported at start-up)."""

from __future__ import annotations

import configparser
import plistlib
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SERVICES = ROOT / "installer" / "services"
TASK_NS = {"t": "http://schemas.microsoft.com/windows/2004/02/mit/task"}
# What the agent imports only inside the functions that need them (STYLE.md, issue 8).
HEAVY = ("numpy", "scapy", "sounddevice", "httpx", "pydantic", "rich", "tkinter", "psutil",
         "speedtest", "jwt", "cryptography", "fastapi", "agent_kit.center")


def test_version_imports_nothing_heavy():
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "agent_kit.face.cli",
                           "--version"], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert proc.returncode == 0, proc.stderr
    imported = {line.split("|")[-1].strip() for line in proc.stderr.splitlines()
                if line.startswith("import time:")}
    assert "typer" in imported, "the import log is empty: -X importtime not understood?"
    heavy = sorted(m for m in imported for h in HEAVY if m == h or m.startswith(h + "."))
    assert not heavy, heavy


def test_systemd_unit_runs_the_monitor_and_restarts_on_failure():
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read(SERVICES / "linux" / "agent-kit-monitor.service")
    assert unit["Service"]["ExecStart"] == "/opt/agent-kit/agent-kit monitor"
    assert unit["Service"]["Restart"] == "on-failure"
    assert unit["Service"]["RestartPreventExitStatus"] == "2"   # not enrolled / already running
    assert unit["Install"]["WantedBy"] == "default.target"


def test_xdg_autostart_entry_runs_the_same_command():
    entry = configparser.ConfigParser(interpolation=None)
    entry.optionxform = str  # type: ignore[assignment,method-assign]
    entry.read(SERVICES / "linux" / "agent-kit-monitor.desktop")
    desktop = entry["Desktop Entry"]
    assert desktop["Type"] == "Application"
    assert desktop["Exec"] == "/opt/agent-kit/agent-kit monitor"
    assert desktop["X-systemd-skip"] == "true"   # systemd sessions use the unit instead


def test_macos_launch_agent_runs_the_monitor_in_the_user_session():
    with (SERVICES / "macos" / "com.agent-kit.monitor.plist").open("rb") as fh:
        plist = plistlib.load(fh)
    assert plist["Label"] == "com.agent-kit.monitor"
    assert plist["ProgramArguments"] == ["/usr/local/lib/agent-kit/agent-kit", "monitor"]
    assert plist["RunAtLoad"] is True
    assert plist["KeepAlive"] == {"SuccessfulExit": False}
    assert plist["LimitLoadToSessionType"] == "Aqua"


def test_windows_task_runs_the_windowed_monitor_at_logon_as_the_user():
    root = ET.parse(SERVICES / "windows" / "agent-kit-monitor.xml").getroot()
    assert root.find("t:Triggers/t:LogonTrigger/t:Enabled", TASK_NS).text == "true"
    principal = root.find("t:Principals/t:Principal", TASK_NS)
    assert principal.find("t:GroupId", TASK_NS).text == "S-1-5-32-545"        # BUILTIN\Users
    assert principal.find("t:RunLevel", TASK_NS).text == "LeastPrivilege"
    assert root.find("t:Settings/t:ExecutionTimeLimit", TASK_NS).text == "PT0S"
    assert root.find("t:Settings/t:MultipleInstancesPolicy", TASK_NS).text == "IgnoreNew"
    exe = root.find("t:Actions/t:Exec", TASK_NS)
    assert exe.find("t:Command", TASK_NS).text.endswith("\\agent-kit-monitor.exe")
    assert exe.find("t:Arguments", TASK_NS).text == "monitor"
    script = (SERVICES / "windows" / "install.ps1").read_text("utf-8")
    assert "agent-kit-monitor.xml" in script and "agent-kit-monitor.exe" in script

