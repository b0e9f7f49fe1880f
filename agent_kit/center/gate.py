"""The login gate's decision at the center: may this agent log in now?

Allowed only when the workstation is enrolled, not retired, has reported, its last heartbeat is
fresh (within its interval plus grace, :mod:`agent_kit.center.fleet`), that heartbeat says its
own gate is open, and it was judged by the center's policy (the one workstations fetch). That
last part is checked against the heartbeat itself, so a workstation cannot open its gate by
measuring less or judging more leniently (``agent-kit monitor --only system``, a lax local
``--policy``):

- a check the center's policy blocks on when it is ``unknown`` (``unknown_blocks``) must be in
  the heartbeat: one not reported at all is at best unknown;
- a reported value the center's levels fail must not be reported as passing. A value reported
  as failing is left to the workstation's own gate: its hysteresis decides when a lasting
  failure closes it (a single bad sample must not deny a login).

Every denial says why in plain words.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from agent_kit.center.fleet import AgentRow, iso, state_of
from agent_kit.core.checks import BY_ID
from agent_kit.core.i18n import M_, Msg, verbatim
from agent_kit.core.levels import judge_level
from agent_kit.core.policy import Policy
from agent_kit.core.results import Status


@dataclass(frozen=True)
class GateVerdict:
    allowed: bool
    reasons: list[Msg]      # rendered in the reader's language (``center.viewer_language``)


def decide(row: AgentRow | None, latest: dict[str, Any] | None, now: float,
           policy: Policy | None = None) -> GateVerdict:
    if row is None:
        return GateVerdict(False, [M_("This workstation is not enrolled at the center.")])
    state = state_of(row, now)
    if state == "retired":
        return GateVerdict(False, [M_("This workstation was retired by IT.")])
    if state == "never_seen":
        return GateVerdict(False, [M_("This workstation has not reported yet: start the "
                                     "agent-kit monitor.")])
    if state == "offline":
        return GateVerdict(False, [M_("No heartbeat from this workstation since {when}: the "
                                     "agent-kit monitor is not running or cannot reach the "
                                     "center.", when=iso(row.last_seen))])
    if not row.ready:
        reasons: list[Msg] = []
        if latest and isinstance(latest.get("gate"), dict):
            texts = latest["gate"].get("reasons") or []
            refs = latest["gate"].get("reason_messages") or []
            for i, text in enumerate(texts):
                ref = Msg.from_json(refs[i]) if i < len(refs) else None
                reasons.append(ref if ref is not None else verbatim(str(text)))
        if not reasons:
            failing = [f for f in row.failing.split(",") if f]
            reasons = [M_("The workstation does not meet call standards ({checks}).",
                checks=", ".join(failing) or M_("see the agent's report"))]
        return GateVerdict(False, reasons)
    if policy is not None:
        departures = policy_departures(latest, policy)
        if departures:
            return GateVerdict(False, departures)
    return GateVerdict(True, [])


def policy_departures(latest: dict[str, Any] | None, policy: Policy) -> list[Msg]:
    """Why the heartbeat was not judged by ``policy`` (the center's), in plain words; empty
    when it was (as far as the heartbeat shows)."""
    reported: dict[str, dict[str, Any]] = {}
    for check in (latest or {}).get("checks") or []:
        if isinstance(check, dict) and isinstance(check.get("id"), str):
            reported[check["id"]] = check
    reasons: list[Msg] = []
    for check_id, rule in policy.checks.items():
        if rule.unknown_blocks and check_id not in reported:
            reasons.append(M_("The workstation did not report {check}, which the center's policy "
                             "requires: run agent-kit monitor with every check.",
                                 check=check_id))
    for check_id, check in reported.items():
        spec, level = BY_ID.get(check_id), policy.checks.get(check_id)
        value, status = check.get("value"), check.get("status")
        if spec is None or level is None or not spec.has_thresholds or status == "fail" \
                or not isinstance(value, (int, float)) or isinstance(value, bool):
            continue
        if judge_level(float(value), level.warn, level.fail, spec.direction) is Status.FAIL:
            reasons.append(M_("{check} = {value:g} fails the center's policy (fail level {fail:g}) "
                             "but the workstation reported it as {status}: it judges by another "
                             "policy.", check=check_id, value=float(value),
                                               fail=level.fail, status=status))
    return reasons
