"""The login gate's decision at the center: may this agent log in now?

Allowed only when the workstation is enrolled, not retired, has reported, its last heartbeat is
fresh (within its interval plus grace, :mod:`agent_kit.center.fleet`) and that heartbeat says its
own gate is open. Every denial says why in plain words.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from agent_kit.center.fleet import AgentRow, iso, state_of
from agent_kit.i18n import _


@dataclass(frozen=True)
class GateVerdict:
    allowed: bool
    reasons: list[str]


def decide(row: AgentRow | None, latest: dict[str, Any] | None, now: float) -> GateVerdict:
    if row is None:
        return GateVerdict(False, [_("This workstation is not enrolled at the center.")])
    state = state_of(row, now)
    if state == "retired":
        return GateVerdict(False, [_("This workstation was retired by IT.")])
    if state == "never_seen":
        return GateVerdict(False, [_("This workstation has not reported yet: start the "
                                     "agent-kit monitor.")])
    if state == "offline":
        return GateVerdict(False, [_("No heartbeat from this workstation since {when}: the "
                                     "agent-kit monitor is not running or cannot reach the "
                                     "center.").format(when=iso(row.last_seen))])
    if not row.ready:
        reasons = []
        if latest and isinstance(latest.get("gate"), dict):
            reasons = [str(r) for r in latest["gate"].get("reasons") or []]
        if not reasons:
            failing = [f for f in row.failing.split(",") if f]
            reasons = [_("The workstation does not meet call standards ({checks}).").format(
                checks=", ".join(failing) or _("see the agent's report"))]
        return GateVerdict(False, reasons)
    return GateVerdict(True, [])
