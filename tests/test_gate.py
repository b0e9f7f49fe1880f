"""The gate's hysteresis: brief crossings never block, persistent ones do, recovery must persist."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent_kit.core.policy import load_policy
from agent_kit.core.results import CheckResult, Status
from agent_kit.loop.hysteresis import Gate, GateConfig

CFG = GateConfig(window=5, fail_to_block=3, pass_to_open=3, block_after_s=15.0,
                 reopen_after_s=30.0, shift_gap_s=3600.0)


class Clock:
    def __init__(self, t: float = 1_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def result(status: Status, check_id: str = "network.jitter", unknown_blocks: bool = False):
    return CheckResult(id=check_id, group=check_id.split(".")[0], status=status,
                       value=45.0 if status is Status.FAIL else 4.0, unit="ms", warn=20.0,
                       fail=30.0, message=f"jitter {status.value}",
                       fix="Use a wired connection." if status is not Status.PASS else None,
                       unknown_blocks=unknown_blocks)


GOOD, BAD = result(Status.PASS), result(Status.FAIL)


def opened_gate(clock: Clock) -> Gate:
    gate = Gate(CFG, clock)
    state = gate.observe([GOOD], full=True)
    assert state.open
    return gate


def feed(gate: Gate, clock: Clock, seq: list[tuple[float, bool]]) -> list[bool]:
    """Advance the clock by dt before each sample; return the gate's open flag after each."""
    opens = []
    for dt, bad in seq:
        clock.t += dt
        opens.append(gate.observe([BAD if bad else GOOD]).open)
    return opens


def test_closed_until_the_first_full_check_of_the_shift():
    clock = Clock()
    gate = Gate(CFG, clock)
    assert not gate.state.open
    assert gate.state.awaiting_full_check
    assert "full check" in gate.state.reasons[0]
    # partial runs, however good, do not open it
    assert not gate.observe([GOOD]).open
    state = gate.observe([GOOD], full=True)
    assert state.open and state.reasons == () and state.full_check_at == clock.t


def test_a_failing_full_check_closes_at_once_and_recovery_must_persist():
    clock = Clock()
    gate = Gate(CFG, clock)
    state = gate.observe([BAD, result(Status.PASS, "system.cpu")], full=True)
    assert not state.open
    assert [b.check_id for b in state.blockers] == ["network.jitter"]
    assert "Jitter" in state.reasons[0] and "wired" in state.reasons[0]
    # two good samples 15 s apart: not enough (3 needed, spanning 30 s)
    assert feed(gate, clock, [(15, False), (15, False)]) == [False, False]
    # the third, 30 s after the first good one, reopens it
    assert feed(gate, clock, [(15, False)]) == [True]


def test_one_brief_crossing_does_not_block():
    clock = Clock()
    gate = opened_gate(clock)
    assert feed(gate, clock, [(15, True), (15, False), (15, False)]) == [True, True, True]
    assert gate.state.watching == ()


def test_a_failure_is_watched_before_it_blocks():
    clock = Clock()
    gate = opened_gate(clock)
    clock.t += 1
    state = gate.observe([BAD])
    assert state.open and state.watching == ("network.jitter",)


def test_three_of_the_last_five_samples_block():
    clock = Clock()
    gate = opened_gate(clock)
    # fast samples (1 s apart): the 15 s rule cannot fire, only the count
    opens = feed(gate, clock, [(1, True), (1, False), (1, True), (1, False), (1, True)])
    assert opens == [True, True, True, True, False]


def test_a_failure_persisting_15_s_blocks_even_with_slow_samples():
    clock = Clock()
    gate = opened_gate(clock)
    assert feed(gate, clock, [(60, True), (14, True)]) == [True, True]   # 14 s: not yet
    assert feed(gate, clock, [(1, True)]) == [False]                     # 15 s: closed
    state = gate.state
    assert state.blockers[0].since == clock.t and state.since == clock.t


def test_a_bad_sample_during_recovery_restarts_it():
    clock = Clock()
    gate = opened_gate(clock)
    feed(gate, clock, [(1, True), (1, True), (1, True)])
    assert not gate.state.open
    assert feed(gate, clock, [(15, False), (15, False), (1, True), (15, False), (15, False)]) \
        == [False] * 5
    assert feed(gate, clock, [(15, False)]) == [True]


