"""A new agent's first run (issue 16, items 1, 7 and 9), through the real `agent-kit` command.

Not enrolled: never READY, and said once at the top with what to do. After enrolling: `enroll`
points to the check, the monitor prints one readable line per gate change (no log lines by
default), `status` shows check titles and fixes, the first notification of a shift has no
"again". The command line: help once and without type tags, plain errors, plurals.
"""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import subprocess
import sys
import time

import httpx
import pytest

from agent_kit.core.i18n import set_language
from agent_kit.core.policy import load_policy
from agent_kit.core.results import CheckReport, CheckResult, Status
from agent_kit.face.terminal import render_terminal
from agent_kit.link.client import CenterClient
from agent_kit.loop.monitor import Monitor, MonitorDeps
from agent_kit.loop.spool import Spool
from agent_kit.loop.state_file import read_state
from agent_kit.run.runner import run_checks
from agent_kit.run.units import ProbeContext, ProbeUnit, units_for
from tests.test_heartbeat_client import ENR, NOW, FakeCenter

# A site policy that does not require a VPN (what issue 16 was told READY with), with the
# computer's own levels out of the way so that only what could not run decides the verdict.
NO_VPN_POLICY = ('version = "site-home-1"\n'
                 '[checks."vpn.connected"]\nmode = "optional"\nunknown_blocks = false\n'
                 '[checks."system.cpu"]\nwarn = "none"\nfail = "none"\nmin_cores = 1\n'
                 '[checks."system.memory"]\nwarn = 0\nfail = 0\n'
                 '[checks."system.disk"]\nwarn = 0\nfail = 0\n'
                 '[checks."system.uptime"]\nwarn = "none"\n'
                 '[checks."system.power"]\nwarn = 0\nfail = 0\n')


def agent_kit(*args: str, home, timeout: float = 60, **kw) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "AGENT_KIT_HOME": str(home), "COLUMNS": "100"}
    return subprocess.run([sys.executable, "-m", "agent_kit.face.cli", *args], env=env,
                          capture_output=True, text=True, timeout=timeout, **kw)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def no_vpn_policy(tmp_path):
    path = tmp_path / "site.toml"
    path.write_text(NO_VPN_POLICY)
    return path


# ---------------------------------------------------------------- item 1: not enrolled

def test_not_enrolled_is_never_ready_and_says_so_once_at_the_top(tmp_path, no_vpn_policy):
    """Issue 16: "READY (with warnings)", exit 0, no network or bandwidth check run. Audio is
    left out here (no sound card in the unit tests): every other group runs."""
    home = tmp_path / "home"
    proc = agent_kit("check", "--policy", str(no_vpn_policy), "--skip", "audio", home=home)
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    out = proc.stdout
    assert out.lstrip().startswith("This computer is not set up with your contact center"), out
    assert "Ask IT for your setup code" in out and "agent-kit enroll --center" in " ".join(
        out.split())
    assert out.count("not set up with your contact center yet") <= 4   # the notice + pointers
    assert "no center configured" not in out
    assert "READY (with warnings)" not in out and "NOT READY" in out
    flat = " ".join(out.split())
    assert "not checked: Connection to the contact center, Internet speed" in flat
    assert "problem(s)" not in out

    data = json.loads(agent_kit("check", "--policy", str(no_vpn_policy), "--skip", "audio",
                                "--json", home=home).stdout)
    assert data["ready"] is False and data["verdict"] == "fail"
    assert not [c for c in data["checks"] if c["status"] == "fail"]   # no check failed...
    assert {g["group"] for g in data["not_checked"]} == {"network", "bandwidth"}  # ...this did
    assert data["not_enrolled"]["fix"].startswith("Ask IT for your setup code")
    path = next(g for g in data["not_checked"] if g["unit"] == "path")
    assert path["checks"][:4] == ["network.rtt", "network.jitter", "network.loss", "network.mos"]


