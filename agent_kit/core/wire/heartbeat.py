"""The heartbeat body (docs/center-api.md, ``POST /api/v1/heartbeats``), defined once: its fields,
their types and limits, and the builder every sender calls.

- The agent's monitor builds the body with :func:`build_heartbeat` and its spool numbers it with
  :func:`identified_heartbeat`; ``tests/center_seed.py`` and ``bench/center_load.py`` build what
  they send with the same two functions.
- The center derives its strict validation from these declarations (``agent_kit.center.models``
  turns each TypedDict below into a pydantic model: strict types, unknown fields refused, no
  NaN), so the limits here are the center's limits, and the builder keeps within them.

No pydantic here, and nothing outside the standard library: the monitor runs in a lean process.
The declarations are ``typing`` only: a ``TypedDict`` per JSON object (``NotRequired`` keys may
be left out: they read as null, or as an empty list), with :class:`Bounds` and
:data:`AWARE_DATETIME` in ``Annotated`` metadata for what a type alone cannot say.
"""

import math
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Literal, NotRequired, TypedDict, cast

from agent_kit import __version__
from agent_kit.core.wire.text import (
    FREE_TEXT_PATTERN,
    LINE_PATTERN,
    clean_free_text,
    clean_line,
)

if TYPE_CHECKING:
    from agent_kit.core.results import CheckResult

PATH = "/api/v1/heartbeats"

MAX_BATCH = 500             # heartbeats per request
MAX_BODY_BYTES = 1 << 20    # a request body (1 MiB), larger ones get 413
MAX_CHECKS = 100            # checks per heartbeat
MAX_REASONS = 50            # gate reasons per heartbeat
MAX_TEXT_CHARS = 500        # a gate reason, a check's message
MAX_UNIT_CHARS = 16
MAX_VERSION_CHARS = 32
MIN_INTERVAL_S = 1
MAX_INTERVAL_S = 3600
MAX_SEQ = 2**62             # seq and dropped fit a signed 64-bit column


@dataclass(frozen=True, slots=True)
class Bounds:
    """Limits of a value, named as JSON Schema (and pydantic's ``Field``) name them:
    ``min_length``/``max_length`` of a string or list, ``ge``/``le`` of a number, ``pattern``
    (a regular expression the string must match)."""

    min_length: int | None = None
    max_length: int | None = None
    ge: float | None = None
    le: float | None = None
    pattern: str | None = None


@dataclass(frozen=True, slots=True)
class AwareDateTime:
    """Marks a string as an ISO 8601 date and time with its UTC offset."""


AWARE_DATETIME = AwareDateTime()

