"""Judging readings against the policy: golden cases and the monotonic property."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent_kit.core.checks import CATALOGUE
from agent_kit.core.levels import judge_level
from agent_kit.core.policy import load_policy
from agent_kit.core.results import STATUS_RANK, CheckResult, Status, overall_verdict
from agent_kit.evaluate.link import evaluate_link
from agent_kit.evaluate.system import evaluate_system
from probes.system import LinkReading, PowerReading, SystemReading

POLICY = load_policy()
NUMERIC = [s for s in CATALOGUE if s.has_thresholds]


@pytest.mark.parametrize(
    ("value", "warn", "fail", "direction", "expected"),
    [
        (29.9, 20, 30, "higher_is_worse", Status.WARN),
        (30.0, 20, 30, "higher_is_worse", Status.FAIL),   # reaching the level counts
        (19.99, 20, 30, "higher_is_worse", Status.PASS),
        (3.5, 4.0, 3.5, "lower_is_worse", Status.FAIL),
        (3.9, 4.0, 3.5, "lower_is_worse", Status.WARN),
        (4.41, 4.0, 3.5, "lower_is_worse", Status.PASS),
        (1000, None, 30, "higher_is_worse", Status.FAIL),
        (1000, 20, None, "higher_is_worse", Status.WARN),
        (-1e9, None, None, "lower_is_worse", Status.PASS),
    ],
)
def test_judge_level_golden(value, warn, fail, direction, expected):
    assert judge_level(value, warn, fail, direction) is expected


@given(spec_index=st.integers(0, len(NUMERIC) - 1),
       a=st.floats(-1e6, 1e6, allow_nan=False), b=st.floats(-1e6, 1e6, allow_nan=False))
def test_a_worse_reading_never_gives_a_better_verdict(spec_index, a, b):
    spec = NUMERIC[spec_index]
    rule = POLICY.check(spec.id)
    better, worse = sorted((a, b), reverse=spec.direction == "lower_is_worse")
    s_better = judge_level(better, rule.warn, rule.fail, spec.direction)
    s_worse = judge_level(worse, rule.warn, rule.fail, spec.direction)
    assert STATUS_RANK[s_worse] >= STATUS_RANK[s_better], (spec.id, better, worse)


def _result(status: Status, blocks_unknown: bool = False) -> CheckResult:
    return CheckResult("system.cpu", "system", status, None, None, None, None, "m",
                       unknown_blocks=blocks_unknown)


@given(st.lists(st.sampled_from(list(Status)), min_size=1, max_size=8), st.booleans(),
       st.integers(0, 7), st.sampled_from(list(Status)))
def test_overall_verdict_is_monotonic(statuses, blocks, index, replacement):
    results = [_result(s, blocks) for s in statuses]
    i = index % len(results)
    before = overall_verdict(results)
    rank = {Status.PASS: 0, Status.UNKNOWN: 1, Status.WARN: 1, Status.FAIL: 2}
    if blocks:
        rank[Status.UNKNOWN] = 2
    changed = list(results)
    changed[i] = _result(replacement, blocks)
    after = overall_verdict(changed)
    order = {Status.PASS: 0, Status.WARN: 1, Status.FAIL: 2}
    if rank[replacement] >= rank[results[i].status]:
        assert order[after] >= order[before]


def test_overall_verdict_golden():
    assert overall_verdict([_result(Status.PASS)]) is Status.PASS
    assert overall_verdict([_result(Status.PASS), _result(Status.WARN)]) is Status.WARN
    assert overall_verdict([_result(Status.UNKNOWN)]) is Status.WARN
    assert overall_verdict([_result(Status.UNKNOWN, blocks_unknown=True)]) is Status.FAIL
    assert overall_verdict([_result(Status.WARN), _result(Status.FAIL)]) is Status.FAIL


GOOD = SystemReading(cpu_load_pct=12.0, logical_cores=8, physical_cores=4,
                     memory_available_mb=6000, memory_total_mb=16000, disk_free_gb=120,
                     disk_path="/home", uptime_days=2,
                     power=PowerReading(False, None, None, None))


def _by_id(results):
    return {r.id: r for r in results}


def test_system_good_workstation_passes_everything():
    results = _by_id(evaluate_system(GOOD, POLICY))
    assert {r.status for r in results.values()} == {Status.PASS}
    assert results["system.cpu"].value == 12.0
    assert all(r.fix is None for r in results.values())


def test_system_problems_fail_with_fixes():
    bad = dataclasses.replace(
        GOOD, cpu_load_pct=97, memory_available_mb=300, disk_free_gb=0.5, uptime_days=45,
        power=PowerReading(True, True, 15, 20))
    results = _by_id(evaluate_system(bad, POLICY))
    for cid in ("system.cpu", "system.memory", "system.disk", "system.power"):
        assert results[cid].status is Status.FAIL, cid
        assert results[cid].fix, cid
    assert results["system.uptime"].status is Status.WARN
    assert "battery" in results["system.power"].message


def test_system_too_few_cores_fails_even_when_idle():
    results = _by_id(evaluate_system(dataclasses.replace(GOOD, logical_cores=1), POLICY))
    assert results["system.cpu"].status is Status.FAIL
    assert "core" in results["system.cpu"].message


def test_plugged_in_laptop_passes_power():
    reading = dataclasses.replace(GOOD, power=PowerReading(True, False, 5, None))
    assert _by_id(evaluate_system(reading, POLICY))["system.power"].status is Status.PASS


@pytest.mark.parametrize(("kind", "expected"), [("wired", Status.PASS), ("wifi", Status.WARN),
                                                ("cellular", Status.FAIL),
                                                ("virtual", Status.WARN)])
def test_link_kinds(kind, expected):
    [result] = evaluate_link(LinkReading("if0", kind, "test", 1000), POLICY)
    assert result.status is expected
    assert (result.fix is None) == (expected is Status.PASS)


def test_no_default_route_is_unknown_with_reason():
    [result] = evaluate_link(LinkReading(None, None, "no route", None), POLICY)
    assert result.status is Status.UNKNOWN and "no route" in result.message
