"""The level rule and result builders every evaluator uses. Pure functions, no I/O.

``judge_level`` is the one rule every numeric check follows; each group's module
(``evaluate/system.py``, ``evaluate/vpn.py``, ...) turns its reading into results with it and
adds the plain-words message and the fix.
"""

from __future__ import annotations

from typing import Any

from agent_kit.core.checks import BY_ID, Direction
from agent_kit.core.i18n import Msg, render
from agent_kit.core.policy import Policy
from agent_kit.core.results import CheckResult, Status


def judge_level(value: float, warn: float | None, fail: float | None,
                direction: Direction) -> Status:
    """PASS/WARN/FAIL of a number against its levels; reaching a level counts as crossing it.

    For ``higher_is_worse`` a value >= fail fails, >= warn warns; mirrored for
    ``lower_is_worse`` (a value <= fail fails). A level of ``None`` is never reached.
    """
    if direction == "state":
        raise ValueError("state checks are not judged by level")
    sign = 1.0 if direction == "higher_is_worse" else -1.0
    if fail is not None and sign * value >= sign * fail:
        return Status.FAIL
    if warn is not None and sign * value >= sign * warn:
        return Status.WARN
    return Status.PASS


def _text(message: Msg | str) -> tuple[str, Msg | None]:
    """The text in the current language, and the message id + parameters when there is one."""
    return (render(message), message) if isinstance(message, Msg) else (message, None)


def level_result(check_id: str, value: float, policy: Policy, *, message: Msg | str,
                 fix_if_bad: Msg | str | None, details: dict[str, Any] | None = None,
                 ndigits: int = 2) -> CheckResult:
    """A numeric check judged by its policy levels; ``fix_if_bad`` is shown on warn or fail."""
    spec, rule = BY_ID[check_id], policy.check(check_id)
    status = judge_level(value, rule.warn, rule.fail, spec.direction)
    text, msg = _text(message)
    fix, fix_msg = _text(fix_if_bad) if fix_if_bad is not None and status is not Status.PASS \
        else (None, None)
    return CheckResult(
        id=check_id, group=spec.group, status=status, value=round(float(value), ndigits),
        unit=spec.unit, warn=rule.warn, fail=rule.fail, message=text, fix=fix,
        unknown_blocks=rule.unknown_blocks, details=details or {}, msg=msg, fix_msg=fix_msg,
    )


def state_result(check_id: str, status: Status, value: float | str | bool | None,
                 policy: Policy, *,
                 message: Msg | str, fix: Msg | str | None = None,
                 details: dict[str, Any] | None = None) -> CheckResult:
    """A check judged by a state (wired/wifi, tunnel up/down...) rather than a number."""
    spec, rule = BY_ID[check_id], policy.check(check_id)
    text, msg = _text(message)
    fix_text, fix_msg = _text(fix) if fix is not None and status is not Status.PASS \
        else (None, None)
    return CheckResult(
        id=check_id, group=spec.group, status=status, value=value, unit=spec.unit,
        warn=rule.warn, fail=rule.fail, message=text, fix=fix_text,
        unknown_blocks=rule.unknown_blocks, details=details or {}, msg=msg, fix_msg=fix_msg,
    )


def unknown_result(check_id: str, policy: Policy, reason: Msg | str,
                   fix: Msg | str | None = None) -> CheckResult:
    """The honest answer when a probe could not measure: it says why."""
    spec, rule = BY_ID[check_id], policy.check(check_id)
    text, msg = _text(reason)
    fix_text, fix_msg = _text(fix) if fix is not None else (None, None)
    return CheckResult(
        id=check_id, group=spec.group, status=Status.UNKNOWN, value=None, unit=spec.unit,
        warn=rule.warn, fail=rule.fail, message=text, fix=fix_text,
        unknown_blocks=rule.unknown_blocks, msg=msg, fix_msg=fix_msg,
    )


def status_named(name: str) -> Status:
    """A policy's "pass"/"warn"/"fail" word as a Status."""
    return Status(name)
