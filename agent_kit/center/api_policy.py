"""The call-standards policy's routes: what a workstation runs (``GET /api/v1/policy``), and the
versions IT edits (``/api/v1/policy/versions``: list, show, create, roll back, diff). Storage
and merging: :mod:`agent_kit.center.policy_versions`. Reading is for the admin (and, for its
own effective policy, the workstation); every change needs an admin and is written to the
audit log (``policy.change``, ``policy.rollback``) with the version it made."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from agent_kit.center import policy_versions as versions
from agent_kit.center.auth import (
    audit_event,
    authorize,
    authorize_for,
    has_signature,
    require_workstation,
    runtime,
)
from agent_kit.center.errors import APIError
from agent_kit.center.models import (
    PolicyChange,
    PolicyDiff,
    PolicyDocument,
    PolicyRollback,
    PolicyVersionDetail,
    PolicyVersionList,
)
from agent_kit.center.policy_versions import EffectivePolicy, PolicyRefused, PolicyVersion
from agent_kit.center.principals import Principal
from agent_kit.center.request_bodies import json_body, read_json
from agent_kit.center.runtime import CenterRuntime
from agent_kit.center.teams import TeamName

router = APIRouter(prefix="/api/v1")
# Each route's rule is in principals.ROUTE_ACCESS: reading for admins, supervisors and viewers
# (policy.history), changing for admins (policy.write).
Person = Annotated[Principal, Depends(authorize)]
TeamQ = Annotated[TeamName | None, Query(description="a team's override")]
REFUSED = {422: {"description": "invalid_policy: the parser's reason, nothing stored"}}


def document(eff: EffectivePolicy) -> dict[str, Any]:
    """``GET /api/v1/policy``'s answer for an effective policy."""
    return {"name": eff.policy.name, "version": eff.policy.version, "toml": eff.fleet_toml,
            "tag": eff.tag, "team": eff.team,
            "layers": [{"scope": layer.scope, "team": layer.team,
                        "version_id": layer.version_id, "toml": layer.toml}
                       for layer in eff.layers]}


def _scope_target(team: str | None) -> str:
    """The audit log's target of a policy change: ``fleet`` or ``team:<name>``."""
    return "fleet" if team is None else f"team:{team}"


