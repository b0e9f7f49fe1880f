"""Measure first, judge once: a degraded path gets the same words in a heartbeat as in
``agent-kit check``.

The same stand-in readings (a path stream above the policy's loss or jitter levels, and the
traceroute after it) go once through the path unit as ``agent-kit check`` runs it (the runner)
and once through the monitor (its traceroute comes from its child process, here a recorded
stand-in); the heartbeat the monitor delivers, and the results it is built from, must say what
the check says: status, message and fix of every path check.
"""

from __future__ import annotations

import dataclasses

import httpx
import pytest

from agent_kit.core.policy import Policy, load_policy
from agent_kit.core.results import CheckResult
from agent_kit.evaluate.path import CHECK_IDS
from agent_kit.link.client import CenterClient
from agent_kit.loop.monitor import Monitor, MonitorDeps
from agent_kit.loop.spool import Spool
from agent_kit.run.runner import run_checks
from agent_kit.run.units import ProbeContext, path_unit
from probes.network.path import PathReading
from probes.network.traceroute import TracerouteReading
from tests.test_heartbeat_client import ENR
from tests.test_hops_evaluate import CLEAN
from tests.test_hops_evaluate import reading as hop_reading
from tests.test_monitor import Clocks, RecordingCenter
from tests.test_monitor_hops import never_in_process
from tests.test_network_evaluate import reading as path_reading

REFLECTOR = ("198.51.100.2", 8751)

# name -> (the path stream, the traceroute after it or None for [path] traceroute = false,
#          text a fix must hold, text no fix may hold)
SCENARIOS: dict[str, tuple[PathReading, TracerouteReading | None, str, str | None]] = {
    "loss 5 %, the trace names the ISP": (
        path_reading(loss=5.0),
        hop_reading(("192.168.1.1", 5, 1.0), ("100.64.0.1", 3, 9.0), ("198.51.100.2", 3, 12.0)),
        "starts at your internet provider", "Weak Wi-Fi"),
    "jitter 45 ms, the trace names the home network": (
        path_reading(jitter=45.0),
        hop_reading(("192.168.1.1", 5, 61.0), ("100.64.0.1", 5, 65.0),
                    ("198.51.100.2", 5, 70.0)),
        "between this computer and your home router", "usually comes from Wi-Fi"),
    "loss and jitter, a clean trace names no segment": (
        path_reading(jitter=45.0, loss=5.0), hop_reading(*CLEAN), "Weak Wi-Fi", None),
    "loss and jitter, no traceroute": (
        path_reading(jitter=45.0, loss=5.0), None, "Weak Wi-Fi", None),
}


def policy_for(hops: TracerouteReading | None) -> Policy:
    base = load_policy()
    if hops is not None:
        return base
    path = {**base.settings.get("path", {}), "traceroute": False}
    return dataclasses.replace(base, settings={**base.settings, "path": path})


def said(results: dict[str, CheckResult]) -> dict[str, tuple[str, str, str | None]]:
    return {cid: (results[cid].status.value, results[cid].message, results[cid].fix)
            for cid in CHECK_IDS}


@pytest.mark.parametrize("name", SCENARIOS)
def test_the_heartbeat_says_what_the_check_says(tmp_path, name: str) -> None:
    path, hops, wanted, unwanted = SCENARIOS[name]
    policy = policy_for(hops)
    streams: list[tuple[str, int]] = []

    def stream(host: str, port: int, **_: object) -> PathReading:
        assert (host, port) == REFLECTOR
        streams.append((host, port))
        return path

    def traced(host: str, port: int, **_: object) -> TracerouteReading:
        assert (host, port) == REFLECTOR and hops is not None
        return hops

    # agent-kit check: the runner runs the path unit, which traces in-process
    report = run_checks([path_unit(measure=stream, trace=traced)],
                        ProbeContext(policy=policy, reflector=REFLECTOR))
    check = {r.id: r for r in report.checks}
    assert {check[c].status.value for c in ("network.loss", "network.jitter")} & {"fail"}
    fixes = [check[c].fix or "" for c in ("network.loss", "network.jitter", "network.mos")]
    assert any(wanted in f for f in fixes), fixes
    assert unwanted is None or not any(unwanted in f for f in fixes), fixes

    # agent-kit monitor: the same unit on the same readings, its trace from the child process
    clocks, center, child_traces = Clocks(), RecordingCenter(), []

    def child(host: str, port: int, budget_s: float) -> TracerouteReading:
        assert hops is not None and (host, port) == REFLECTOR and budget_s > 0
        child_traces.append(clocks.mono)
        return hops

    client = CenterClient(ENR, transport=httpx.MockTransport(center), clock=lambda: clocks.wall)
    monitor = Monitor(MonitorDeps(
        units=(path_unit(measure=stream, trace=never_in_process),), policy=policy,
        enrollment=ENR,
        context_factory=lambda pol: ProbeContext(policy=pol, reflector=REFLECTOR),
        client=client, spool=Spool(tmp_path / "spool.db", ENR.agent_id),
        notify=lambda *_: None, clock=lambda: clocks.wall, monotonic=lambda: clocks.mono,
        state_file=tmp_path / "gate.json", trace_hops=child), interval_s=15.0)

    monitor.cycle()                 # the full check: a fresh trace, judged with its burst
    assert len(child_traces) == (0 if hops is None else 1) and len(streams) == 2
    heard = [said(monitor.latest)]
    bodies = [center.bodies[-1]]
    for _ in range(4):              # the next bursts: degraded, within 10 minutes of the
        clocks.advance(15)          # trace, so the last trace stays the current one
        monitor.cycle()
    assert len(child_traces) == (0 if hops is None else 1)
    assert len(streams) > 2         # the unit measured (and judged) again
    heard.append(said(monitor.latest))
    bodies.append(center.bodies[-1])

    for results, body in zip(heard, bodies, strict=True):
        assert results == said(check)
        sent = {c["id"]: c for c in body["checks"]}
        assert {cid: (sent[cid]["status"], sent[cid]["message"]) for cid in CHECK_IDS} == \
            {cid: (check[cid].status.value, check[cid].message) for cid in CHECK_IDS}
        # a check that closes the gate carries its fix into the heartbeat, word for word
        blocking = [check[cid] for cid in CHECK_IDS if check[cid].blocks]
        assert blocking and not body["gate"]["open"]
        for result in blocking:
            assert result.fix
            assert sum(result.fix in reason for reason in body["gate"]["reasons"]) == 1, (
                result.id, body["gate"]["reasons"])
        if unwanted is not None:
            assert not any(unwanted in reason for reason in body["gate"]["reasons"])