def test_unknown_blocks_only_when_the_policy_says_so():
    clock = Clock()
    gate = opened_gate(clock)
    lenient = result(Status.UNKNOWN, unknown_blocks=False)
    strict = result(Status.UNKNOWN, unknown_blocks=True)
    for _ in range(5):
        clock.t += 15
        assert gate.observe([lenient]).open
    for _ in range(3):
        clock.t += 1
        state = gate.observe([strict])
    assert not state.open


def test_warn_never_closes():
    clock = Clock()
    gate = opened_gate(clock)
    for _ in range(10):
        clock.t += 15
        assert gate.observe([result(Status.WARN)]).open


def test_a_long_gap_starts_a_new_shift():
    clock = Clock()
    gate = opened_gate(clock)
    clock.t += 2 * 3600
    state = gate.observe([GOOD])
    assert not state.open and state.awaiting_full_check
    assert "120 minutes" in state.reasons[0]
    clock.t += 15
    assert gate.observe([GOOD], full=True).open


def test_config_from_the_default_policy_and_bad_values():
    cfg = GateConfig.from_policy(load_policy())
    assert (cfg.window, cfg.fail_to_block, cfg.pass_to_open) == (5, 3, 3)
    assert cfg.block_after_s == 15 and cfg.reopen_after_s == 30
    with pytest.raises(ValueError, match="cannot exceed"):
        GateConfig(window=2, fail_to_block=3)


# ---------------------------------------------------------------- properties

dts = st.floats(min_value=0.5, max_value=20.0)


@st.composite
def brief_crossings(draw):
    """Signals whose bad samples are isolated (a good one right after, 1 s later) and rare
    enough that no 5-sample window holds 3 of them: they cross the threshold only briefly."""
    seq: list[tuple[float, bool]] = []
    for _ in range(draw(st.integers(1, 12))):
        seq += [(draw(dts), False) for _ in range(draw(st.integers(2, 5)))]
        seq += [(draw(dts), True), (1.0, False)]
    return seq


@settings(max_examples=200, deadline=None)
@given(brief_crossings())
def test_property_brief_crossings_never_block(seq):
    clock = Clock()
    gate = opened_gate(clock)
    assert all(feed(gate, clock, seq))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(dts, st.booleans()), max_size=30), st.integers(3, 8), dts)
def test_property_a_failure_that_stays_blocks(prefix, n_bad, dt):
    clock = Clock()
    gate = opened_gate(clock)
    feed(gate, clock, prefix)
    opens = feed(gate, clock, [(dt, True)] * n_bad)
    assert not opens[-1]          # 3 consecutive bad samples always close it
    assert not any(feed(gate, clock, [(dt, True)] * 3))   # and it stays closed


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(dts, st.booleans()), min_size=1, max_size=60))
def test_property_every_change_is_justified(seq):
    """Any signal: a close follows a persistent failure, an open a persistent recovery."""
    clock = Clock()
    gate = opened_gate(clock)
    history: list[tuple[float, bool]] = []   # (time, bad)
    was_open = True
    for dt, bad in seq:
        clock.t += dt
        history.append((clock.t, bad))
        now_open = gate.observe([BAD if bad else GOOD]).open
        if was_open and not now_open:
            last5 = [b for _, b in history[-5:]]
            run_start = next((t for t, b in reversed(history) if not b), None)
            bad_run = [t for t, b in history if b and (run_start is None or t > run_start)]
            assert bad and (sum(last5) >= 3 or clock.t - bad_run[0] >= 15.0)
        if not was_open and now_open:
            last_bad = max((i for i, (_, b) in enumerate(history) if b), default=-1)
            good_run = history[last_bad + 1:]
            assert len(good_run) >= 3 and good_run[-1][0] - good_run[0][0] >= 30.0
        was_open = now_open


def test_flapping_signal_closes_once_and_does_not_flap():
    """A signal bad every other sample is persistently bad: one close, no reopening."""
    clock = Clock()
    gate = opened_gate(clock)
    opens = feed(gate, clock, [(5, i % 2 == 0) for i in range(40)])
    changes = sum(1 for a, b in zip([True, *opens], opens, strict=False) if a != b)
    assert changes == 1 and not opens[-1]
