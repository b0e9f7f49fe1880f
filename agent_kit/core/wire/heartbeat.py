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
import re
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
    from agent_kit.core.i18n import Msg
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
MAX_MESSAGE_ID_CHARS = 1000  # a message id (its gettext msgid: the English text with fields)
MAX_PARAMS = 16             # parameters of one message


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
ParamName = Annotated[str, Bounds(pattern=r"^[A-Za-z0-9_]{1,32}$")]
MessageId = Annotated[str, Bounds(max_length=MAX_MESSAGE_ID_CHARS, pattern=FREE_TEXT_PATTERN)]
Scalar = bool | int | float | Text | None


# A message as its id and parameters (``core.i18n.Msg``): the center renders it in the reader's
# language. A parameter may be a message in turn, to a depth of four (:func:`message_ref` renders
# anything deeper as English text); JSON Schema has no bounded recursion, so the depths are spelt.
class MessageRef0(TypedDict):
    """A message whose parameters are numbers and names only."""

    id: MessageId
    params: Annotated[dict[ParamName, Scalar], Bounds(max_length=MAX_PARAMS)]


class MessageRef1(TypedDict):
    """A message whose parameters may be messages of depth 0."""

    id: MessageId
    params: Annotated[dict[ParamName, Scalar | MessageRef0], Bounds(max_length=MAX_PARAMS)]


class MessageRef2(TypedDict):
    """A message whose parameters may be messages of depth 1."""

    id: MessageId
    params: Annotated[dict[ParamName, Scalar | MessageRef1], Bounds(max_length=MAX_PARAMS)]


class MessageRef(TypedDict):
    """A message (depth 3 at most below it): ``{"id": msgid, "params": {...}}``."""

    id: MessageId
    params: Annotated[dict[ParamName, Scalar | MessageRef2], Bounds(max_length=MAX_PARAMS)]


Params = Annotated[dict[ParamName, Scalar | MessageRef2], Bounds(max_length=MAX_PARAMS)]
Verdict = Literal["pass", "warn", "fail"]
CheckStatus = Literal["pass", "warn", "fail", "unknown"]


class GateState(TypedDict):
    """The workstation's login gate when the heartbeat was made."""

    open: bool
    since: NotRequired[Timestamp | None]
    reasons: NotRequired[Annotated[list[Text], Bounds(max_length=MAX_REASONS)]]
    # the same reasons as message ids + parameters, index for index (null: plain text only)
    reason_messages: NotRequired[Annotated[list[MessageRef | None],
                                           Bounds(max_length=MAX_REASONS)]]


PolicyTag = Annotated[str, Bounds(pattern=r"^[0-9a-f]{16}$")]
PolicyName = Annotated[str, Bounds(max_length=MAX_TEXT_CHARS, pattern=LINE_PATTERN)]


class PolicyRun(TypedDict):
    """The policy the workstation judged by: its ``name`` and ``version`` keys, and the tag
    of the center's policy (``GET /api/v1/policy``) when it runs the center's (null: its own
    ``--policy`` file, or the shipped default because the center's could not be had)."""

    name: PolicyName
    version: Version
    tag: NotRequired[PolicyTag | None]


class CheckReading(TypedDict):
    """The latest result of one check (a number, or null for a state or an unknown)."""

    id: CheckId
    status: CheckStatus
    value: NotRequired[float | None]
    unit: NotRequired[Unit | None]
    message: NotRequired[Text | None]           # in English
    message_id: NotRequired[MessageId | None]
    message_params: NotRequired[Params | None]
    fix: NotRequired[Text | None]               # in English
    fix_id: NotRequired[MessageId | None]
    fix_params: NotRequired[Params | None]


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
    policy: NotRequired[PolicyRun | None]


class Heartbeat(HeartbeatIdentity, HeartbeatContent):
    """One heartbeat: its identity, what was measured, and what the spool had to drop."""

    # Heartbeats the workstation's spool discarded (overflow) since the last one; absent when none.
    dropped: NotRequired[Annotated[int, Bounds(ge=1, le=MAX_SEQ)] | None]


class HeartbeatBatch(TypedDict):
    """The body of POST /api/v1/heartbeats."""

    heartbeats: Annotated[list[Heartbeat], Bounds(min_length=1, max_length=MAX_BATCH)]


