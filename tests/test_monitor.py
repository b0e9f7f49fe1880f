"""The monitor loop, driven cycle by cycle with controlled clocks.

Probe units here are stand-ins (the loop's schedule and gate logic are under test, not the
probes); heartbeats go through the real spool and the real client to the in-memory center of
test_heartbeat_client. The real units against a real center: tests/test_monitor_faults.py.
"""

from __future__ import annotations

import json
import threading

import httpx

from agent_kit.core.policy import load_policy
from agent_kit.core.results import CheckResult, Status
from agent_kit.link.client import CenterClient
from agent_kit.link.state_folder import Enrollment
from agent_kit.loop.monitor import Monitor, MonitorDeps, build_heartbeat, cadence_for
from agent_kit.loop.spool import Spool
from agent_kit.loop.state_file import read_state
from agent_kit.run.units import ProbeContext, ProbeUnit
from tests.test_heartbeat_client import ENR, NOW, FakeCenter


class Clocks:
    def __init__(self) -> None:
        self.wall, self.mono = NOW, 1000.0

    def advance(self, s: float) -> None:
        self.wall += s
        self.mono += s


def res(cid: str, status: Status, **details) -> CheckResult:
    return CheckResult(id=cid, group=cid.split(".")[0], status=status, value=1.0, unit="ms",
                       warn=None, fail=None, message=f"{cid} is {status.value}",
                       details=details)


class Lab:
    """Stand-in units whose next readings the test sets, and a count of runs per unit."""

    def __init__(self) -> None:
        self.status = {"system.cpu": Status.PASS, "network.jitter": Status.PASS,
                       "bandwidth.down": Status.PASS, "audio.noise": Status.PASS}
        self.speech = 0.0
        self.runs: dict[str, int] = {}

    def unit(self, name: str, group: str, cid: str) -> ProbeUnit:
        def run(_ctx: ProbeContext) -> list[CheckResult]:
            self.runs[name] = self.runs.get(name, 0) + 1
            extra = {"speech_activity": self.speech} if group == "audio" else {}
            return [res(cid, self.status[cid], **extra)]

        return ProbeUnit(name, run, timeout_s=2.0,
                         owns=(cid,), exclusive=group == "bandwidth")


def make_monitor(tmp_path, center: FakeCenter, lab: Lab, clocks: Clocks, notes: list,
                 interval_s: float = 15.0) -> Monitor:
    units = (lab.unit("system", "system", "system.cpu"),
             lab.unit("path", "network", "network.jitter"),
             lab.unit("bandwidth", "bandwidth", "bandwidth.down"),
             lab.unit("audio", "audio", "audio.noise"))
    client = CenterClient(ENR, transport=httpx.MockTransport(center), clock=lambda: clocks.wall)
    deps = MonitorDeps(units=units, policy=load_policy(), enrollment=ENR,
                       context_factory=lambda pol: ProbeContext(policy=pol),
                       client=client, spool=Spool(tmp_path / "spool.db", ENR.agent_id),
                       notify=lambda title, body, urgent: notes.append((title, body, urgent)),
                       clock=lambda: clocks.wall, monotonic=lambda: clocks.mono,
                       state_file=tmp_path / "gate.json")
    return Monitor(deps, interval_s=interval_s)


def run_for(monitor: Monitor, clocks: Clocks, seconds: float, step: float = 15.0) -> None:
    for _ in range(int(seconds / step)):
        clocks.advance(step)
        monitor.cycle()


def test_first_cycle_is_a_full_check_then_each_unit_keeps_its_cadence(tmp_path):
    center, lab, clocks, notes = FakeCenter(), Lab(), Clocks(), []
    monitor = make_monitor(tmp_path, center, lab, clocks, notes)
    monitor.cycle()
    assert lab.runs == {"system": 1, "path": 1, "bandwidth": 1, "audio": 1}
    assert monitor.gate.state.open and notes[-1][0] == "Ready to take calls"
    run_for(monitor, clocks, 30 * 60)   # half an hour at 15 s per cycle
    assert lab.runs["system"] == 121                     # every interval
    assert 29 <= lab.runs["path"] <= 31                  # every minute
    assert 29 <= lab.runs["audio"] <= 31
    assert lab.runs["bandwidth"] == 2                    # every 30 minutes


