"""What each alert rule sees in the fleet now: the subjects whose condition holds (one incident
each) and, for the counting rules, what every subject in scope measures (the facts a recovery
message gives).

- ``offline``: a workstation offline (its heartbeat deadline passed, ``fleet.py``) for the
  rule's ``for``; subject: the workstation. The center knows when it went offline, so the
  duration is measured from then, not from when the checker first noticed.
- ``workstation_not_ready``: a workstation online whose gate is closed; subject: it.
- ``not_ready``: more than ``above`` workstations online and not ready, in the team, in each
  team (``per_team``) or in the fleet. An offline workstation does not count (it may simply
  be off shift; the ``offline`` rule watches it).
- ``check_failing``: one check failing in the latest heartbeat of ``at_least`` workstations
  and/or ``percent`` % of the workstations seen within ``window`` (online at some moment of it:
  a line that dropped after reporting its loss still counts); one incident per check id, not
  one per workstation: the "ISP outage".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from agent_kit.center.alert_config import Rule
from agent_kit.center.incident_store import IncidentStore


@dataclass(frozen=True)
class Condition:
    facts: dict[str, Any]
    since: float | None = None       # when it began, if the fleet's data tells (else: now)


@dataclass(frozen=True)
class Evaluation:
    active: dict[str, Condition] = field(default_factory=dict)   # subject -> condition
    measured: dict[str, dict[str, Any]] = field(default_factory=dict)
    seen: dict[str, int] = field(default_factory=dict)   # check_failing: per team ("": all)


def _subject(team: str | None, rest: str = "") -> str:
    """A counting rule's subject: the team (empty: the scope as one), then the check id."""
    return f"{team or ''}/{rest}" if rest else (team or "")


def evaluate(rule: Rule, store: IncidentStore, now: float) -> Evaluation:
    """The rule's view of the fleet at ``now``."""
    if rule.kind == "offline":
        return Evaluation(active={
            agent_id: Condition({"agent_id": agent_id, "workstation": name, "since": since,
                                 "team": team}, since=since)
            for agent_id, name, since, team in store.offline_agents(now - rule.for_s,
                                                                    rule.team)})
    if rule.kind == "workstation_not_ready":
        return Evaluation(active={
            agent_id: Condition({"agent_id": agent_id, "workstation": name, "since": now,
                                 "failing": failing, "team": team})
            for agent_id, name, failing, team in store.not_ready_agents(now, rule.team)})
    if rule.kind == "not_ready":
        out = Evaluation()
        for team, (count, online) in store.readiness_counts(now, rule.team,
                                                            rule.per_team).items():
            team = team if rule.per_team else rule.team
            facts: dict[str, Any] = {"team": team, "count": count, "online": online,
                                     "above": rule.above}
            out.measured[_subject(team)] = facts
            if count > rule.above:
                out.active[_subject(team)] = Condition(facts)
        return out
    out = Evaluation()
    for team, (seen, tally) in store.failing_counts(now - rule.window_s, rule.team,
                                                    rule.per_team).items():
        team = team if rule.per_team else rule.team
        out.seen[team or ""] = seen
        for check_id in rule.checks or tuple(tally):
            count = tally.get(check_id, 0)
            percent = 100.0 * count / seen if seen else 0.0
            facts = {"team": team, "check_id": check_id, "count": count, "seen": seen,
                     "percent": round(percent, 1)}
            subject = _subject(team, check_id)
            out.measured[subject] = facts
            if count and (rule.at_least is None or count >= rule.at_least) and \
                    (rule.percent is None or percent >= rule.percent):
                out.active[subject] = Condition(facts)
    return out


def resolved_facts(rule: Rule, subject: str, ev: Evaluation) -> dict[str, Any] | None:
    """What a subject measures now that its condition is gone (None: nothing to tell)."""
    found = ev.measured.get(subject)
    if found is not None or rule.kind not in ("check_failing", "not_ready"):
        return found
    # a subject no longer measured at all (no workstation fails the check, none in the team
    # is online): zero
    if rule.kind == "not_ready":
        return {"team": subject or None, "count": 0, "online": 0, "above": rule.above}
    team, _, check_id = subject.rpartition("/")
    return {"team": team or None, "check_id": check_id, "count": 0,
            "seen": ev.seen.get(team, 0), "percent": 0.0}
