"""The real `agent-kit` command: exit codes, JSON contract, bad input."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest

CONTRACT_CHECK_FIELDS = {"id", "group", "status", "value", "unit", "warn", "fail", "message",
                         "fix"}


def agent_kit(*args: str, env: dict[str, str] | None = None, home=None):
    e = {**os.environ, **(env or {})}
    if home is not None:
        e["AGENT_KIT_HOME"] = str(home)
    return subprocess.run([sys.executable, "-m", "agent_kit.face.cli", *args], capture_output=True,
                          text=True, timeout=60, env=e)


@pytest.fixture
def lenient(tmp_path):
    f = tmp_path / "lenient.toml"
    f.write_text('[checks."system.cpu"]\nwarn = "none"\nfail = "none"\n'
                 '[checks."system.uptime"]\nwarn = "none"\n'
                 '[checks."system.disk"]\nwarn = 0\nfail = 0\n'
                 '[checks."system.memory"]\nwarn = 0\nfail = 0\n')
    return f


def test_ready_exits_0_with_contract_json(lenient, tmp_path):
    proc = agent_kit("check", "--only", "system", "--policy", str(lenient), "--json",
                     home=tmp_path)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["verdict"] in ("pass", "warn")
    assert data["policy"] == {"name": "agent-kit default call standards",
                              "version": "2026.11.0"}
    assert isinstance(data["duration_s"], float) and data["started_at"].endswith("+00:00")
    ids = [c["id"] for c in data["checks"]]
    assert ids == ["system.cpu", "system.memory", "system.disk", "system.power",
                   "system.uptime"]
    for c in data["checks"]:
        assert set(c) >= CONTRACT_CHECK_FIELDS
        assert c["status"] in ("pass", "warn", "fail", "unknown")


def test_not_ready_exits_1_and_says_why(tmp_path):
    f = tmp_path / "strict.toml"
    f.write_text('[checks."system.disk"]\nwarn = 1e12\nfail = 1e12\n')
    proc = agent_kit("check", "--only", "system", "--policy", str(f), home=tmp_path)
    assert proc.returncode == 1, proc.stderr
    assert "NOT READY" in proc.stdout
    assert "Free disk space" in proc.stdout     # the fix is shown
    proc = agent_kit("check", "--only", "system", "--policy", str(f), "--json", home=tmp_path)
    assert proc.returncode == 1
    disk = next(c for c in json.loads(proc.stdout)["checks"] if c["id"] == "system.disk")
    assert disk["status"] == "fail" and disk["fix"]


def test_groups_without_center_report_unknown(tmp_path):
    proc = agent_kit("check", "--only", "vpn", "--json", home=tmp_path)
    route = next(c for c in json.loads(proc.stdout)["checks"] if c["id"] == "vpn.route")
    assert route["status"] in ("unknown", "fail")
    if route["status"] == "unknown":
        assert "no center configured" in route["message"]


def test_skip_removes_groups(lenient, tmp_path):
    proc = agent_kit("check", "--skip", "vpn,network,bandwidth,audio", "--policy", str(lenient),
                     "--json", home=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert {c["group"] for c in json.loads(proc.stdout)["checks"]} == {"system"}


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (["check", "--frobnicate"], "No such option"),
        (["check", "--only", "sytem"], "unknown group sytem"),
        (["check", "--only", "system", "--skip", "vpn"], "cannot be used together"),
        (["check", "--skip", "system,vpn,network,bandwidth,audio"], "leaves no group"),
        (["check", "--reflector", "nohostport"], "must be HOST:PORT"),
        (["check", "--reflector", "host:99999"], "must be HOST:PORT"),
        (["check", "--policy", "/nonexistent/policy.toml"], "file not found"),
        (["check", "--center", "ftp://center"], "must look like"),
        (["check", "--center", "http://127.0.0.1:{closed}"], "does not answer"),
        (["nosuchcommand"], "No such command"),
        (["check", "--only", "system", "--lang", "xx"], "'xx' is not one of en, ja, ko, sv"),
    ],
)
def test_bad_usage_exits_2_with_one_line(args, reason, tmp_path):
    args = [a.replace("{closed}", str(_closed_port())) for a in args]
    proc = agent_kit(*args, home=tmp_path)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert reason in proc.stderr
    assert proc.stdout == ""


def test_a_url_that_is_not_a_center_exits_2_with_one_line(tmp_path):
    """A web server that answers 404 on /healthz (a wrong port, a path in the URL)."""
    import http.server
    import threading

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        proc = agent_kit("check", "--only", "vpn", "--center",
                         f"http://127.0.0.1:{server.server_address[1]}", home=tmp_path)
    finally:
        server.shutdown()
        server.server_close()
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.count("\n") == 1, proc.stderr
    assert "HTTP 501" in proc.stderr and "agent-center URL" in proc.stderr


def test_enrolled_center_down_says_so_for_path_and_bandwidth(tmp_path):
    """Not "the center offers no bandwidth endpoint": it does not answer."""
    (tmp_path / "enrollment.json").write_text(json.dumps(
        {"center_url": f"http://127.0.0.1:{_closed_port()}", "agent_id": "ws-x",
         "secret": "s" * 64, "heartbeat_interval_s": 15.0}))
    proc = agent_kit("check", "--only", "network,bandwidth", "--json", home=tmp_path)
    checks = {c["id"]: c for c in json.loads(proc.stdout)["checks"]}
    for cid in ("network.rtt", "bandwidth.down", "bandwidth.up", "bandwidth.bufferbloat"):
        assert checks[cid]["status"] == "unknown"
        assert "does not answer" in checks[cid]["message"], checks[cid]


def test_malformed_policy_exits_2_with_file_and_line(tmp_path):
    f = tmp_path / "bad.toml"
    f.write_text('[checks."network.rtt"]\nwarn = 100\nfail = 50\n')
    proc = agent_kit("check", "--policy", str(f), "--json", home=tmp_path)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert str(f) in lines[0] and "line 3" in lines[0] and "fail" in lines[0]
    assert proc.stdout == ""


def test_broken_enrollment_file_exits_2(tmp_path):
    (tmp_path / "enrollment.json").write_text("{not json")
    proc = agent_kit("check", "--only", "vpn", home=tmp_path)
    assert proc.returncode == 2 and "enroll" in proc.stderr


def test_version():
    proc = agent_kit("--version")
    assert proc.returncode == 0 and proc.stdout.startswith("agent-kit ")


def test_the_only_help_names_every_group():
    """``--only``'s help is a constant msgid (so it is translated): it must still name every
    group, in the order of the catalogue."""
    from agent_kit.core.checks import GROUPS

    out = subprocess.run([sys.executable, "-m", "agent_kit.face.cli", "check", "--help",
                          "--lang", "en"], capture_output=True, text=True, timeout=60,
                         env={**os.environ, "COLUMNS": "200"})
    assert out.returncode == 0, out.stderr
    flat = " ".join(out.stdout.split())
    assert f"comma-separated: {', '.join(GROUPS)}." in flat, out.stdout
