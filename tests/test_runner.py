"""The runner: concurrency, timeouts and failures become `unknown`, never a crash."""

from __future__ import annotations

import threading

from agent_kit.core.levels import state_result
from agent_kit.core.policy import load_policy
from agent_kit.core.results import Status
from agent_kit.run.runner import run_checks
from agent_kit.run.units import ProbeContext, ProbeUnit

POLICY = load_policy()
CTX = ProbeContext(policy=POLICY)


def ok_unit(name="link", check_id="network.link", exclusive=False, log=None, meet=None):
    """A unit that passes its check; ``log`` gets its ("start", name) and ("end", name) in the
    order they happen; ``meet`` (a barrier) holds it until the other parties are running too."""
    def run(ctx):
        if log is not None:
            log.append(("start", name))
        if meet is not None:
            meet.wait()      # broken (raises) if the others never run alongside this one
        if log is not None:
            log.append(("end", name))
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
    stuck, returned = threading.Event(), threading.Event()

    def hang(ctx):
        stuck.wait(30)
        returned.set()
        return []
    unit = ProbeUnit("system", hang, timeout_s=0.3, owns=("system.cpu",))
    report = run_checks([unit], CTX)
    # the report came while the probe was still stuck: the runner did not wait for it
    assert not returned.is_set()
    [cpu] = report.checks
    assert cpu.status is Status.UNKNOWN and "did not finish within 0.3 s" in cpu.message
    stuck.set()


def test_units_run_concurrently_and_exclusive_ones_alone():
    log: list = []
    # a and b each wait for the other at a barrier: both can finish only if they run at once
    both = threading.Barrier(2, timeout=4)
    units = [ok_unit("a", "network.link", log=log, meet=both),
             ok_unit("b", "system.cpu", log=log, meet=both),
             ok_unit("c", "bandwidth.down", exclusive=True, log=log)]
    report = run_checks(units, CTX)
    assert {c.id: c.status for c in report.checks} == {
        "system.cpu": Status.PASS, "network.link": Status.PASS, "bandwidth.down": Status.PASS}
    # a and b overlapped: each started before the other ended
    for me, other in (("a", "b"), ("b", "a")):
        assert log.index(("start", me)) < log.index(("end", other)), log
    # c ran alone, after both had ended
    assert log.index(("start", "c")) > max(log.index(("end", "a")), log.index(("end", "b")))
    assert log.index(("end", "c")) == len(log) - 1
    assert [c.id for c in report.checks] == ["system.cpu", "network.link", "bandwidth.down"]


def test_missing_check_from_an_evaluator_is_reported_unknown():
    unit = ProbeUnit("vpn",
                     lambda ctx: [state_result("vpn.connected", Status.PASS, True, ctx.policy,
                                               message="up")], timeout_s=5,
                     owns=("vpn.connected", "vpn.route"))
    by_id = {c.id: c for c in run_checks([unit], CTX).checks}
    assert by_id["vpn.route"].status is Status.UNKNOWN