def _ts(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds")


def version_json(row: PolicyVersion, active_ids: set[int], *,
                 with_text: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {
        "version_id": row.version_id, "scope": row.scope, "team": row.team, "name": row.name,
        "version": row.version, "tag": row.tag, "author": row.author, "comment": row.comment,
        "created_at": _ts(row.created_at), "rollback_of": row.rollback_of,
        "active": row.version_id in active_ids, "removed": row.toml is None}
    if with_text:
        out["toml"] = row.toml
    return out


def _active_ids(rt: CenterRuntime, teams: set[str | None]) -> set[int]:
    found = (versions.active_version(rt.db, team) for team in teams)
    return {row.version_id for row in found if row is not None}


@router.get("/policy", response_model=PolicyDocument,
            responses={401: {"description": "unauthorized, bad_signature or clock_skew"},
                       403: {"description": "retired"}})
async def policy(request: Request, team: TeamQ = None) -> JSONResponse:
    """The effective call standards: a signed workstation gets its own (its team's override
    merged over the fleet's), the admin the fleet's or, with ``?team=``, a team's."""
    rt = runtime(request)
    if has_signature(request):
        caller = await require_workstation(request)
        assert caller.agent_id is not None
        eff = await run_in_threadpool(rt.policies.for_agent, caller.agent_id)
    else:
        await run_in_threadpool(authorize_for, request, "policy.read")
        eff = await run_in_threadpool(rt.policies.effective, team)
    return JSONResponse(document(eff))


@router.get("/policy/versions", response_model=PolicyVersionList)
async def list_policy_versions(request: Request, _: Person, team: TeamQ = None,
                               every: bool = False,
                               limit: Annotated[int, Query(ge=1, le=1000)] = 100
                               ) -> dict[str, Any]:
    """The history, newest first: the fleet's, one team's (``?team=``), or every scope's
    (``?every=true``)."""
    rt = runtime(request)

    def load() -> dict[str, Any]:
        rows = versions.list_versions(rt.db, team, every_scope=every, limit=limit)
        active = _active_ids(rt, {r.team for r in rows})
        return {"versions": [version_json(r, active) for r in rows]}

    return await run_in_threadpool(load)


@router.get("/policy/versions/{version_id}", response_model=PolicyVersionDetail,
            responses={404: {"description": "unknown version"}})
async def show_policy_version(request: Request, version_id: int, _: Person) -> dict[str, Any]:
    """One version with its text."""
    rt = runtime(request)

    def load() -> dict[str, Any] | None:
        row = versions.get_version(rt.db, version_id) if 1 <= version_id <= 2**62 else None
        return None if row is None else version_json(row, _active_ids(rt, {row.team}),
                                                     with_text=True)

    found = await run_in_threadpool(load)
    if found is None:
        raise APIError(404, "not_found", "unknown policy version")
    return found


@router.post("/policy/versions", status_code=201, response_model=PolicyVersionDetail,
             openapi_extra=json_body(PolicyChange), responses=REFUSED)
async def create_policy_version(request: Request, who: Person) -> JSONResponse:
    """A new active version of the fleet's policy or of a team's override, validated by the
    agent's parser (422 ``invalid_policy`` with its reason: nothing stored). Workstations pick
    it up at their next heartbeat."""
    req = await read_json(request, PolicyChange)
    if req.toml is not None and "\x00" in req.toml:
        raise APIError(422, "invalid_policy", "the policy contains NUL characters")
    rt = runtime(request)
    try:
        row = await run_in_threadpool(
            versions.add_version, rt.db, req.team, req.toml, author=who.subject,
            comment=req.comment, now=rt.now,
            audit=audit_event(who, request, "policy.change", _scope_target(req.team)))
    except PolicyRefused as exc:
        raise APIError(422, "invalid_policy", str(exc)) from None
    assert row is not None
    rt.policies.changed()
    return JSONResponse(version_json(row, {row.version_id}, with_text=True), status_code=201)


@router.post("/policy/rollback", status_code=201, response_model=PolicyVersionDetail,
             openapi_extra=json_body(PolicyRollback),
             responses={**REFUSED, 404: {"description": "unknown version"}})
async def roll_back_policy(request: Request, who: Person) -> JSONResponse:
    """Make an older version's text active again in its scope, recorded as a new version."""
    req = await read_json(request, PolicyRollback)
    rt = runtime(request)
    try:
        row = await run_in_threadpool(
            versions.roll_back, rt.db, req.version_id, author=who.subject, comment=req.comment,
            now=rt.now, audit=audit_event(who, request, "policy.rollback"))
    except LookupError:
        raise APIError(404, "not_found", "unknown policy version") from None
    except PolicyRefused as exc:
        raise APIError(422, "invalid_policy", str(exc)) from None
    rt.policies.changed()
    return JSONResponse(version_json(row, {row.version_id}, with_text=True), status_code=201)


@router.get("/policy/diff", response_model=PolicyDiff,
            responses={404: {"description": "unknown version"}})
async def diff_policy_versions(request: Request, _: Person,
                               from_version: Annotated[int, Query(alias="from", ge=1,
                                                                  le=2**62)],
                               to_version: Annotated[int, Query(alias="to", ge=1, le=2**62)]
                               ) -> dict[str, Any]:
    """A unified diff of two versions' texts."""
    rt = runtime(request)
    a, b = await run_in_threadpool(lambda: (versions.get_version(rt.db, from_version),
                                            versions.get_version(rt.db, to_version)))
    if a is None or b is None:
        raise APIError(404, "not_found", "unknown policy version")
    return {"from_version": a.version_id, "to_version": b.version_id,
            "diff": versions.diff_versions(a, b)}
