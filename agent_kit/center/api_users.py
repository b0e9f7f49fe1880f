"""The center's people: named users with a role and teams (admin only), each with a key of
their own (``usr_...``, shown once, stored hashed) for the API (Bearer) and the dashboard login.
The audit log's routes are here too (admin only)."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from starlette.concurrency import run_in_threadpool

from agent_kit.center.audit import ACTION_PATTERN, AuditFilter, AuditRow
from agent_kit.center.auth import audit_event, authorize, runtime
from agent_kit.center.errors import APIError
from agent_kit.center.models import (
    USER_NAME_PATTERN,
    AuditPage,
    UserChange,
    UserCreate,
    UserCreated,
    UserInfo,
    UserKey,
    UserList,
)
from agent_kit.center.principals import Principal
from agent_kit.center.request_bodies import json_body, read_json
from agent_kit.center.store import UserRow
from agent_kit.center.untrusted_text import csv_cell
from agent_kit.core.wire.text import LINE_PATTERN

router = APIRouter(prefix="/api/v1")
Person = Annotated[Principal, Depends(authorize)]
AUDIT_CSV_LIMIT = 100_000


def _ts(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds")


def user_json(u: UserRow) -> dict[str, Any]:
    return {"name": u.name, "role": u.role, "teams": None if u.teams is None else list(u.teams),
            "note": u.note, "created_at": _ts(u.created_at), "updated_at": _ts(u.updated_at)}


def grant_refusal(role: str, teams: list[str] | tuple[str, ...] | None) -> str | None:
    """Why ``role`` with ``teams`` is not a grant the center makes, or None."""
    if role == "supervisor" and not teams:
        return "a supervisor needs at least one team (\"teams\": [\"tokyo-1\"])"
    if role == "admin" and teams:
        return "an admin sees every team: give no \"teams\""
    return None


def _name_form(name: str) -> bool:
    import re

    return re.fullmatch(USER_NAME_PATTERN, name) is not None


@router.get("/users", response_model=UserList)
async def users(request: Request, who: Person) -> dict[str, Any]:
    return {"users": [user_json(u) for u in await run_in_threadpool(runtime(request).store.users)]}


@router.post("/users", status_code=201, response_model=UserCreated,
             openapi_extra=json_body(UserCreate), responses={409: {"description": "taken"}})
async def create_user(request: Request, who: Person) -> JSONResponse:
    """A new user with a role and teams; their key is in the answer, once."""
    req = await read_json(request, UserCreate)
    if (why := grant_refusal(req.role, req.teams)) is not None:
        raise APIError(422, "invalid_grant", why)
    rt = runtime(request)
    teams = None if req.teams is None else tuple(sorted(set(req.teams)))
    made = await run_in_threadpool(rt.store.create_user, req.name, req.role, teams, req.note,
                                   rt.now, audit_event(who, request, "user.create"))
    if made is None:
        raise APIError(409, "conflict", f"there is a user named {req.name} already")
    user, key = made
    return JSONResponse({"user": user_json(user), "key": key}, status_code=201)


@router.patch("/users/{name}", response_model=UserInfo, openapi_extra=json_body(UserChange),
              responses={404: {"description": "unknown user"}})
async def change_user(request: Request, name: str, who: Person) -> dict[str, Any]:
    """Change a user's role, teams or note (``"teams": null``: every team, for a viewer);
    their sessions follow from their next request."""
    req = await read_json(request, UserChange)
    rt = runtime(request)
    old = await run_in_threadpool(rt.store.user, name) if _name_form(name) else None
    if old is None:
        raise APIError(404, "not_found", "unknown user")
    given = req.model_fields_set
    role = req.role if req.role is not None else old.role
    teams = (None if req.teams is None else tuple(sorted(set(req.teams)))) \
        if "teams" in given else old.teams
    if role == "admin" and "teams" not in given:
        teams = None
    note = req.note if "note" in given else old.note
    if (why := grant_refusal(role, teams)) is not None:
        raise APIError(422, "invalid_grant", why)
    changed = await run_in_threadpool(rt.store.change_user, name, role, teams, note, rt.now,
                                      audit_event(who, request, "user.change"))
    if changed is None:
        raise APIError(404, "not_found", "unknown user")
    return user_json(changed)


@router.post("/users/{name}/key", response_model=UserKey,
             responses={404: {"description": "unknown user"}})
async def new_key(request: Request, name: str, who: Person) -> dict[str, str]:
    """A new key for the user (shown once); the old key and its sessions stop at once."""
    rt = runtime(request)
    key = await run_in_threadpool(rt.store.new_user_key, name, rt.now, audit_event(
        who, request, "user.new_key", name)) if _name_form(name) else None
    if key is None:
        raise APIError(404, "not_found", "unknown user")
    return {"key": key}


@router.delete("/users/{name}", status_code=204,
               responses={404: {"description": "unknown user"}})
async def delete_user(request: Request, name: str, who: Person) -> Response:
    """Delete a user: their key and sessions stop at once; the audit log keeps their name."""
    rt = runtime(request)
    if not _name_form(name) or not await run_in_threadpool(
            rt.store.delete_user, name, rt.now, audit_event(who, request, "user.delete", name)):
        raise APIError(404, "not_found", "unknown user")
    return Response(status_code=204)


# -- the audit log ----------------------------------------------------------------------------
SinceQ = Annotated[datetime | None, Query(description="from this time (ISO 8601), inclusive")]
ActorQ = Annotated[str | None, Query(max_length=200, pattern=LINE_PATTERN)]
ActionQ = Annotated[str | None, Query(pattern=ACTION_PATTERN)]


def _audit_filter(since: datetime | None, until: datetime | None, actor: str | None,
                  action: str | None) -> AuditFilter:
    for name, value in (("since", since), ("until", until)):
        if value is not None and value.tzinfo is None:
            raise APIError(422, "validation_error", [{
                "loc": ["query", name], "msg": "a time needs its UTC offset (…Z or +09:00)",
                "type": "timezone_aware"}])
    return AuditFilter(since=since.timestamp() if since else None,
                       until=until.timestamp() if until else None, actor=actor or None,
                       action=action or None)


def _event_json(e: AuditRow) -> dict[str, Any]:
    return {"event_id": e.event_id, "at": _ts(e.at), "actor": e.actor, "source": e.source,
            "action": e.action, "target": e.target, "detail": e.detail}


@router.get("/audit", response_model=AuditPage)
async def audit_log(request: Request, who: Person, since: SinceQ = None, until: SinceQ = None,
                    actor: ActorQ = None, action: ActionQ = None,
                    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
                    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0) -> dict[str, Any]:
    """Who did what and when, newest first: ``total`` (filtered) and one page of events."""
    rt = runtime(request)
    total, rows = await run_in_threadpool(rt.store.audit_events,
                                          _audit_filter(since, until, actor, action), limit,
                                          offset)
    return {"total": total, "events": [_event_json(e) for e in rows]}


AUDIT_COLUMNS = ("at", "actor", "source", "action", "target", "detail", "event_id")


@router.get("/audit.csv", response_class=PlainTextResponse)
async def audit_csv(request: Request, who: Person, since: SinceQ = None, until: SinceQ = None,
                    actor: ActorQ = None, action: ActionQ = None) -> Response:
    """The filtered audit log as CSV, newest first (cells that would be formulas neutralised)."""
    import json

    rt = runtime(request)
    _total, rows = await run_in_threadpool(rt.store.audit_events,
                                           _audit_filter(since, until, actor, action),
                                           AUDIT_CSV_LIMIT, 0)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(AUDIT_COLUMNS)
    for e in rows:
        writer.writerow([csv_cell(v) for v in (
            _ts(e.at), e.actor, e.source, e.action, e.target or "",
            json.dumps(e.detail, ensure_ascii=False, sort_keys=True) if e.detail else "",
            e.event_id)])
    stamp = datetime.fromtimestamp(rt.now, UTC).strftime("%Y%m%d-%H%M%S")
    return Response(out.getvalue(), media_type="text/csv; charset=utf-8", headers={
        "Content-Disposition": f'attachment; filename="agent-center-audit-{stamp}.csv"'})
