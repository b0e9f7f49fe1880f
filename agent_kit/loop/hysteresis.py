"""The login gate: may this workstation take calls right now? A state machine with hysteresis.

Pure: no I/O, time comes from an injectable clock (unix seconds, so a suspended laptop's sleep
counts as time passing). The monitor feeds it every check result it gets; ``agent-kit status``
and ``agent-kit login`` read the state it produces (through the state file).

Rules (keys of the policy section ``gate``, documented in docs/policy.md):

- A result is *bad* when it blocks readiness on its own (``CheckResult.blocks``: a fail, or an
  unknown whose policy says unknown blocks). A warn never closes the gate.
- Mid-shift a bad check closes the gate only when it persists: ``fail_to_block`` bad samples
  among its last ``window`` samples (the Twilio in-call monitor's "3 of the last 5"), or an
  unbroken run of bad samples spanning at least ``block_after_s`` seconds. One brief crossing
  never closes it.
- A closed check reopens only after ``pass_to_open`` consecutive good samples spanning at least
  ``reopen_after_s`` seconds; its history then starts afresh.
- A fresh *full* check (every unit) is required before the first login of a shift. A shift
  starts when the gate is created (the monitor starts) and again after a gap longer than
  ``shift_gap_s`` between samples (the machine slept, the monitor was stopped). Until that full
  check has finished the gate is closed; its bad results close the gate at once (no hysteresis:
  it is the onboarding decision) and then need a persistent recovery like any other.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from agent_kit.core.checks import BY_ID
from agent_kit.core.i18n import M_, Msg, render, verbatim
from agent_kit.core.policy import Policy
from agent_kit.core.results import CheckResult


@dataclass(frozen=True)
class GateConfig:
    """Hysteresis settings; ``from_policy`` reads the policy's ``gate`` section."""

    window: int = 5
    fail_to_block: int = 3
    pass_to_open: int = 3
    block_after_s: float = 15.0
    reopen_after_s: float = 30.0
    shift_gap_s: float = 3600.0

    def __post_init__(self) -> None:
        if self.window < 1 or self.pass_to_open < 1 or self.fail_to_block < 1:
            raise ValueError("gate.window, gate.fail_to_block and gate.pass_to_open must be >= 1")
        if self.fail_to_block > self.window:
            raise ValueError(f"gate.fail_to_block ({self.fail_to_block}) cannot exceed "
                             f"gate.window ({self.window})")
        if self.block_after_s < 0 or self.reopen_after_s < 0 or self.shift_gap_s <= 0:
            raise ValueError("gate durations must be positive")

    @classmethod
    def from_policy(cls, policy: Policy) -> GateConfig:
        d = cls()
        return cls(
            window=int(policy.setting("gate", "window", d.window)),
            fail_to_block=int(policy.setting("gate", "fail_to_block", d.fail_to_block)),
            pass_to_open=int(policy.setting("gate", "pass_to_open", d.pass_to_open)),
            block_after_s=float(policy.setting("gate", "block_after_s", d.block_after_s)),
            reopen_after_s=float(policy.setting("gate", "reopen_after_s", d.reopen_after_s)),
            shift_gap_s=float(policy.setting("gate", "shift_gap_s", d.shift_gap_s)),
        )


@dataclass(frozen=True)
class Blocker:
    """One check holding the gate closed, in plain words."""

    check_id: str
    message: str
    fix: str | None
    since: float
    # the message and the fix as message ids + parameters, when the result had them
    msg: Msg | None = None
    fix_msg: Msg | None = None


@dataclass(frozen=True)
class GateState:
    """What ``status``, ``login`` and the heartbeat show."""

    open: bool
    since: float                        # unix seconds of the last open/closed change
    reasons: tuple[str, ...]            # plain words, one per cause; empty when open
    blockers: tuple[Blocker, ...]       # checks holding it closed
    watching: tuple[str, ...]           # check ids failing now but not (yet) for long enough
    awaiting_full_check: bool
    full_check_at: float | None         # when the last full check of this shift finished
    # the watching checks with their words (``since``: when they started failing)
    watched: tuple[Blocker, ...] = ()
    # the reason that is no check (a full check is due), as a message id + parameters
    shift_reason: Msg | None = None
    # the reasons as message ids + parameters, index for index: rendered in a reader's language
    reason_msgs: tuple[Msg, ...] = ()


@dataclass
class _Track:
    """History of one check."""

    samples: deque[bool]
    bad_since: float | None = None
    good_since: float | None = None
    good_run: int = 0
    blocking_since: float | None = None
    message: str = ""
    fix: str | None = None
    msg: Msg | None = None
    fix_msg: Msg | None = None


