"""The monitor's traceroute: when it traces (full check, degraded path) and the child process.

The schedule is driven cycle by cycle with the clocks of test_monitor and the real path unit
on stand-in readings (the stream and the trace are recorded stand-ins there); the child process
is real: a real trace over loopback to a real reflector (CI runs as root, as the traceroute
tests say).
"""

from __future__ import annotations

import sys

import httpx

from agent_kit.center.reflector import start_reflector
from agent_kit.core.policy import load_policy
from agent_kit.core.results import CheckResult, Status
from agent_kit.loop import traceroute_child as monitor_hops
from agent_kit.loop.monitor import Monitor, MonitorDeps
from agent_kit.loop.spool import Spool
from agent_kit.run.units import ProbeContext, ProbeUnit, path_unit
from probes.network.path import PathReading
from probes.network.traceroute import HopReading, TracerouteReading
from tests.test_heartbeat_client import ENR, FakeCenter
from tests.test_monitor import Clocks
from tests.test_network_evaluate import reading as path_reading

REFLECTOR = ("127.0.0.1", 9)
CLEAN = TracerouteReading(target="127.0.0.1:9", reached=True, duration_s=0.1, hops=(
    HopReading(ttl=1, address="127.0.0.1", sent=5, received=5, rtt_median_ms=0.1,
               rtt_p95_ms=0.2, is_target=True),))


# the path stream the stand-in measures, by the jitter status a test asks for (default policy:
# warn from 20 ms, fail from 30 ms)
JITTER_MS = {Status.PASS: 1.0, Status.WARN: 25.0, Status.FAIL: 45.0}


class PathLab:
    """The real path unit on stand-in readings (a stream with the jitter as set), and a recorded
    traceroute."""

    def __init__(self) -> None:
        self.jitter = Status.PASS
        self.traces: list[float] = []

    def measure(self, host: str, port: int, **_: object) -> PathReading:
        assert (host, port) == REFLECTOR
        return path_reading(jitter=JITTER_MS[self.jitter])

    def run(self, ctx: ProbeContext) -> list[CheckResult]:
        assert ctx.policy.setting("path", "traceroute", None) is False   # never in-process
        return path_unit(measure=self.measure, trace=never_in_process).run(ctx)

    def monitor(self, tmp_path, clocks: Clocks, policy=None) -> Monitor:
        def trace(host: str, port: int, budget_s: float) -> TracerouteReading:
            assert (host, port) == REFLECTOR and budget_s > 0
            self.traces.append(clocks.mono)
            return CLEAN

        unit = ProbeUnit("path", self.run, timeout_s=2.0)
        from agent_kit.link.client import CenterClient

        client = CenterClient(ENR, transport=httpx.MockTransport(FakeCenter()),
                              clock=lambda: clocks.wall)
        deps = MonitorDeps(units=(unit,), policy=policy or load_policy(), enrollment=ENR,
                           context_factory=lambda pol: ProbeContext(policy=pol,
                                                                    reflector=REFLECTOR),
                           client=client, spool=Spool(tmp_path / "spool.db", ENR.agent_id),
                           notify=lambda *_: None, clock=lambda: clocks.wall,
                           monotonic=lambda: clocks.mono, state_file=tmp_path / "gate.json",
                           trace_hops=trace)
        return Monitor(deps, interval_s=15.0)


def never_in_process(*_: object, **__: object) -> TracerouteReading:
    raise AssertionError("the monitor traced in its own process")


def run_for(monitor: Monitor, clocks: Clocks, seconds: float) -> None:
    for _ in range(int(seconds / 15)):
        clocks.advance(15)
        monitor.cycle()


def test_traces_at_the_full_check_then_only_when_the_path_degrades(tmp_path) -> None:
    lab, clocks = PathLab(), Clocks()
    monitor = lab.monitor(tmp_path, clocks)
    monitor.cycle()                                     # the full check traces
    assert len(lab.traces) == 1
    hops = monitor.latest["network.hops"]
    assert hops.status is Status.PASS and hops.value == "clean"
    run_for(monitor, clocks, 600)                       # ten healthy minutes: bursts, no trace
    assert len(lab.traces) == 1
    assert monitor.latest["network.hops"] == hops       # the traced result stays current

    lab.jitter = Status.WARN                            # degrades: traced at the next burst
    run_for(monitor, clocks, 60)
    assert len(lab.traces) == 2
    run_for(monitor, clocks, 300)                       # still degraded: not every burst
    assert len(lab.traces) == 2
    run_for(monitor, clocks, 300)                       # ...but again after 10 minutes
    assert len(lab.traces) == 3
    lab.jitter = Status.PASS
    run_for(monitor, clocks, 120)
    lab.jitter = Status.FAIL                            # a new degradation: traced at once
    run_for(monitor, clocks, 60)
    assert len(lab.traces) == 4
    assert all(r.id != "network.hops" or "switched off" not in r.message
               for r in monitor.latest.values())


def test_a_policy_without_traceroute_never_traces(tmp_path) -> None:
    import dataclasses

    base = load_policy()
    policy = dataclasses.replace(base, settings={
        **base.settings, "path": {**base.settings.get("path", {}), "traceroute": False}})
    lab, clocks = PathLab(), Clocks()
    monitor = lab.monitor(tmp_path, clocks, policy)
    monitor.cycle()
    lab.jitter = Status.FAIL
    run_for(monitor, clocks, 120)
    assert lab.traces == []
    assert monitor.latest["network.hops"].status is Status.UNKNOWN
    assert "switched off" in monitor.latest["network.hops"].message


def test_the_child_process_traces_a_real_reflector() -> None:
    reflector = start_reflector("127.0.0.1", 0)
    try:
        host, port = reflector.address
        reading = monitor_hops.trace_hops(host, port, 2.0)
    finally:
        reflector.close()
    assert reading.problem is None, reading.problem
    assert reading.reached and reading.hops[-1].is_target
    assert reading.hops[-1].received >= 1 and reading.target == f"{host}:{port}"


def test_a_failing_child_is_a_problem_not_an_exception(monkeypatch) -> None:
    monkeypatch.setattr(monitor_hops, "child_command",
                        lambda: [sys.executable, "-c", "import sys; print('boom', "
                                 "file=sys.stderr); sys.exit(3)"])
    reading = monitor_hops.trace_hops("127.0.0.1", 9, 1.0)
    assert not reading.reached and reading.hops == ()
    assert "exited with 3: boom" in (reading.problem or "")
    monkeypatch.setattr(monitor_hops, "child_command",
                        lambda: [sys.executable, "-c", "print('not json')"])
    assert "unreadable" in (monitor_hops.trace_hops("127.0.0.1", 9, 1.0).problem or "")
