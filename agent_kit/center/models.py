"""The API's request and response shapes (pydantic v2), exactly as docs/center-api.md says.

Requests are strict: unknown fields are refused, types are not coerced ("7" is not a number),
NaN/Infinity are refused, every string and list has a bound, and every string is a line or
free text of ``core.wire.text`` (no control characters: a NUL once failed a whole group commit
on PostgreSQL). What a workstation sends is data about itself only: no field names an agent (the
agent id comes from the signed header).

The heartbeat's models are not written here: they are derived (:func:`strict_model`) from the
one declaration both sides share, ``agent_kit.core.wire.heartbeat``, with its limits.
"""

from __future__ import annotations

import functools
import operator
import types
import typing
from dataclasses import fields
from datetime import datetime
from typing import Annotated, Any, Literal

import annotated_types
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints, create_model

from agent_kit.center.teams import TeamName
from agent_kit.core.wire import heartbeat as wire
from agent_kit.core.wire.text import LINE_PATTERN

STRICT = ConfigDict(strict=True, extra="forbid", allow_inf_nan=False)

AGENT_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
AgentId = Annotated[str, StringConstraints(pattern=AGENT_ID_PATTERN)]
# A line (core.wire.text): no control characters at all.
ShortText = Annotated[str, StringConstraints(max_length=200, pattern=LINE_PATTERN)]
Secret = Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=LINE_PATTERN)]
AgentState = Literal["online", "offline", "never_seen", "retired"]
AgentStatus = Literal["not_ready", "ready", "offline", "never_seen", "retired"]
MAX_SEQ = wire.MAX_SEQ

_DERIVED: dict[type, type[BaseModel]] = {}
# wire.Bounds names -> the annotated_types constraints pydantic applies (a pattern: below)
_BOUNDS = {"min_length": annotated_types.MinLen, "max_length": annotated_types.MaxLen,
           "ge": annotated_types.Ge, "le": annotated_types.Le}


def strict_model(shape: type) -> type[BaseModel]:
    """The strict pydantic model of a ``core.wire`` TypedDict (made once, then reused): the same
    fields in the same order, ``Bounds`` as pydantic constraints, ``AWARE_DATETIME`` strings as
    aware datetimes, nested TypedDicts as their own models; a ``NotRequired`` key defaults to
    an empty list (a list) or null."""
    if shape in _DERIVED:
        return _DERIVED[shape]
    definitions: dict[str, Any] = {}
    for name, hint in typing.get_type_hints(shape, include_extras=True).items():
        if typing.get_origin(hint) is typing.NotRequired:
            (hint,) = typing.get_args(hint)
        field_type = _pydantic_type(hint)
        if name in shape.__required_keys__:  # type: ignore[attr-defined]
            definitions[name] = (field_type, ...)
        elif typing.get_origin(_unannotated(hint)) is list:
            definitions[name] = (field_type, Field(default_factory=list))
        else:
            assert type(None) in typing.get_args(hint), f"{shape.__name__}.{name}: no default"
            definitions[name] = (field_type, None)
    model: type[BaseModel] = create_model(shape.__name__, __config__=STRICT, __doc__=shape.__doc__,
                                          __module__=__name__, **definitions)
    _DERIVED[shape] = model
    return model


def _unannotated(hint: Any) -> Any:
    return typing.get_args(hint)[0] if typing.get_origin(hint) is Annotated else hint


def _pydantic_type(hint: Any) -> Any:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is Annotated:
        if wire.AWARE_DATETIME in args[1:]:
            assert args == (str, wire.AWARE_DATETIME), hint
            return AwareDatetime
        return Annotated[(_pydantic_type(args[0]),
                          *(made for meta in args[1:] for made in _constraint(meta)))]
    if origin is list:
        return list[_pydantic_type(args[0])]  # type: ignore[misc]
    if origin is dict:
        return dict[_pydantic_type(args[0]), _pydantic_type(args[1])]  # type: ignore[misc]
    if origin in (typing.Union, types.UnionType):
        return functools.reduce(operator.or_, map(_pydantic_type, args))
    if typing.is_typeddict(hint):
        return strict_model(hint)
    return hint   # bool, int, float, str, Literal[...]


def _constraint(metadata: object) -> list[Any]:
    if not isinstance(metadata, wire.Bounds):
        raise TypeError(f"no pydantic form for the wire metadata {metadata!r}")
    made: list[Any] = []
    for name, value in ((f.name, getattr(metadata, f.name)) for f in fields(metadata)):
        if value is not None:
            made.append(StringConstraints(pattern=value) if name == "pattern"
                        else _BOUNDS[name](value))
    return made