def test_enrolled_with_the_center_down_is_not_ready_and_says_why(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    (home / "enrollment.json").write_text(json.dumps(
        {"center_url": f"http://127.0.0.1:{_closed_port()}", "agent_id": "ws-x",
         "secret": "s" * 64, "heartbeat_interval_s": 15.0}))
    proc = agent_kit("check", "--only", "network,bandwidth", "--json", home=home)
    assert proc.returncode == 1, proc.stderr
    data = json.loads(proc.stdout)
    assert data["not_enrolled"] is None and data["ready"] is False
    assert {g["unit"] for g in data["not_checked"]} == {"path", "bandwidth"}
    assert all("does not answer" in g["reason"] for g in data["not_checked"]), data


def test_a_measurement_the_policy_does_not_judge_does_not_block(tmp_path):
    """Both levels "none" for every bandwidth check: nothing is lost when it cannot run."""
    site = tmp_path / "site.toml"
    site.write_text("".join(f'[checks."bandwidth.{c}"]\nwarn = "none"\nfail = "none"\n'
                            for c in ("down", "up", "bufferbloat")))
    units = units_for({"bandwidth"})
    judged = run_checks(units, ProbeContext(policy=load_policy(), not_enrolled=True))
    assert [g.unit for g in judged.not_checked] == ["bandwidth"] and not judged.ready
    assert judged.not_enrolled is not None
    unjudged = run_checks(units, ProbeContext(policy=load_policy(site), not_enrolled=True))
    assert unjudged.not_checked == () and unjudged.ready


def _stand_in(name: str, results: dict[str, Status]) -> ProbeUnit:
    def run(ctx: ProbeContext) -> list[CheckResult]:
        from agent_kit.core.levels import state_result, unknown_result

        return [unknown_result(cid, ctx.policy, f"{cid} could not measure")
                if status is Status.UNKNOWN else
                state_result(cid, status, 1.0, ctx.policy, message=f"{cid} measured")
                for cid, status in results.items()]

    return ProbeUnit(name, run, timeout_s=2.0, owns=tuple(results))


def test_a_state_alone_unknown_beside_measured_levels_is_the_policys_to_judge():
    """Cable or Wi-Fi unknown (no default route, as in a lab namespace) while the path test
    measured: the network was checked; network.link's unknown_blocks decides."""
    policy = load_policy()
    link = _stand_in("link", {"network.link": Status.UNKNOWN})
    path = _stand_in("path", {"network.rtt": Status.PASS, "network.jitter": Status.PASS,
                              "network.loss": Status.PASS, "network.mos": Status.PASS,
                              "network.hops": Status.UNKNOWN})
    report = run_checks([link, path], ProbeContext(policy=policy))
    assert report.not_checked == () and report.ready
    # the other way round: the cable is known, nothing of the path test was measured
    link = _stand_in("link", {"network.link": Status.PASS})
    path = _stand_in("path", {"network.rtt": Status.UNKNOWN, "network.jitter": Status.UNKNOWN,
                              "network.loss": Status.UNKNOWN, "network.mos": Status.UNKNOWN,
                              "network.hops": Status.PASS})
    report = run_checks([link, path], ProbeContext(policy=policy))
    [gap] = report.not_checked
    assert gap.unit == "path" and gap.check_ids == ("network.rtt", "network.jitter",
                                                    "network.loss", "network.mos")
    assert gap.reason == "network.rtt could not measure" and not report.ready


def test_one_problem_is_singular():
    checks = (CheckResult("system.disk", "system", Status.FAIL, 0.5, "GB", 5, 1, "0.5 GB free",
                          "Free disk space."),)
    out = io.StringIO()
    render_terminal(CheckReport(Status.FAIL, "p", "1", "2026-12-02T00:00:00+00:00", 1.0,
                                checks), out)
    assert "1 problem to fix before you take calls" in " ".join(out.getvalue().split())


# ---------------------------------------------------------------- item 9: the command line

def test_bare_agent_kit_prints_the_help_once(tmp_path):
    proc = agent_kit(home=tmp_path, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("Usage: agent-kit") == 1, proc.stdout
    assert "agent-kit window" in proc.stdout


@pytest.mark.parametrize("command", ["", "check", "diagnose", "window", "enroll", "monitor",
                                     "status", "devices", "login"])
def test_help_has_no_type_tags(tmp_path, command):
    proc = agent_kit(*command.split(), "--help", home=tmp_path)
    assert proc.returncode == 0, proc.stderr
    for tag in ("<bool>", "<str>", "<float>", "<list", "probe", "heartbeat"):
        assert tag not in proc.stdout, (tag, proc.stdout)


@pytest.mark.parametrize("value", ["abc", "15s", ""])
def test_an_interval_that_is_no_number_is_one_plain_line(tmp_path, value):
    proc = agent_kit("monitor", "--interval", value, home=tmp_path)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.count("\n") == 1, proc.stderr
    assert "is not a number of seconds" in proc.stderr
    assert "Input should be" not in proc.stderr and "pydantic" not in proc.stderr


# ---------------------------------------------------------------- item 7: after enrolling

def test_enroll_points_to_the_check_and_the_check_knows_the_center(tmp_path, no_vpn_policy):
    from tests.center_seed import run_center

    home = tmp_path / "home"
    with run_center(tmp_path / "center") as center:
        token = center.create_token(uses=1)
        proc = agent_kit("enroll", "--center", center.url, "--token", "-", input=token + "\n",
                         home=home)
        assert proc.returncode == 0, proc.stderr
        assert "agent-kit window" in proc.stdout and "agent-kit check" in proc.stdout
        assert "monitor" not in proc.stdout
        check = agent_kit("check", "--only", "system,vpn", "--policy", str(no_vpn_policy),
                          "--json", home=home)
    data = json.loads(check.stdout)
    assert data["not_enrolled"] is None, data
    assert check.returncode == 0, (check.stdout, check.stderr)


def test_the_monitor_says_each_gate_change_in_a_line_and_status_gives_titles_and_fixes(
        tmp_path):
    """The real command, its center down: the computer's disk fails the site's levels."""
    home = tmp_path / "home"
    home.mkdir()
    (home / "enrollment.json").write_text(json.dumps(
        {"center_url": f"http://127.0.0.1:{_closed_port()}", "agent_id": "ws-x",
         "secret": "s" * 64, "heartbeat_interval_s": 15.0}))
    policy = tmp_path / "full-disk.toml"
    policy.write_text(NO_VPN_POLICY.replace('[checks."system.disk"]\nwarn = 0\nfail = 0\n',
                                            '[checks."system.disk"]\nwarn = 1e12\nfail = 1e12\n'))
    env = {**os.environ, "AGENT_KIT_HOME": str(home)}
    monitor = subprocess.Popen(
        [sys.executable, "-m", "agent_kit.face.cli", "monitor", "--interval", "1", "--only",
         "system", "--policy", str(policy)], env=env, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        state = None
        while time.monotonic() < deadline:
            state = read_state(home / "gate.json")
            if state is not None and state.full_check_at is not None:
                break
            time.sleep(0.2)
        assert state is not None and not state.gate_open and state.blocking == ("system.disk",)
        status = agent_kit("status", home=home)
        assert status.returncode == 1, status
        lines = status.stdout.splitlines()
        assert lines[0].startswith("Not ready to take calls")
        assert lines[1].startswith("  ✗ Disk free: ") and "Fix:" not in lines[1], lines
        assert lines[2].startswith("      Fix: "), lines
        assert "system.disk" not in status.stdout
        shown = json.loads(agent_kit("status", "--json", home=home).stdout)
        assert shown["problems"][0]["title"] == "Disk free" and shown["problems"][0]["fix"]
    finally:
        monitor.send_signal(signal.SIGTERM)
        out, err = monitor.communicate(timeout=30)
    assert monitor.returncode == 0, err
    said = [line for line in out.splitlines() if "to take calls" in line]
    assert len(said) == 1, out            # closed from the start: one line, with the why
    assert "Not ready to take calls: Disk free: " in said[0] and "Fix: " in said[0]
    assert out.startswith("Monitoring this computer for the shift (as ws-x)")
    for noise in (" INFO ", " WARNING ", "agent_kit.loop"):
        assert noise not in out + err, (noise, out, err)


class _Readings:
    """One stand-in unit whose next status the test sets (the loop is under test here)."""

    def __init__(self) -> None:
        self.status = Status.PASS

    def unit(self) -> ProbeUnit:
        def run(_ctx: ProbeContext) -> list[CheckResult]:
            return [CheckResult("system.cpu", "system", self.status, 50.0, "%", 80, 95,
                                f"CPU {self.status.value}")]

        return ProbeUnit("system", run, timeout_s=2.0, owns=("system.cpu",))


def test_the_first_opening_of_a_shift_is_no_again(tmp_path):
    set_language("en")
    clock = {"wall": NOW, "mono": 1000.0}
    notes: list[tuple[str, str, bool]] = []
    lines: list[bool] = []
    readings = _Readings()
    deps = MonitorDeps(units=(readings.unit(),), policy=load_policy(), enrollment=ENR,
                       context_factory=lambda pol: ProbeContext(policy=pol),
                       client=CenterClient(ENR, transport=httpx.MockTransport(FakeCenter()),
                                           clock=lambda: clock["wall"]),
                       spool=Spool(tmp_path / "spool.db", ENR.agent_id),
                       notify=lambda title, body, urgent: notes.append((title, body, urgent)),
                       clock=lambda: clock["wall"], monotonic=lambda: clock["mono"],
                       state_file=tmp_path / "gate.json",
                       on_gate=lambda state: lines.append(state.open))
    monitor = Monitor(deps, interval_s=15.0)

    def run_for(seconds: float) -> None:
        for _ in range(int(seconds / 15)):
            clock["wall"] += 15
            clock["mono"] += 15
            monitor.cycle()

    monitor.cycle()
    assert notes == [("Ready to take calls",
                      "Your workstation meets call standards: you can take calls.", False)]
    readings.status = Status.FAIL
    run_for(30)
    assert notes[-1][0] == "Not ready to take calls"
    readings.status = Status.PASS
    run_for(60)
    assert notes[-1] == ("Ready to take calls", "Your workstation meets call standards again.",
                         False)
    assert lines == [True, False, True]     # one line per change, none while nothing changed
    # a new shift (the computer slept for two hours): its first opening is no "again"
    clock["wall"] += 7200
    clock["mono"] += 7200
    monitor.cycle()
    run_for(15)
    assert notes[-1] == ("Ready to take calls",
                         "Your workstation meets call standards: you can take calls.", False)


def test_status_while_open_shows_a_watched_check_by_title_with_its_fix(tmp_path, monkeypatch):
    from agent_kit.face.login import local_gate, status_lines
    from agent_kit.link.state_folder import save_enrollment
    from agent_kit.loop.state_file import GateProblem, MonitorState, write_state

    monkeypatch.setenv("AGENT_KIT_HOME", str(tmp_path))
    set_language("en")
    save_enrollment(ENR)
    now = time.time()
    write_state(MonitorState(
        agent_id=ENR.agent_id, pid=1, updated_at=now, interval_s=15, gate_open=True,
        gate_since=now - 100, reasons=(), blocking=(), watching=("audio.headset",),
        awaiting_full_check=False, full_check_at=now - 100,
        problems=(GateProblem("no headset found", "audio.headset", "Plug in your USB headset.",
                              blocking=False),)))
    view = local_gate()
    assert view.code == 0
    lines = status_lines(view)
    assert lines[0].startswith("Ready to take calls")
    assert lines[1] == ("  ! Headset: no headset found (failing now, not long enough to block "
                        "calls)")
    assert lines[2] == "      Fix: Plug in your USB headset."
    assert not any("audio.headset" in line for line in lines)