class RecordingCenter(FakeCenter):
    def __init__(self) -> None:
        super().__init__()
        self.bodies: list[dict] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.bodies += json.loads(request.content)["heartbeats"]
        return super().__call__(request)


def test_heartbeats_every_interval_delivered_with_gate_and_checks(tmp_path):
    center, lab, clocks, notes = RecordingCenter(), Lab(), Clocks(), []
    monitor = make_monitor(tmp_path, center, lab, clocks, notes)
    monitor.cycle()
    run_for(monitor, clocks, 150)
    seqs = sorted(center.stored.values())
    assert seqs == list(range(1, 12))     # one per 15 s: t=0..150
    body = center.bodies[-1]
    assert body["gate"]["open"] is True and body["verdict"] == "pass"
    assert {c["id"] for c in body["checks"]} == {"system.cpu", "network.jitter",
                                                 "bandwidth.down", "audio.noise"}
    state = read_state(tmp_path / "gate.json")
    assert state is not None and state.gate_open and state.delivery.pending == 0
    assert state.delivery.next_seq == 12


def test_a_persistent_failure_closes_notifies_and_recovery_reopens(tmp_path):
    center, lab, clocks, notes = FakeCenter(), Lab(), Clocks(), []
    monitor = make_monitor(tmp_path, center, lab, clocks, notes)
    monitor.cycle()
    lab.status["system.cpu"] = Status.FAIL
    clocks.advance(15)
    monitor.cycle()
    assert monitor.gate.state.open and monitor.gate.state.watching == ("system.cpu",)
    clocks.advance(15)
    monitor.cycle()       # bad for 15 s: closed
    state = monitor.gate.state
    assert not state.open and notes[-1][0] == "Not ready to take calls" and notes[-1][2]
    assert "system.cpu is fail" in notes[-1][1]
    saved = read_state(tmp_path / "gate.json")
    assert saved is not None and not saved.gate_open and saved.blocking == ("system.cpu",)
    lab.status["system.cpu"] = Status.PASS
    run_for(monitor, clocks, 30)
    assert not monitor.gate.state.open     # two good samples: not yet
    run_for(monitor, clocks, 15)
    assert monitor.gate.state.open and notes[-1][0] == "Ready to take calls"


def test_a_blocking_slow_unit_is_remeasured_sooner(tmp_path):
    center, lab, clocks, notes = FakeCenter(), Lab(), Clocks(), []
    monitor = make_monitor(tmp_path, center, lab, clocks, notes)
    lab.status["bandwidth.down"] = Status.FAIL
    monitor.cycle()                     # the full check fails: closed at once
    assert not monitor.gate.state.open
    lab.status["bandwidth.down"] = Status.PASS
    run_for(monitor, clocks, 20 * 60)
    assert lab.runs["bandwidth"] >= 4   # every 5 minutes while blocking, not every 30
    assert monitor.gate.state.open


def test_no_bandwidth_test_during_a_call(tmp_path):
    center, lab, clocks, notes = FakeCenter(), Lab(), Clocks(), []
    monitor = make_monitor(tmp_path, center, lab, clocks, notes)
    monitor.cycle()
    lab.speech = 0.8                    # the agent is talking: sustained speech
    run_for(monitor, clocks, 3 * 60)
    assert monitor.in_call
    runs = lab.runs["bandwidth"]
    run_for(monitor, clocks, 60 * 60)
    assert lab.runs["bandwidth"] == runs
    assert read_state(tmp_path / "gate.json").in_call
    lab.speech = 0.0
    run_for(monitor, clocks, 3 * 60)
    assert not monitor.in_call and lab.runs["bandwidth"] == runs + 1


def test_one_speech_capture_is_not_a_call(tmp_path):
    center, lab, clocks, notes = FakeCenter(), Lab(), Clocks(), []
    monitor = make_monitor(tmp_path, center, lab, clocks, notes)
    monitor.cycle()
    lab.speech = 0.9
    run_for(monitor, clocks, 60)
    lab.speech = 0.0
    run_for(monitor, clocks, 60)
    assert not monitor.in_call