GateState = strict_model(wire.GateState)
CheckReading = strict_model(wire.CheckReading)
Heartbeat = strict_model(wire.Heartbeat)
HeartbeatBatch = strict_model(wire.HeartbeatBatch)
# To mypy an instance of these run-time models is Any: its attributes are the wire keys.
ValidHeartbeat = Any


class HeartbeatResult(BaseModel):
    id: str
    seq: int
    status: Literal["stored", "duplicate"]


class HeartbeatAck(BaseModel):
    results: list[HeartbeatResult]
    server_time: int
    # the tag of the policy this workstation should run (GET /api/v1/policy gives it): a
    # monitor running another tag fetches the policy again
    policy_tag: str | None = None


class EnrollRequest(BaseModel):
    model_config = STRICT
    token: Secret
    hostname: Annotated[str, StringConstraints(min_length=1, max_length=253,
                                               pattern=LINE_PATTERN)]
    display_name: ShortText | None = None


class EnrollResponse(BaseModel):
    agent_id: str
    secret: str
    heartbeat_interval_s: int
    server_time: int


class TokenCreate(BaseModel):
    model_config = STRICT
    uses: int = Field(default=1, ge=1, le=100_000)
    ttl_s: int = Field(default=86_400, ge=60, le=366 * 86_400)
    note: ShortText | None = None
    # the team every workstation enrolled with this token joins (None: no team)
    team: TeamName | None = None


class TokenCreated(BaseModel):
    token: str
    token_id: str
    expires_at: datetime
    team: str | None


class TokenInfo(BaseModel):
    token_id: str
    note: str | None
    uses: int
    used: int
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    active: bool
    team: str | None


class TokenList(BaseModel):
    tokens: list[TokenInfo]


class SessionRequest(BaseModel):
    model_config = STRICT
    token: Secret


USER_NAME_PATTERN = r"^[a-z0-9][a-z0-9._@-]{0,63}$"
UserName = Annotated[str, StringConstraints(pattern=USER_NAME_PATTERN)]
PersonRole = Literal["admin", "supervisor", "viewer"]
Teams = Annotated[list[TeamName], Field(min_length=1, max_length=100)]


class UserCreate(BaseModel):
    """``POST /api/v1/users``. ``teams``: a supervisor's (at least one), a viewer's (none or
    null: every team); an admin has none."""

    model_config = STRICT
    name: UserName
    role: PersonRole
    teams: Teams | None = None
    note: ShortText | None = None


class UserChange(BaseModel):
    """``PATCH /api/v1/users/{name}``: what is given changes, the rest stays."""

    model_config = STRICT
    role: PersonRole | None = None
    teams: Teams | None = None
    note: ShortText | None = None


class UserInfo(BaseModel):
    name: str
    role: PersonRole
    teams: list[str] | None
    note: str | None
    created_at: datetime
    updated_at: datetime


class UserCreated(BaseModel):
    user: UserInfo
    key: str


class UserList(BaseModel):
    users: list[UserInfo]


class UserKey(BaseModel):
    key: str


class AuditEventInfo(BaseModel):
    event_id: str
    at: datetime
    actor: str
    source: str
    action: str
    target: str | None
    detail: dict[str, object]


class AuditPage(BaseModel):
    total: int
    events: list[AuditEventInfo]


class SessionInfo(BaseModel):
    """``GET /api/v1/session``: who the caller is (``principals.Principal``)."""

    subject: str
    role: Literal["admin", "supervisor", "viewer"]
    teams: list[str] | None


class GateDecision(BaseModel):
    allowed: bool
    reasons: list[str]
    as_of: datetime
    clearance: str | None


class ClearanceKey(BaseModel):
    alg: Literal["EdDSA"]
    public_key_pem: str


class Reason(BaseModel):
    check: str | None
    text: str | None


class Agent(BaseModel):
    agent_id: str
    hostname: str
    display_name: str | None
    team: str | None
    state: AgentState
    status: AgentStatus
    ready: bool | None
    last_ready: bool | None
    verdict: str | None
    failing: list[str]
    last_seen: datetime | None
    since: datetime | None
    interval_s: float | None
    agent_version: str | None
    last_seq: int | None
    reason: Reason | None = None


