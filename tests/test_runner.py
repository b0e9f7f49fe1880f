"""The runner: concurrency, timeouts and failures become `unknown`, never a crash."""

from __future__ import annotations

import threading
import time

from agent_kit.core.levels import state_result
from agent_kit.core.policy import load_policy
from agent_kit.core.results import Status
from agent_kit.run.runner import run_checks
from agent_kit.run.units import ProbeContext, ProbeUnit

POLICY = load_policy()
CTX = ProbeContext(policy=POLICY)


def ok_unit(name="link", check_id="network.link", delay=0.0, exclusive=False, log=None):
    def run(ctx):
        if log is not None:
            log.append(("start", name, time.monotonic()))
        time.sleep(delay)
        if log is not None:
            log.append(("end", name, time.monotonic()))
        return [state_result(check_id, Status.PASS, "wired", ctx.policy, message="ok")]
    return ProbeUnit(name, run, timeout_s=5,
                     owns=(check_id,), exclusive=exclusive)


def test_exception_becomes_unknown_for_every_check_of_the_unit():
    def boom(ctx):
        raise RuntimeError("driver exploded")
    unit = ProbeUnit("vpn", boom, timeout_s=5, owns=("vpn.connected", "vpn.route"))
    report = run_checks([unit, ok_unit()], CTX)
    by_id = {c.id: c for c in report.checks}
    assert by_id["vpn.connected"].status is Status.UNKNOWN
    assert "driver exploded" in by_id["vpn.route"].message
    assert by_id["network.link"].status is Status.PASS
    # vpn.connected blocks on unknown in the default policy
    assert report.verdict is Status.FAIL


def test_timeout_becomes_unknown_and_does_not_wait_for_the_probe():
    stuck = threading.Event()

    def hang(ctx):
        stuck.wait(30)
        return []
    unit = ProbeUnit("system", hang, timeout_s=0.3, owns=("system.cpu",))
    t0 = time.monotonic()
    report = run_checks([unit], CTX)
    assert time.monotonic() - t0 < 2
    [cpu] = report.checks
    assert cpu.status is Status.UNKNOWN and "did not finish within 0.3 s" in cpu.message
    stuck.set()


def test_units_run_concurrently_and_exclusive_ones_alone():
    log: list = []
    units = [ok_unit("a", "network.link", 0.3, log=log),
             ok_unit("b", "system.cpu", 0.3, log=log),
             ok_unit("c", "bandwidth.down", 0.1, exclusive=True, log=log)]
    t0 = time.monotonic()
    report = run_checks(units, CTX)
    assert time.monotonic() - t0 < 0.55          # a and b overlapped
    start_c = next(t for ev, n, t in log if ev == "start" and n == "c")
    ends = [t for ev, n, t in log if ev == "end" and n in ("a", "b")]
    assert start_c >= max(ends)                  # c ran after both
    assert [c.id for c in report.checks] == ["system.cpu", "network.link", "bandwidth.down"]


def test_missing_check_from_an_evaluator_is_reported_unknown():
    unit = ProbeUnit("vpn",
                     lambda ctx: [state_result("vpn.connected", Status.PASS, True, ctx.policy,
                                               message="up")], timeout_s=5,
                     owns=("vpn.connected", "vpn.route"))
    by_id = {c.id: c for c in run_checks([unit], CTX).checks}
    assert by_id["vpn.route"].status is Status.UNKNOWN