def message_ref(message: "Msg", depth: int = 3) -> MessageRef:
    """``message`` as the heartbeat carries it: ids and names cleaned and cut to their limits,
    numbers finite (else null), messages nested deeper than ``depth`` rendered as English."""
    from agent_kit.core.i18n import Msg, render

    params: dict[str, object] = {}
    for key, value in list(message.params.items())[:MAX_PARAMS]:
        if isinstance(value, Msg):
            params[key] = message_ref(value, depth - 1) if depth > 0 else \
                clean_free_text(render(value, "en"))[:MAX_TEXT_CHARS]
        elif isinstance(value, str):
            params[key] = clean_free_text(value)[:MAX_TEXT_CHARS]
        elif isinstance(value, float) and not math.isfinite(value):
            params[key] = None
        elif isinstance(value, (bool, int, float)) and abs(value) < MAX_SEQ or value is None:
            params[key] = value
        else:
            params[key] = None
    return cast(MessageRef, {"id": clean_free_text(message.id)[:MAX_MESSAGE_ID_CHARS],
                             "params": params})


def check_reading(result: "CheckResult") -> CheckReading:
    """A check result as the heartbeat carries it: a finite number or null, bounded strings
    cleaned of control characters (``core.wire.text``); the message and the fix in English,
    and as message ids + parameters when the result has them (the center renders them in its
    reader's language)."""
    value = result.value
    number = float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) \
        else None
    if number is not None and not math.isfinite(number):
        number = None   # JSON has no NaN/Infinity and the center refuses them
    reading: CheckReading = {
        "id": result.id, "status": result.status.value, "value": number,
        "unit": clean_line(result.unit)[:MAX_UNIT_CHARS] if result.unit else None,
        "message": clean_free_text(result.message_in("en"))[:MAX_TEXT_CHARS],
        # every key present (null when not known), as the center stores and returns it
        "message_id": None, "message_params": None, "fix": None, "fix_id": None,
        "fix_params": None}
    if result.msg is not None:
        ref = message_ref(result.msg)
        reading["message_id"], reading["message_params"] = ref["id"], ref["params"]
    fix = result.fix_in("en")
    if fix:
        reading["fix"] = clean_free_text(fix)[:MAX_TEXT_CHARS]
        if result.fix_msg is not None:
            ref = message_ref(result.fix_msg)
            reading["fix_id"], reading["fix_params"] = ref["id"], ref["params"]
    return reading


def build_heartbeat(results: Iterable["CheckResult"], *, gate_open: bool,
                    gate_since: float | None, gate_reasons: Sequence["str | Msg"],
                    interval_s: float, measured_at: float,
                    agent_version: str = __version__,
                    policy: PolicyRun | None = None) -> HeartbeatContent:
    """The heartbeat of the latest result of every check, in catalogue order, and the gate; every
    string cleaned of what the center refuses (control characters, lone surrogates:
    ``core.wire.text``) and, like every list, cut to its limit, so the center always accepts
    it. Times are unix seconds; a gate ``since`` of None is left out. A reason that is a message
    (``core.i18n.Msg``) goes as English text and as its id + parameters (``reason_messages``).
    ``policy``: what it judged by (:func:`policy_run`). :func:`identified_heartbeat` adds ``id``
    and ``seq``."""
    # Imported here: the spool needs this module only to number heartbeats, and starts as fast
    # as before (its kill -9 test counts commits from the first 150 ms).
    from agent_kit.core.checks import CATALOGUE
    from agent_kit.core.i18n import Msg, render
    from agent_kit.core.results import overall_verdict

    order = {spec.id: i for i, spec in enumerate(CATALOGUE)}
    ordered = sorted(results, key=lambda r: order.get(r.id, len(order)))
    gate: GateState = {"open": gate_open}
    if gate_since is not None:
        gate["since"] = _iso(gate_since)
    reasons = list(gate_reasons[:MAX_REASONS])
    gate["reasons"] = [clean_free_text(render(r, "en"))[:MAX_TEXT_CHARS] for r in reasons]
    if any(isinstance(r, Msg) for r in reasons):
        gate["reason_messages"] = [message_ref(r) if isinstance(r, Msg) else None
                                   for r in reasons]
    content: HeartbeatContent = {
        "measured_at": _iso(measured_at),
        "interval_s": float(min(max(interval_s, MIN_INTERVAL_S), MAX_INTERVAL_S)),
        "agent_version": clean_line(agent_version)[:MAX_VERSION_CHARS],
        "verdict": cast(Verdict, overall_verdict(ordered).value),
        "gate": gate,
        "checks": [check_reading(r) for r in ordered[:MAX_CHECKS]],
    }
    if policy is not None:
        content["policy"] = policy
    return content


def policy_run(name: str, version: str, tag: str | None) -> PolicyRun:
    """The ``policy`` of a heartbeat, cleaned and cut to its limits (a tag not of the center's
    form is left out)."""
    run: PolicyRun = {"name": clean_line(name)[:MAX_TEXT_CHARS],
                      "version": clean_line(version)[:MAX_VERSION_CHARS], "tag": None}
    if tag is not None and re.fullmatch(r"[0-9a-f]{16}", tag):
        run["tag"] = tag
    return run


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
