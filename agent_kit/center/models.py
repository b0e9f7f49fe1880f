"""The API's request and response shapes (pydantic v2), exactly as docs/center-api.md says.

Requests are strict: unknown fields are refused, types are not coerced ("7" is not a number),
NaN/Infinity are refused, every string and list has a bound. What a workstation sends is data
about itself only: no field names an agent (the agent id comes from the signed header).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

STRICT = ConfigDict(strict=True, extra="forbid", allow_inf_nan=False)

AGENT_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
AgentId = Annotated[str, StringConstraints(pattern=AGENT_ID_PATTERN)]
ShortText = Annotated[str, StringConstraints(max_length=200)]
Reason = Annotated[str, StringConstraints(max_length=500)]
CheckId = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,31}\.[a-z][a-z0-9_]{0,47}$")]
HeartbeatId = Annotated[str, StringConstraints(
    pattern=r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")]
Verdict = Literal["pass", "warn", "fail"]
CheckStatus = Literal["pass", "warn", "fail", "unknown"]
AgentState = Literal["online", "offline", "never_seen", "retired"]
MAX_SEQ = 2**62


class GateState(BaseModel):
    model_config = STRICT
    open: bool
    since: AwareDatetime | None = None
    reasons: list[Reason] = Field(default_factory=list, max_length=50)


class CheckReading(BaseModel):
    model_config = STRICT
    id: CheckId
    status: CheckStatus
    value: float | None = None
    unit: Annotated[str, StringConstraints(max_length=16)] | None = None
    message: Reason | None = None


class Heartbeat(BaseModel):
    model_config = STRICT
    id: HeartbeatId
    seq: int = Field(ge=1, le=MAX_SEQ)
    measured_at: AwareDatetime
    interval_s: float = Field(ge=1, le=3600)
    agent_version: Annotated[str, StringConstraints(max_length=32)]
    verdict: Verdict
    gate: GateState
    checks: list[CheckReading] = Field(default_factory=list, max_length=100)
    # Heartbeats the workstation's spool discarded (overflow); absent when none.
    dropped: int | None = Field(default=None, ge=1, le=MAX_SEQ)


class HeartbeatBatch(BaseModel):
    model_config = STRICT
    heartbeats: list[Heartbeat] = Field(min_length=1, max_length=500)


class HeartbeatResult(BaseModel):
    id: str
    seq: int
    status: Literal["stored", "duplicate"]


class HeartbeatAck(BaseModel):
    results: list[HeartbeatResult]
    server_time: int


class EnrollRequest(BaseModel):
    model_config = STRICT
    token: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    hostname: Annotated[str, StringConstraints(min_length=1, max_length=253)]
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


class TokenCreated(BaseModel):
    token: str
    token_id: str
    expires_at: datetime


class TokenInfo(BaseModel):
    token_id: str
    note: str | None
    uses: int
    used: int
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    active: bool


class TokenList(BaseModel):
    tokens: list[TokenInfo]


class SessionRequest(BaseModel):
    model_config = STRICT
    token: Annotated[str, StringConstraints(min_length=1, max_length=200)]


class GateDecision(BaseModel):
    allowed: bool
    reasons: list[str]
    as_of: datetime
    clearance: str | None


class ClearanceKey(BaseModel):
    alg: Literal["EdDSA"]
    public_key_pem: str


class Agent(BaseModel):
    agent_id: str
    hostname: str
    display_name: str | None
    state: AgentState
    ready: bool | None
    verdict: str | None
    failing: list[str]
    last_seen: datetime | None
    since: datetime | None
    interval_s: float | None
    agent_version: str | None
    last_seq: int | None


class StoredHeartbeat(Heartbeat):
    model_config = ConfigDict(extra="allow")
    received_at: datetime


class AgentDetail(Agent):
    latest: dict[str, object] | None


class FleetCounts(BaseModel):
    online: int
    offline: int
    never_seen: int
    retired: int
    ready: int
    not_ready: int


class AgentList(BaseModel):
    total: int
    counts: FleetCounts
    agents: list[Agent]


class HeartbeatHistory(BaseModel):
    heartbeats: list[dict[str, object]]


class PolicyDocument(BaseModel):
    name: str
    version: str
    toml: str


class ReportInfo(BaseModel):
    report_id: str
    created_at: datetime
    size_bytes: int


class ReportList(BaseModel):
    reports: list[ReportInfo]


class ReflectorInfo(BaseModel):
    host: str | None
    port: int


class Health(BaseModel):
    status: Literal["ok"]
    version: str
    reflector: ReflectorInfo
    speedtest_path: str | None


class ErrorBody(BaseModel):
    error: str
    detail: object = None
