"""The plain steps of a check, as the agent sees them: "Your computer", "VPN", "Headset"...

A step is one probe unit (``agent_kit.run.units``): the window shows one row per step while the
check runs, and the terminal's short report shows the same rows, with the same words, so the
two never describe one run differently. Also the plain titles and findings the short views use
instead of the catalogue's technical ones ("Jitter", not "Jitter (RFC 3550)").
"""

from __future__ import annotations

from dataclasses import dataclass

from agent_kit.core.checks import (
    AUDIO_HUM,
    BY_ID,
    NETWORK_JITTER,
    NETWORK_MOS,
    NETWORK_TEST_CALL,
)
from agent_kit.core.i18n import N_, _
from agent_kit.core.results import CheckReport, CheckResult, Status

# Unit names (agent_kit.run.units.UNITS) shown as steps; unknown units fall back to their group.
UNIT_LABEL = {
    "system": N_("Your computer"),
    "link": N_("Cable or Wi-Fi"),
    "vpn": N_("VPN"),
    "path": N_("Connection to the contact center"),
    "call": N_("Test call"),
    "network": N_("Connection to the contact center"),
    "bandwidth": N_("Internet speed"),
    "audio": N_("Headset and room"),
    "headset": N_("Headset"),
    "room": N_("Microphone test and room noise"),
}
GROUP_LABEL = {
    "system": N_("Your computer"),
    "vpn": N_("VPN"),
    "network": N_("Network connection"),
    "bandwidth": N_("Internet speed"),
    "audio": N_("Headset and room"),
}
# Titles whose catalogue form names a standard or a symbol an agent does not need.
_PLAIN_TITLE = {
    NETWORK_JITTER.id: N_("Jitter"),
    NETWORK_MOS.id: N_("Estimated call quality"),
    NETWORK_TEST_CALL.id: N_("Test call quality"),
    AUDIO_HUM.id: N_("Electrical hum"),
}
# Units a reader knows; a level in dBFS, a MOS or a count of days is left to --details.
PLAIN_UNITS = frozenset({"ms", "%", "Mbit/s", "MB", "GB"})


@dataclass(frozen=True)
class Step:
    """One row: a probe unit, its plain label, the worst status of its checks."""

    unit: str
    label: str
    status: Status
    results: tuple[CheckResult, ...]


def step_label(unit: str, group: str) -> str:
    """The step's words in the current language."""
    return _(UNIT_LABEL.get(unit) or GROUP_LABEL.get(group) or unit)


def worst(results: list[CheckResult] | tuple[CheckResult, ...]) -> Status:
    """A step's status: fail, then warn, then could not measure, else pass."""
    statuses = {r.status for r in results}
    for status in (Status.FAIL, Status.WARN, Status.UNKNOWN):
        if status in statuses:
            return status
    return Status.PASS


def step_word(status: Status) -> str:
    """What a step's row says about it."""
    return {Status.PASS: _("OK"), Status.WARN: _("needs attention"),
            Status.FAIL: _("problem found"), Status.UNKNOWN: _("could not measure")}[status]


def unit_of(result: CheckResult) -> str:
    """The probe unit that measured ``result`` (its group when the catalogue does not say)."""
    spec = BY_ID.get(result.id)
    return spec.owner if spec is not None else result.group


def steps(report: CheckReport) -> list[Step]:
    """The report's steps in the order their checks come (catalogue order)."""
    by_unit: dict[str, list[CheckResult]] = {}
    for r in report.checks:
        by_unit.setdefault(unit_of(r), []).append(r)
    return [Step(unit, step_label(unit, results[0].group), worst(results), tuple(results))
            for unit, results in by_unit.items()]


def plain_title(check_id: str) -> str:
    """The check's title without standards or symbols, in the current language."""
    if check_id in _PLAIN_TITLE:
        return _(_PLAIN_TITLE[check_id])
    return _(BY_ID[check_id].title) if check_id in BY_ID else check_id


def plain_number(value: float) -> str:
    """A reading as a person writes it: 45, 4.2, 0.35 (no trailing zeros)."""
    if abs(value) >= 100:
        return f"{value:.0f}"
    return f"{value:.2f}".rstrip("0").rstrip(".") if abs(value) < 1 else \
        f"{value:.1f}".rstrip("0").rstrip(".")


def plain_finding(result: CheckResult) -> str:
    """What went wrong in plain words. A level check says "too high"/"too low", with the
    reading and the limit when its unit is one a reader knows; a state check or a check that
    could not measure says its own message (those are already plain)."""
    spec = BY_ID.get(result.id)
    numeric = isinstance(result.value, int | float) and not isinstance(result.value, bool)
    if (spec is None or not spec.has_thresholds or not numeric
            or result.status not in (Status.WARN, Status.FAIL)):
        return result.message
    title = plain_title(result.id)
    high = spec.direction == "higher_is_worse"
    limit = result.fail if result.status is Status.FAIL else result.warn
    if limit is None:
        limit = result.warn if result.fail is None else result.fail
    if result.unit not in PLAIN_UNITS or limit is None:
        return (_("{title} is too high") if high else _("{title} is too low")).format(
            title=title)
    value = float(result.value)  # type: ignore[arg-type]
    unit = result.unit
    phrase = (_("{title} is too high: {value} (should be at most {limit})") if high
              else _("{title} is too low: {value} (should be at least {limit})"))
    return phrase.format(title=title, value=f"{plain_number(value)} {unit}",
                         limit=f"{plain_number(limit)} {unit}")