CheckId = Annotated[str, Bounds(pattern=r"^[a-z][a-z0-9_]{0,31}\.[a-z][a-z0-9_]{0,47}$")]
HeartbeatId = Annotated[str, Bounds(
    pattern=r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")]
# Free text and lines (``core.wire.text``): no control characters (free text keeps tab, LF, CR).
Text = Annotated[str, Bounds(max_length=MAX_TEXT_CHARS, pattern=FREE_TEXT_PATTERN)]
Unit = Annotated[str, Bounds(max_length=MAX_UNIT_CHARS, pattern=LINE_PATTERN)]
Version = Annotated[str, Bounds(max_length=MAX_VERSION_CHARS, pattern=LINE_PATTERN)]
Timestamp = Annotated[str, AWARE_DATETIME]
Verdict = Literal["pass", "warn", "fail"]
CheckStatus = Literal["pass", "warn", "fail", "unknown"]


class GateState(TypedDict):
    """The workstation's login gate when the heartbeat was made."""

    open: bool
    since: NotRequired[Timestamp | None]
    reasons: NotRequired[Annotated[list[Text], Bounds(max_length=MAX_REASONS)]]


class CheckReading(TypedDict):
    """The latest result of one check (a number, or null for a state or an unknown)."""

    id: CheckId
    status: CheckStatus
    value: NotRequired[float | None]
    unit: NotRequired[Unit | None]
    message: NotRequired[Text | None]


class HeartbeatIdentity(TypedDict):
    """What makes a heartbeat unique: a client-made uuid4 and the workstation's seq."""

    id: HeartbeatId
    seq: Annotated[int, Bounds(ge=1, le=MAX_SEQ)]


class HeartbeatContent(TypedDict):
    """What the monitor measured: :func:`build_heartbeat` makes it."""

    measured_at: Timestamp
    interval_s: Annotated[float, Bounds(ge=MIN_INTERVAL_S, le=MAX_INTERVAL_S)]
    agent_version: Version
    verdict: Verdict
    gate: GateState
    checks: NotRequired[Annotated[list[CheckReading], Bounds(max_length=MAX_CHECKS)]]


class Heartbeat(HeartbeatIdentity, HeartbeatContent):
    """One heartbeat: its identity, what was measured, and what the spool had to drop."""

    # Heartbeats the workstation's spool discarded (overflow) since the last one; absent when none.
    dropped: NotRequired[Annotated[int, Bounds(ge=1, le=MAX_SEQ)] | None]


class HeartbeatBatch(TypedDict):
    """The body of POST /api/v1/heartbeats."""

    heartbeats: Annotated[list[Heartbeat], Bounds(min_length=1, max_length=MAX_BATCH)]


def check_reading(result: "CheckResult") -> CheckReading:
    """A check result as the heartbeat carries it: a finite number or null, bounded strings
    cleaned of control characters (``core.wire.text``)."""
    value = result.value
    number = float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) \
        else None
    if number is not None and not math.isfinite(number):
        number = None   # JSON has no NaN/Infinity and the center refuses them
    return {"id": result.id, "status": result.status.value, "value": number,
            "unit": clean_line(result.unit)[:MAX_UNIT_CHARS] if result.unit else None,
            "message": clean_free_text(result.message)[:MAX_TEXT_CHARS]}


def build_heartbeat(results: Iterable["CheckResult"], *, gate_open: bool,
                    gate_since: float | None, gate_reasons: Sequence[str], interval_s: float,
                    measured_at: float, agent_version: str = __version__) -> HeartbeatContent:
    """The heartbeat of the latest result of every check, in catalogue order, and the gate; every
    string cleaned of what the center refuses (control characters, lone surrogates:
    ``core.wire.text``) and, like every list, cut to its limit, so the center always accepts
    it. Times are unix seconds; a gate ``since`` of None is left out.
    :func:`identified_heartbeat` adds ``id`` and ``seq``."""
    # Imported here: the spool needs this module only to number heartbeats, and starts as fast
    # as before (its kill -9 test counts commits from the first 150 ms).
    from agent_kit.core.checks import CATALOGUE
    from agent_kit.core.results import overall_verdict

    order = {spec.id: i for i, spec in enumerate(CATALOGUE)}
    ordered = sorted(results, key=lambda r: order.get(r.id, len(order)))
    gate: GateState = {"open": gate_open}
    if gate_since is not None:
        gate["since"] = _iso(gate_since)
    gate["reasons"] = [clean_free_text(r)[:MAX_TEXT_CHARS] for r in gate_reasons[:MAX_REASONS]]
    return {
        "measured_at": _iso(measured_at),
        "interval_s": float(min(max(interval_s, MIN_INTERVAL_S), MAX_INTERVAL_S)),
        "agent_version": clean_line(agent_version)[:MAX_VERSION_CHARS],
        "verdict": cast(Verdict, overall_verdict(ordered).value),
        "gate": gate,
        "checks": [check_reading(r) for r in ordered[:MAX_CHECKS]],
    }


def identified_heartbeat(content: HeartbeatContent, *, seq: int, heartbeat_id: str | None = None,
                         dropped: int = 0) -> Heartbeat:
    """``content`` with its ``id`` (a new uuid4 unless given) and ``seq``, and ``dropped`` when
    some were (the keys follow the content's, as the spool has always stored them)."""
    body = cast(Heartbeat, {**content, "id": heartbeat_id or str(uuid.uuid4()), "seq": seq})
    if dropped:
        body["dropped"] = dropped
    return body


def heartbeat_batch(heartbeats: Sequence[Heartbeat]) -> HeartbeatBatch:
    """The request body for these heartbeats (at most :data:`MAX_BATCH`)."""
    return {"heartbeats": list(heartbeats)}


def _iso(unix_s: float) -> str:
    return datetime.fromtimestamp(unix_s, UTC).isoformat(timespec="seconds")
