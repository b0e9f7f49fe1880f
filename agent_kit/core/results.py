"""Typed results of a check run: one ``CheckResult`` per check id, one ``CheckReport`` per run."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any


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

    @property
    def blocks(self) -> bool:
        """True when this result alone makes the workstation not ready."""
        return self.status is Status.FAIL or (self.status is Status.UNKNOWN and self.unknown_blocks)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["status"] = self.status.value
        if not self.details:
            data.pop("details")
        return data


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