@dataclass
class Gate:
    """Feed it results with ``observe``; read ``state``. Not thread-safe (one monitor loop)."""

    config: GateConfig = field(default_factory=GateConfig)
    clock: Callable[[], float] = time.time
    _tracks: dict[str, _Track] = field(default_factory=dict, init=False)
    _awaiting_full: bool = field(default=True, init=False)
    _shift_reason: Msg = field(default_factory=lambda: verbatim(""), init=False)
    _full_check_at: float | None = field(default=None, init=False)
    _last_sample_at: float | None = field(default=None, init=False)
    _open: bool = field(default=False, init=False)
    _since: float = field(default=0.0, init=False)

    def __post_init__(self) -> None:
        self._since = self.clock()
        self._shift_reason = M_("The first full check of the shift has not finished yet.")

    def require_full_check(self, reason: Msg | str) -> GateState:
        """Start a new shift: the gate stays closed until a full check finishes."""
        self._awaiting_full = True
        self._shift_reason = reason if isinstance(reason, Msg) else verbatim(reason)
        return self._update(self.clock())

    def reconfigure(self, config: GateConfig) -> GateState:
        """New hysteresis settings (a new policy from the center), without a new shift: each
        check keeps its latest samples, as many as the new window holds."""
        self.config = config
        for track in self._tracks.values():
            track.samples = deque(track.samples, maxlen=config.window)
        return self._update(self.clock())

    def observe(self, results: Iterable[CheckResult], *, full: bool = False,
                at: float | None = None) -> GateState:
        """Take one sample of each result's check; ``full`` marks a run of every unit."""
        now = self.clock() if at is None else at
        if (self._last_sample_at is not None
                and now - self._last_sample_at > self.config.shift_gap_s):
            minutes = (now - self._last_sample_at) / 60
            self._awaiting_full = True
            self._shift_reason = M_(
                "No measurement for {minutes:.0f} minutes (the computer slept or the monitor "
                "stopped): a fresh full check is needed.", minutes=minutes)
        self._last_sample_at = now
        immediate = full and self._awaiting_full
        for result in results:
            self._sample(result, now, immediate=immediate)
        if full:
            self._awaiting_full = False
            self._full_check_at = now
        return self._update(now)

    @property
    def state(self) -> GateState:
        return self._snapshot()

    # ---------------------------------------------------------------- internals

    def _sample(self, result: CheckResult, now: float, *, immediate: bool) -> None:
        cfg = self.config
        track = self._tracks.get(result.id)
        if track is None:
            track = self._tracks[result.id] = _Track(samples=deque(maxlen=cfg.window))
        bad = result.blocks
        track.samples.append(bad)
        if bad:
            track.good_run, track.good_since = 0, None
            if track.bad_since is None:
                track.bad_since = now
            track.message, track.fix = result.message, result.fix
            track.msg, track.fix_msg = result.msg, result.fix_msg
            if track.blocking_since is None and (
                    immediate
                    or sum(track.samples) >= cfg.fail_to_block
                    or now - track.bad_since >= cfg.block_after_s):
                track.blocking_since = now
            return
        track.bad_since = None
        track.good_run += 1
        if track.good_since is None:
            track.good_since = now
        if track.blocking_since is not None and (
                track.good_run >= cfg.pass_to_open
                and now - track.good_since >= cfg.reopen_after_s):
            track.blocking_since = None
            track.samples.clear()   # recovered: the old failures no longer count

    def _update(self, now: float) -> GateState:
        state = self._snapshot()
        if state.open != self._open:
            self._open, self._since = state.open, now
            state = self._snapshot()
        return state

    def _snapshot(self) -> GateState:
        blockers = tuple(
            Blocker(cid, t.message, t.fix, t.blocking_since, t.msg, t.fix_msg)
            for cid, t in sorted(self._tracks.items())
            if t.blocking_since is not None
        )
        watched = tuple(Blocker(cid, t.message, t.fix, t.bad_since, t.msg, t.fix_msg)
                        for cid, t in sorted(self._tracks.items())
                        if t.blocking_since is None and t.bad_since is not None)
        watching = tuple(w.check_id for w in watched)
        reasons = [self._shift_reason] if self._awaiting_full else []
        reasons += [blocker_message(b) for b in blockers]
        is_open = not reasons
        return GateState(open=is_open, since=self._since,
                         reasons=tuple(render(r) for r in reasons), blockers=blockers,
                         watching=watching, awaiting_full_check=self._awaiting_full,
                         full_check_at=self._full_check_at, reason_msgs=tuple(reasons),
                         watched=watched,
                         shift_reason=self._shift_reason if self._awaiting_full else None)


def blocker_message(blocker: Blocker) -> Msg:
    """``"Jitter (RFC 3550): 45 ms ... Fix: ..."`` as a message (rendered by its reader)."""
    spec = BY_ID.get(blocker.check_id)
    title: Msg | str = M_(spec.title) if spec else blocker.check_id
    message = blocker.msg if blocker.msg is not None else verbatim(blocker.message)
    text = M_("{title}: {message}", title=title, message=message)
    if blocker.fix:
        fix = blocker.fix_msg if blocker.fix_msg is not None else verbatim(blocker.fix)
        # one space before "Fix:" in every language (not join's, which Japanese writes without
        # one): ``face.login.split_fix`` finds the fix by it
        return Msg("{reason} {fix}", {"reason": text, "fix": M_("Fix: {fix}", fix=fix)})
    return text


def describe_blocker(blocker: Blocker) -> str:
    """``"Jitter (RFC 3550): 45 ms ... Fix: ..."`` in the current language."""
    return render(blocker_message(blocker))
