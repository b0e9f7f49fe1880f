"""Run probe units concurrently, each with a timeout; never let one failure stop the rest.

An exception or a timeout becomes an ``unknown`` result, with the reason, for every check the
unit owns. Units marked ``exclusive`` run one at a time after the concurrent ones.

A group that could not run (none of the measurements the policy judges was made, e.g. the path
test with no center) is a ``NotChecked`` of the report: the verdict is then FAIL whatever the
policy's ``unknown_blocks`` say check by check, because a workstation whose network was never
tested is not known to be ready. A computer that is not
enrolled gets one ``RunNotice`` saying so, with what to do, instead of the same reason in
every check that needs the center.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime

from agent_kit import __version__
from agent_kit.core.checks import BY_ID, CATALOGUE
from agent_kit.core.i18n import _
from agent_kit.core.levels import unknown_result
from agent_kit.core.policy import Policy
from agent_kit.core.results import (
    CheckReport,
    CheckResult,
    NotChecked,
    RunNotice,
    Status,
    overall_verdict,
)
from agent_kit.run.units import ProbeContext, ProbeUnit

# Called with ("start"|"done", unit name, seconds so far, results or None).
ProgressFn = Callable[[str, str, float, list[CheckResult] | None], None]


def _quiet(_event: str, _unit: str, _elapsed: float, _results: list[CheckResult] | None) -> None:
    return None


def run_checks(units: Iterable[ProbeUnit], ctx: ProbeContext, *,
               progress: ProgressFn = _quiet, clock: Callable[[], float] = time.monotonic,
               now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> CheckReport:
    """Run every unit and return the report, checks in catalogue order."""
    units = list(units)
    started_at, t0 = now(), clock()
    results: list[CheckResult] = []
    concurrent = [u for u in units if not u.exclusive]
    results += _run_batch(concurrent, ctx, progress, clock, t0)
    for unit in (u for u in units if u.exclusive):
        results += _run_batch([unit], ctx, progress, clock, t0)
    order = {spec.id: i for i, spec in enumerate(CATALOGUE)}
    ordered = tuple(sorted(results, key=lambda r: order.get(r.id, len(order))))
    notice = not_enrolled_notice() if ctx.not_enrolled and any(
        u.needs_center for u in units) else None
    gaps = not_checked(units, ordered, ctx.policy, not_enrolled=notice is not None)
    return CheckReport(
        verdict=Status.FAIL if gaps else overall_verdict(ordered), policy_name=ctx.policy.name,
        policy_version=ctx.policy.version,
        started_at=started_at.isoformat(timespec="seconds"),
        duration_s=clock() - t0, checks=ordered, version=__version__,
        not_checked=gaps, not_enrolled=notice,
    )


def not_enrolled_notice() -> RunNotice:
    """What a computer that is not enrolled is told, once, at the top of the report."""
    return RunNotice(
        message=_("This computer is not set up with your contact center yet, so the "
                  "connection to the center and the internet speed cannot be checked."),
        fix=_("Ask IT for your setup code and the center's address, then run: agent-kit "
              "enroll --center ADDRESS --token - (it asks for the code). Then check again."))


def relied_on(check_id: str, policy: Policy) -> bool:
    """Whether the policy judges this check: a check with levels where both are "none"
    can never warn or fail, so nothing is lost when it cannot be measured."""
    spec = BY_ID.get(check_id)
    if spec is None:
        return False
    rule = policy.check(check_id)
    return not (spec.has_thresholds and rule.warn is None and rule.fail is None)


def not_checked(units: Iterable[ProbeUnit], results: Iterable[CheckResult], policy: Policy,
                *, not_enrolled: bool = False) -> tuple[NotChecked, ...]:
    """The groups that could not run: none of the measurements the policy judges by levels
    (times, loss, speeds, levels: the group's point) was made, or, in a group judged by
    states only (vpn), none of its checks. A state beside them (cable or Wi-Fi, which hop)
    does not make a network group checked; one unknown state in a group whose measurements
    were made is the policy's ``unknown_blocks`` to judge. One entry per unit that measured
    nothing in such a group. ``not_enrolled``: the units needing a center point to the notice
    instead of repeating its reason."""
    units = list(units)
    by_id = {r.id: r for r in results}
    gaps: list[NotChecked] = []
    for group in dict.fromkeys(u.group for u in units):
        mine = [by_id[cid] for u in units if u.group == group for cid in u.check_ids
                if cid in by_id and relied_on(cid, policy)]
        levels = [r for r in mine if BY_ID[r.id].has_thresholds]
        decisive = levels or mine
        if not decisive or any(r.status is not Status.UNKNOWN for r in decisive):
            continue
        silent = [(u, [by_id[cid] for cid in u.check_ids if cid in by_id])
                  for u in units if u.group == group]
        silent = [(u, owned) for u, owned in silent
                  if owned and all(r.status is Status.UNKNOWN for r in owned)]
        if not silent:   # a unit measured a state beside them: name the decisive checks
            owner = next(u for u in units if decisive[0].id in u.check_ids)
            silent = [(owner, decisive)]
        for unit, owned in silent:
            reason = (_("not set up with your contact center yet (see above)")
                      if not_enrolled and unit.needs_center else owned[0].message)
            gaps.append(NotChecked(group=group, unit=unit.name,
                                   check_ids=tuple(r.id for r in owned), reason=reason))
    return tuple(gaps)


def _run_batch(units: list[ProbeUnit], ctx: ProbeContext, progress: ProgressFn,
               clock: Callable[[], float], t0: float) -> list[CheckResult]:
    # Daemon threads: a probe stuck in a driver call must not keep the program alive.
    done: queue.Queue[tuple[ProbeUnit, list[CheckResult] | None, str | None]] = queue.Queue()

    def work(unit: ProbeUnit) -> None:
        try:
            done.put((unit, unit.run(ctx), None))
        except Exception as exc:  # noqa: BLE001 - any probe failure becomes 'unknown'
            done.put((unit, None, f"{type(exc).__name__}: {exc}"))

    deadline: dict[str, float] = {}
    for unit in units:
        progress("start", unit.name, clock() - t0, None)
        deadline[unit.name] = clock() + unit.timeout_s
        threading.Thread(target=work, args=(unit,), name=f"probe-{unit.name}",
                         daemon=True).start()
    pending = {u.name: u for u in units}
    out: list[CheckResult] = []
    while pending:
        wait = max(0.0, min(deadline[n] for n in pending) - clock())
        try:
            unit, res, error = done.get(timeout=wait)
        except queue.Empty:
            for name in [n for n in pending if deadline[n] <= clock()]:
                unit = pending.pop(name)
                res = _unknown_all(unit, ctx, f"{unit.name} probe did not finish within "
                                              f"{unit.timeout_s:g} s")
                progress("done", unit.name, clock() - t0, res)
                out += res
            continue
        if unit.name not in pending:  # finished after its timeout was reported
            continue
        del pending[unit.name]
        if error is not None:
            res = _unknown_all(unit, ctx, f"{unit.name} probe failed: {error}")
        else:
            res = _complete(unit, ctx, res or [])
        progress("done", unit.name, clock() - t0, res)
        out += res
    return out


def _unknown_all(unit: ProbeUnit, ctx: ProbeContext, reason: str) -> list[CheckResult]:
    return [unknown_result(cid, ctx.policy, reason) for cid in unit.check_ids]


def _complete(unit: ProbeUnit, ctx: ProbeContext, res: list[CheckResult]) -> list[CheckResult]:
    """Every check the unit owns appears exactly once, even if its evaluator forgot one."""
    seen = {r.id for r in res}
    stray = seen - set(unit.check_ids)
    if stray:
        raise ValueError(f"unit {unit.name} returned checks it does not own: {sorted(stray)}")
    missing = [cid for cid in unit.check_ids if cid not in seen and cid in BY_ID]
    return res + [unknown_result(cid, ctx.policy, f"{unit.name} probe gave no reading")
                  for cid in missing]