class HeadsetInfo(BaseModel):
    check: str
    status: str | None
    microphone: str | None
    speaker: str | None
    kind: str | None


class LinkInfo(BaseModel):
    check: str
    status: str | None
    interface: str | None
    speed_mbps: float | None
    text: str | None


class DeviceInfo(BaseModel):
    headset: HeadsetInfo | None
    link: LinkInfo | None


class AgentChange(BaseModel):
    """``PATCH /api/v1/agents/{id}``: move the workstation to another team (null: no team)."""

    model_config = STRICT
    team: TeamName | None


class AgentDetail(Agent):
    devices: DeviceInfo
    latest: dict[str, object] | None


class FleetCounts(BaseModel):
    online: int
    offline: int
    never_seen: int
    retired: int
    ready: int
    not_ready: int


class TeamCounts(BaseModel):
    team: str | None
    online: int
    offline: int
    never_seen: int
    ready: int
    not_ready: int


class AgentList(BaseModel):
    total: int
    counts: FleetCounts
    teams: list[TeamCounts]
    agents: list[Agent]


class HeartbeatHistory(BaseModel):
    heartbeats: list[dict[str, object]]


class PolicyLayerOut(BaseModel):
    scope: Literal["fleet", "team"]
    team: str | None
    version_id: int
    toml: str


class PolicyDocument(BaseModel):
    """The effective policy: the default with ``layers`` merged over it in order."""

    name: str
    version: str
    toml: str            # the fleet's text (what centers before versioning served)
    tag: str
    team: str | None
    layers: list[PolicyLayerOut]


Comment = Annotated[str, StringConstraints(max_length=500, pattern=LINE_PATTERN)]


class PolicyChange(BaseModel):
    """A new version: the fleet's (``team`` null) or a team's override (``toml`` null removes
    the override: the team follows the fleet)."""

    model_config = STRICT
    team: TeamName | None = None
    toml: Annotated[str, StringConstraints(max_length=64 * 1024)] | None
    comment: Comment | None = None


class PolicyRollback(BaseModel):
    model_config = STRICT
    version_id: Annotated[int, Field(ge=1, le=MAX_SEQ)]
    comment: Comment | None = None


class PolicyVersionOut(BaseModel):
    version_id: int
    scope: Literal["fleet", "team"]
    team: str | None
    name: str | None
    version: str | None
    tag: str
    author: str
    comment: str | None
    created_at: datetime
    rollback_of: int | None
    active: bool
    removed: bool          # a team override removed (the team follows the fleet)


class PolicyVersionDetail(PolicyVersionOut):
    toml: str | None


class PolicyVersionList(BaseModel):
    versions: list[PolicyVersionOut]


class PolicyDiff(BaseModel):
    from_version: int
    to_version: int
    diff: str


class ReportInfo(BaseModel):
    report_id: str
    created_at: datetime
    size_bytes: int


class ReportList(BaseModel):
    reports: list[ReportInfo]


class IncidentDelivery(BaseModel):
    channel: str
    event: Literal["opened", "resolved"]
    state: Literal["due", "sending", "sent", "failed"]
    tries: int               # rounds of sending made so far
    sent_at: datetime | None
    last_error: str | None   # the failure's kind: "HTTP 503", "ConnectError", "SMTP 451"


class Incident(BaseModel):
    incident_id: str
    rule: str
    kind: Literal["offline", "workstation_not_ready", "not_ready", "check_failing"]
    subject: str
    state: Literal["open", "resolved"]
    since: datetime
    opened_at: datetime
    resolved_at: datetime | None
    facts: dict[str, object]
    resolved_facts: dict[str, object] | None
    message: dict[str, object]   # the latest event's message id + parameters
    text: str                    # that message in the reader's language
    deliveries: list[IncidentDelivery]


class IncidentList(BaseModel):
    incidents: list[Incident]


class ReflectorInfo(BaseModel):
    host: str | None
    port: int


class TestCallCodec(BaseModel):
    name: str
    payload_bytes: int


class TestCallInfo(BaseModel):
    """The scored test call's offer (``agent_kit.core.wire.test_call``)."""

    path: str
    clip: str
    duration_s: float
    packet_ms: int
    codecs: list[TestCallCodec]


class Health(BaseModel):
    status: Literal["ok"]
    version: str
    reflector: ReflectorInfo
    speedtest_path: str | None
    test_call: TestCallInfo | None = None


class ErrorBody(BaseModel):
    error: str
    detail: object = None