def test_center_outage_keeps_heartbeats_and_delivers_them_after(tmp_path):
    center, lab, clocks, notes = FakeCenter(), Lab(), Clocks(), []
    monitor = make_monitor(tmp_path, center, lab, clocks, notes)
    monitor.cycle()
    center.script = [httpx.ConnectError("down")] * 1000
    run_for(monitor, clocks, 300)
    state = read_state(tmp_path / "gate.json")
    assert state.delivery.pending >= 15 and "ConnectError" in state.delivery.error
    center.script = []
    run_for(monitor, clocks, 120)
    assert sorted(center.stored.values()) == list(range(1, len(center.stored) + 1))
    assert read_state(tmp_path / "gate.json").delivery.pending == 0


def test_retired_stops_the_loop_and_says_so(tmp_path):
    center, lab, clocks, notes = FakeCenter(), Lab(), Clocks(), []
    monitor = make_monitor(tmp_path, center, lab, clocks, notes, interval_s=1)
    center.script = [httpx.Response(403, json={"error": "retired", "detail": "x"})]
    stop = threading.Event()
    assert monitor.run(stop) == "retired"
    state = read_state(tmp_path / "gate.json")
    assert state.stopped == "retired" and not state.gate_open
    assert "retired" in state.reasons[0] and notes[-1][0] == "agent-kit stopped"


def test_cadences_by_group():
    lab = Lab()
    assert cadence_for(lab.unit("system", "system", "system.cpu"), 15).every_s == 15
    bw = cadence_for(lab.unit("bandwidth", "bandwidth", "bandwidth.down"), 15)
    assert bw.every_s == 1800 and bw.skip_in_call


def test_heartbeat_matches_the_center_contract():
    from agent_kit.loop.hysteresis import Gate

    gate = Gate(clock=lambda: NOW)
    hb = build_heartbeat({"network.link": CheckResult(
        id="network.link", group="network", status=Status.WARN, value="wifi", unit=None,
        warn=None, fail=None, message="x" * 900)}, gate.state, interval_s=15, measured_at=NOW)
    assert hb["verdict"] == "warn" and hb["gate"]["open"] is False
    check = hb["checks"][0]
    assert check["value"] is None and len(check["message"]) == 500   # strings are not numbers
    assert hb["measured_at"].endswith("+00:00")


def test_enrollment_repr_hides_the_secret():
    e = Enrollment(center_url="http://c", agent_id="a", secret="topsecret")
    assert "topsecret" not in repr(e)


def enrolled_home(tmp_path, center_url: str):
    """An agent state folder enrolled (secret "s" * 64) with ``center_url``, for the real CLI."""
    home = tmp_path / "home"
    home.mkdir()
    (home / "enrollment.json").write_text(json.dumps(
        {"center_url": center_url, "agent_id": "ws-x", "secret": "s" * 64,
         "heartbeat_interval_s": 15.0}))
    return home


