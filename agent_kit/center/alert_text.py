"""What an incident says: its message as a message id + parameters (``core.i18n.M_``), built
from the incident's stored facts, and rendered at the edge in the center's alert language (the
chat's text, an email's subject and body) or sent as ids + parameters (the generic webhook).

Facts per rule kind (stored with the incident, ``incident_store.py``):
- ``offline``: ``agent_id``, ``workstation`` (display name or hostname), ``since`` (epoch s:
  when it went offline);
- ``workstation_not_ready``: the same, ``since`` when the center first saw it not ready, and
  ``failing`` (check ids);
- ``not_ready``: ``team`` (None: the whole fleet), ``count``, ``online``, ``above``;
- ``check_failing``: ``team``, ``check_id``, ``count``, ``seen`` (workstations seen within the
  window), ``percent``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from agent_kit.center.fleet import iso
from agent_kit.core.checks import BY_ID
from agent_kit.core.i18n import M_, Msg, Param, render

OPENED, RESOLVED = "opened", "resolved"


@dataclass(frozen=True)
class IncidentEvent:
    """One incident at one of its two events, as the channels need it."""

    incident_id: str
    rule: str
    kind: str
    subject: str
    event: str                       # OPENED or RESOLVED
    since: float
    opened_at: float | None
    resolved_at: float | None
    facts: Mapping[str, Any]         # at opening
    resolved_facts: Mapping[str, Any] | None


def utc_time(epoch: float, lang: str) -> str:
    """A moment as the language writes a medium date and time, in UTC (said so): an alert is
    read in other time zones than the center's."""
    from datetime import UTC, datetime

    from babel.dates import format_datetime

    at = datetime.fromtimestamp(epoch, UTC)
    return f"{format_datetime(at, format='medium', tzinfo=UTC, locale=lang)} UTC"


def _check(check_id: str) -> Msg | str:
    spec = BY_ID.get(check_id)
    return Msg(spec.title) if spec is not None else check_id


def headline(ev: IncidentEvent, when: Any) -> Msg:
    """The one sentence of the event; ``when(epoch)`` gives the value of a moment (rendered
    text for people, ISO 8601 for the webhook)."""
    f = ev.facts
    now = (ev.resolved_facts or {}) if ev.event == RESOLVED else f
    team = f.get("team")
    if ev.kind == "offline":
        if ev.event == OPENED:
            return M_("Offline: {workstation} has sent no heartbeat since {since}.",
                      workstation=f["workstation"], since=when(f["since"]))
        return M_("Resolved: {workstation} is no longer offline (offline since {since}).",
                  workstation=f["workstation"], since=when(f["since"]))
    if ev.kind == "workstation_not_ready":
        if ev.event == RESOLVED:
            return M_("Resolved: {workstation} no longer reports not ready (since {since}).",
                      workstation=f["workstation"], since=when(f["since"]))
        if f.get("failing"):
            return M_("Not ready: {workstation} cannot take calls since {since}. Failing: "
                      "{checks}.", workstation=f["workstation"], since=when(f["since"]),
                      checks=_list([_check(c) for c in f["failing"]]))
        return M_("Not ready: {workstation} cannot take calls since {since}.",
                  workstation=f["workstation"], since=when(f["since"]))
    if ev.kind == "not_ready":
        params: dict[str, Param] = {"count": int(now.get("count", 0)),
                                    "online": int(now.get("online", 0)),
                                    "above": int(f["above"])}
        if ev.event == OPENED:
            if team is None:
                return M_("Not ready: {count} of {online} online workstations cannot take "
                          "calls (more than {above}).", **params)
            return M_("Not ready in team {team}: {count} of {online} online workstations "
                      "cannot take calls (more than {above}).", team=team, **params)
        if team is None:
            return M_("Resolved: {count} of {online} online workstations cannot take calls "
                      "now (at most {above}).", **params)
        return M_("Resolved in team {team}: {count} of {online} online workstations cannot "
                  "take calls now (at most {above}).", team=team, **params)
    # check_failing
    params = {"check": _check(f["check_id"]), "count": int(now.get("count", 0)),
              "seen": int(now.get("seen", 0)), "percent": float(now.get("percent", 0.0))}
    if ev.event == OPENED:
        if team is None:
            return M_("{check} fails on {count} of {seen} workstations at once "
                      "({percent:.0f} %): a shared cause such as the internet provider, the "
                      "VPN or the center is likely.", **params)
        return M_("{check} fails on {count} of {seen} workstations of team {team} at once "
                  "({percent:.0f} %): a shared cause such as the internet provider, the VPN "
                  "or the center is likely.", team=team, **params)
    if team is None:
        return M_("Resolved: {check} now fails on {count} of {seen} workstations.", **params)
    return M_("Resolved: {check} now fails on {count} of {seen} workstations of team {team}.",
              team=team, **params)


def _list(items: list[Msg | str]) -> Msg:
    """Names one after another, comma-separated (a message of messages)."""
    fields = ", ".join("{" + f"i{i}" + "}" for i in range(len(items)))
    return Msg(fields, {f"i{i}": v for i, v in enumerate(items)})


def _details(ev: IncidentEvent, when: Any) -> list[Msg]:
    lines = [M_("Rule: {rule}", rule=ev.rule)]
    if ev.opened_at is not None:
        lines.append(M_("Opened: {at}", at=when(ev.opened_at)))
    if ev.resolved_at is not None:
        lines.append(M_("Resolved: {at}", at=when(ev.resolved_at)))
    lines.append(M_("Incident: {incident}", incident=ev.incident_id))
    return lines


def rendered(ev: IncidentEvent, lang: str) -> tuple[str, str, str]:
    """``(chat text, email subject, email body)`` in ``lang``."""
    def when(epoch: float) -> str:
        return utc_time(float(epoch), lang)

    head = render(headline(ev, when), lang)
    details = [render(m, lang) for m in _details(ev, when)]
    chat = f"{head}\n" + " · ".join(details)
    subject = f"[agent-center] {head}"
    body = head + "\n\n" + "\n".join(details) + "\n"
    return chat, subject, body


def webhook_json(ev: IncidentEvent) -> dict[str, object]:
    """The generic webhook's body: ids and parameters, times in ISO 8601 (UTC)."""
    def when(epoch: float) -> str | None:
        return iso(float(epoch))

    def times(facts: Mapping[str, Any] | None) -> dict[str, Any] | None:
        if facts is None:
            return None
        return {k: (iso(float(v)) if k == "since" else v) for k, v in facts.items()}

    return {"event": f"incident_{ev.event}", "incident_id": ev.incident_id, "rule": ev.rule,
            "kind": ev.kind, "subject": ev.subject, "since": iso(ev.since),
            "opened_at": iso(ev.opened_at), "resolved_at": iso(ev.resolved_at),
            "facts": times(ev.facts), "resolved_facts": times(ev.resolved_facts),
            "message": headline(ev, when).to_json()}
