"""Typed results of a check run: one ``CheckResult`` per check id, one ``CheckReport`` per run."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

from agent_kit.core.i18n import N_, Msg, format_number, render, translation
from agent_kit.core.i18n import current_language as _current_language


class Status(StrEnum):
    """Outcome of one check. ``UNKNOWN`` means the probe could not measure, and says why."""

    PASS = "pass"
    WARN = "warn"
    FAIL = "fail"
    UNKNOWN = "unknown"


# Order of badness, used to combine statuses. UNKNOWN is handled by policy, not by rank.
STATUS_RANK = {Status.PASS: 0, Status.WARN: 1, Status.FAIL: 2}


@dataclass(frozen=True)
class CheckResult:
    """The judgement of one reading against the policy, as the JSON contract shows it."""

    id: str
    group: str
    status: Status
    value: float | str | bool | None
    unit: str | None
    warn: float | None
    fail: float | None
    message: str
    fix: str | None = None
    # Whether an UNKNOWN of this check blocks readiness (copied from the policy).
    unknown_blocks: bool = False
    details: dict[str, Any] = field(default_factory=dict)
    # The message and the fix as message ids + parameters (``core.i18n.Msg``), so a reader in
    # another language renders them in its own; ``message``/``fix`` are the text in the language
    # of the run. None for a result whose text never was a message id.
    msg: Msg | None = None
    fix_msg: Msg | None = None

    def message_in(self, lang: str | None = None) -> str:
        """The message in ``lang`` (default: the current language)."""
        return render(self.msg, lang) if self.msg is not None else self.message

    def fix_in(self, lang: str | None = None) -> str | None:
        """The fix in ``lang`` (default: the current language); None when there is none."""
        if self.fix is None:
            return None
        return render(self.fix_msg, lang) if self.fix_msg is not None else self.fix

    @property
    def blocks(self) -> bool:
        """True when this result alone makes the workstation not ready."""
        return self.status is Status.FAIL or (self.status is Status.UNKNOWN and self.unknown_blocks)

    def to_json(self) -> dict[str, Any]:
        """The contract's object; ``message_id``/``message_params`` (and ``fix_id``/
        ``fix_params``) beside the rendered text when the result has message ids."""
        data = asdict(self)
        data.pop("msg")
        data.pop("fix_msg")
        data["status"] = self.status.value
        if not self.details:
            data.pop("details")
        if self.msg is not None:
            data.update(message_id=self.msg.id, message_params=self.msg.to_json()["params"])
        if self.fix_msg is not None and self.fix is not None:
            data.update(fix_id=self.fix_msg.id, fix_params=self.fix_msg.to_json()["params"])
        return data


# The words a state check's value can be (``network.link``'s "wired", ``vpn.route``'s "local",
# ``network.hops``' "clean", ``audio.headset``'s device kind...), shown in the reader's language;
# the JSON keeps the value itself. A value not listed (an interface name) is shown as it is.
VALUE_WORDS = {
    "wired": N_("wired"), "wifi": N_("Wi-Fi"), "cellular": N_("mobile data"),
    "local": N_("this computer"), "clean": N_("clean"), "home": N_("your home network"),
    "isp": N_("your internet provider (ISP)"), "beyond": N_("beyond your internet provider"),
    "usb_headset": N_("USB headset"), "analog_headset": N_("headset on the audio jack"),
    "bluetooth_headset": N_("Bluetooth headset"), "builtin": N_("built-in microphone"),
    "webcam": N_("webcam microphone"), "virtual": N_("virtual device"),
    "unknown": N_("unknown device"),
}


# Units shown in words (the JSON keeps the unit itself); symbols (ms, %, Mbit/s) stay as they are.
UNIT_WORDS = {"days": N_("days")}


def unit_text(unit: str, lang: str | None = None) -> str:
    """A unit as the reader's language writes it ("days" -> "dagar")."""
    word = UNIT_WORDS.get(unit)
    return unit if word is None else translation(lang or _current_language()).gettext(word)


def number_text(value: float, lang: str | None = None) -> str:
    """A measured number as the terminal shows it (two decimals below 100, none above, trailing
    zeros dropped), in the reader's format ("77,7" in Swedish)."""
    text = f"{value:.2f}".rstrip("0").rstrip(".") if abs(value) < 100 else f"{value:.0f}"
    digits = len(text.split(".")[1]) if "." in text else 0
    return format_number(float(text), digits, lang)


def value_text(value: str, lang: str | None = None) -> str:
    """A state value in plain words of ``lang`` (default: the current language)."""
    word = VALUE_WORDS.get(value)
    if word is None:
        return value
    return translation(lang or _current_language()).gettext(word)


@dataclass(frozen=True)
class NotChecked:
    """A measurement the policy relies on that could not be made at all (every check it owns
    came back unknown): the run cannot call the workstation ready without it."""

    group: str
    unit: str                       # the probe unit (agent_kit.run.units) that could not run
    check_ids: tuple[str, ...]
    reason: str                     # plain words: why it could not run

    def to_json(self) -> dict[str, Any]:
        return {"group": self.group, "unit": self.unit, "checks": list(self.check_ids),
                "reason": self.reason}


@dataclass(frozen=True)
class RunNotice:
    """Something said once, above the checks, instead of in every check it explains."""

    message: str
    fix: str

    def to_json(self) -> dict[str, Any]:
        return {"message": self.message, "fix": self.fix}


@dataclass(frozen=True)
class CheckReport:
    """A whole run: the verdict and every check, in catalogue order."""

    verdict: Status
    policy_name: str
    policy_version: str
    started_at: str
    duration_s: float
    checks: tuple[CheckResult, ...]
    version: str = ""
    # what could not be measured at all; non-empty makes the verdict FAIL (never READY)
    not_checked: tuple[NotChecked, ...] = ()
    # set when this computer is not enrolled: what to do, said once
    not_enrolled: RunNotice | None = None

    @property
    def ready(self) -> bool:
        return self.verdict is not Status.FAIL and not self.not_checked

    def to_json(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict.value,
            "ready": self.ready,
            "policy": {"name": self.policy_name, "version": self.policy_version},
            "started_at": self.started_at,
            "duration_s": round(self.duration_s, 3),
            "agent_kit_version": self.version,
            "not_enrolled": self.not_enrolled.to_json() if self.not_enrolled else None,
            "not_checked": [n.to_json() for n in self.not_checked],
            "checks": [c.to_json() for c in self.checks],
        }


def overall_verdict(results: tuple[CheckResult, ...] | list[CheckResult]) -> Status:
    """FAIL if anything blocks; WARN if anything warns or is unknown without blocking; else PASS."""
    if any(r.blocks for r in results):
        return Status.FAIL
    if any(r.status in (Status.WARN, Status.UNKNOWN) for r in results):
        return Status.WARN
    return Status.PASS