def test_the_real_command_without_a_center_spools_locks_and_stops_cleanly(tmp_path):
    """`agent-kit monitor` with its center down from the start: local gate, heartbeats kept."""
    import os
    import signal
    import socket
    import subprocess
    import sys
    import time

    from agent_kit.loop.spool import Spool

    with socket.socket() as s:          # a port nobody listens on: the center is down
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    home = enrolled_home(tmp_path, f"http://127.0.0.1:{port}")
    policy = tmp_path / "lenient.toml"
    policy.write_text('[checks."system.cpu"]\nwarn = "none"\nfail = "none"\nmin_cores = 1\n'
                      '[checks."system.memory"]\nwarn = 0\nfail = 0\n'
                      '[checks."system.disk"]\nwarn = 0\nfail = 0\n'
                      '[checks."system.uptime"]\nwarn = "none"\n'
                      '[checks."system.power"]\nwarn = 0\nfail = 0\n')
    env = {**os.environ, "AGENT_KIT_HOME": str(home)}
    cmd = [sys.executable, "-m", "agent_kit.face.cli", "monitor", "--interval", "1", "--only",
           "system", "--policy", str(policy)]
    monitor = subprocess.Popen(cmd, env=env, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            state = read_state(home / "gate.json")
            if state is not None and state.delivery.pending >= 3:
                break
            time.sleep(0.2)
        assert state is not None and state.gate_open and state.delivery.error
        second = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)
        assert second.returncode == 2 and "already running" in second.stderr
        status = subprocess.run([sys.executable, "-m", "agent_kit.face.cli", "status"], env=env,
                                capture_output=True, text=True, timeout=60)
        assert status.returncode == 0 and "waiting to reach the center" in status.stdout
    finally:
        monitor.send_signal(signal.SIGTERM)
        _, err = monitor.communicate(timeout=30)
    assert monitor.returncode == 0, err
    assert "s" * 64 not in err                                  # the secret is never logged
    # stopped (logout, systemctl stop): at once "not running", not the last open gate
    stopped = read_state(home / "gate.json")
    assert stopped is not None and stopped.stopped == "stopped" and not stopped.gate_open
    status = subprocess.run([sys.executable, "-m", "agent_kit.face.cli", "status"], env=env,
                            capture_output=True, text=True, timeout=60)
    assert status.returncode == 2 and "was stopped" in status.stderr, status
    login = subprocess.run([sys.executable, "-m", "agent_kit.face.cli", "login", "--", "true"],
                           env=env, capture_output=True, text=True, timeout=60)
    assert login.returncode == 2 and "was stopped" in login.stderr, login
    with Spool(home / "spool.db", "ws-x") as spool:
        stats = spool.stats()
        assert stats.pending >= 3 and stats.pending == stats.next_seq - 1
        body = spool.oldest(1)[0].body
        assert body["seq"] == 1 and body["gate"]["open"] and body["checks"]


def test_call_detection_reads_the_room_units_real_results():
    """Contract with agent_kit.evaluate.audio: speech activity comes from its details."""
    from agent_kit.evaluate.audio import evaluate_room
    from agent_kit.loop.monitor import call_in_progress
    from probes.audio.capture import AudioReading

    policy = load_policy()
    quiet = AudioReading("pulse", 48000, 9.0, False, vad="webrtcvad", noise_dbfs_a=-60.0,
                         noise_dbfs=-58.0, noise_method="vad", noise_s=9.0)
    talking = AudioReading("pulse", 48000, 9.0, False, vad="webrtcvad", noise_dbfs_a=-60.0,
                           noise_dbfs=-58.0, noise_method="vad", noise_s=4.0, speech_s=5.0,
                           speech_heard=True, speech_level_dbfs=-26.0, speech_activity=0.55,
                           snr_db=32.0)
    broken = AudioReading(None, 48000, 0.0, False, problem="no device")
    assert call_in_progress(evaluate_room(quiet, policy)) is False
    assert call_in_progress(evaluate_room(talking, policy)) is True
    assert call_in_progress(evaluate_room(broken, policy)) is None


def test_an_interval_out_of_range_is_bad_usage_even_zero(tmp_path):
    """`--interval 0` used to mean "the center's default" silently; it is refused like -3."""
    import os
    import subprocess
    import sys

    home = enrolled_home(tmp_path, "http://127.0.0.1:9")
    env = {**os.environ, "AGENT_KIT_HOME": str(home)}
    for value in ("0", "-3", "3601"):
        run = subprocess.run([sys.executable, "-m", "agent_kit.face.cli", "monitor", "--interval",
                              value, "--only", "system"], env=env, capture_output=True,
                             text=True, timeout=60)
        assert run.returncode == 2, (value, run.stderr)
        assert run.stderr.count("\n") == 1 and "--interval must be between 1 and 3600" \
            in run.stderr, (value, run.stderr)


def test_a_damaged_spool_is_a_plain_exit_2_not_a_traceback(tmp_path):
    import os
    import subprocess
    import sys

    home = enrolled_home(tmp_path, "http://127.0.0.1:9")
    (home / "spool.db").write_text("not a database")
    run = subprocess.run([sys.executable, "-m", "agent_kit.face.cli", "monitor", "--only", "system"],
                         env={**os.environ, "AGENT_KIT_HOME": str(home)}, capture_output=True,
                         text=True, timeout=60)
    assert run.returncode == 2, run.stderr
    assert "Traceback" not in run.stderr
    assert f"the heartbeat spool {home / 'spool.db'} cannot be used" in run.stderr
    assert (home / "spool.db").read_text() == "not a database"  # left for IT, not replaced
