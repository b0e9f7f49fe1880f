"""What IT, the dashboard and the ACD/SSO call: the fleet, one agent's history, tokens, the
dashboard session, the login gate and its clearance key, health and metrics."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.concurrency import run_in_threadpool

from agent_kit import __version__
from agent_kit.center.audit import AuditEvent
from agent_kit.center.auth import (
    SESSION_COOKIE,
    USER_KEY_PREFIX,
    audit_event,
    authorize,
    authorize_for,
    failure,
    has_signature,
    principal_of_secret,
    refuse_if_throttled,
    request_source,
    require_single_use_workstation,
    runtime,
    start_session,
)
from agent_kit.center.clearance import NONCE_PATTERN
from agent_kit.center.errors import APIError
from agent_kit.center.fleet import agent_view, iso
from agent_kit.center.models import (
    AgentChange,
    AgentDetail,
    AgentList,
    ClearanceKey,
    GateDecision,
    Health,
    HeartbeatHistory,
    ReportList,
    SessionInfo,
    SessionRequest,
    TokenCreate,
    TokenCreated,
    TokenList,
)
from agent_kit.center.principals import Principal
from agent_kit.center.request_bodies import json_body, read_json
from agent_kit.center.store import SORTS, STATES, AgentFilter
from agent_kit.center.teams import TeamName
from agent_kit.center.untrusted_text import csv_cell
from agent_kit.center.viewer_language import localized_heartbeat, render_all, viewer_language
from agent_kit.core.wire.text import LINE_PATTERN

router = APIRouter()
# The principal, allowed by the route's rule (principals.ROUTE_ACCESS); team scoping is the
# route's own (a workstation of a team it does not see is unknown: 404).
Person = Annotated[Principal, Depends(authorize)]
# What every id the center makes (agents, tokens, reports) looks like: a path segment that
# does not is answered "unknown" without a query (a NUL in one made PostgreSQL fail).
ID_FORM = re.compile(r"[A-Za-z0-9_.-]{1,64}")
CHECK_ID = r"^[a-z_]{1,20}\.[a-z_]{1,30}$"
CSV_LIMIT = 1_000_000


def _id_form(text: str, max_chars: int = 64) -> bool:
    """Whether a path segment can be an id the center made (else it is unknown: not looked up)."""
    return len(text) <= max_chars and ID_FORM.fullmatch(text) is not None


def _ts(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds")


@router.api_route("/healthz", methods=["GET", "HEAD"], response_model=Health)
async def healthz(request: Request) -> dict[str, Any]:
    """Public: the center is up, and where workstations probe (reflector, bandwidth)."""
    s = runtime(request).settings
    return {"status": "ok", "version": __version__,
            "reflector": {"host": s.reflector_host, "port": s.reflector_port},
            "speedtest_path": "/speedtest/" if s.mount_speedtest else None,
            "test_call": _offer_json(request)}


def _offer_json(request: Request) -> dict[str, Any] | None:
    """The scored test call this center offers (``core/wire/test_call.py``), None if none."""
    offer = getattr(request.app.state, "test_call_offer", None)
    return offer.to_json() if offer is not None else None


# -- dashboard session ---------------------------------------------------------------------
@router.post("/api/v1/session", status_code=204, openapi_extra=json_body(SessionRequest),
             responses={401: {"description": "wrong token"}})
async def login(request: Request) -> Response:
    """Exchange the admin token or a user's key for an HttpOnly session cookie."""
    rt = runtime(request)
    source = request_source(request)
    refuse_if_throttled(rt, source)   # the admin token may be a person's choice: no guessing
    req = await read_json(request, SessionRequest)
    principal = await run_in_threadpool(principal_of_secret, rt, req.token)
    user_key = req.token.startswith(USER_KEY_PREFIX)
    method = "user_key" if user_key else "admin_token"
    if principal is None:
        # recorded without the secret: only what kind of credential was tried
        await run_in_threadpool(rt.store.record, AuditEvent(
            "anonymous", source, "login_failed", None, {"method": method}), rt.now)
        raise failure(rt, source, APIError(401, "unauthorized",
                                           "that is not the admin token or a user's key"))
    response = Response(status_code=204)
    await run_in_threadpool(start_session, rt, response, principal, source, method)
    return response


@router.get("/api/v1/session", response_model=SessionInfo)
async def whoami(request: Request, who: Person) -> dict[str, object]:
    """Who the caller is: subject, role and teams (what the dashboard may offer them)."""
    return who.to_json()


@router.delete("/api/v1/session", status_code=204)
async def logout(request: Request) -> Response:
    # No Origin check here: another site's page cannot send a DELETE at all (not without a
    # CORS preflight, which the center never answers), and logging out must always work.
    session = request.cookies.get(SESSION_COOKIE)
    if session and len(session) <= 200:
        rt = runtime(request)
        await run_in_threadpool(rt.store.delete_session, session, rt.now, AuditEvent(
            "", request_source(request), "logout"))
    response = Response(status_code=204)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


# -- enrollment tokens -----------------------------------------------------------------------
@router.post("/api/v1/tokens", status_code=201, response_model=TokenCreated,
             openapi_extra=json_body(TokenCreate))
async def create_token(request: Request, who: Person) -> JSONResponse:
    req = await read_json(request, TokenCreate)
    rt = runtime(request)
    if not who.sees_team(req.team) or (who.role != "admin" and req.team is None):
        raise APIError(403, "forbidden", "a supervisor makes enrollment tokens only for their "
                       f"teams ({', '.join(who.team_scope or ())}): give one as \"team\"")
    token, token_id, expires = await run_in_threadpool(
        rt.store.create_token, req.uses, req.ttl_s, req.note, rt.now, req.team,
        audit_event(who, request, "token.create"))
    return JSONResponse({"token": token, "token_id": token_id, "expires_at": _ts(expires),
                         "team": req.team}, status_code=201)


@router.get("/api/v1/tokens", response_model=TokenList)
async def list_tokens(request: Request, who: Person) -> dict[str, Any]:
    rt = runtime(request)
    rows = [t for t in await run_in_threadpool(rt.store.tokens) if who.sees_team(t.team)]
    now = rt.now
    return {"tokens": [{
        "token_id": t.token_id, "note": t.note, "uses": t.uses_max, "used": t.uses,
        "created_at": _ts(t.created_at), "expires_at": _ts(t.expires_at),
        "revoked_at": _ts(t.revoked_at) if t.revoked_at else None,
        "active": t.revoked_at is None and t.expires_at > now and t.uses < t.uses_max,
        "team": t.team,
    } for t in rows]}


@router.delete("/api/v1/tokens/{token_id}", status_code=204,
               responses={404: {"description": "unknown token"}})
async def revoke_token_by_id(request: Request, token_id: str, who: Person) -> Response:
    """Revoke an enrollment token (workstations already enrolled keep their credentials)."""
    rt = runtime(request)
    found = await run_in_threadpool(rt.store.token, token_id) if _id_form(token_id, 32) \
        else None
    if found is None or not who.sees_team(found.team) or not await run_in_threadpool(
            rt.store.revoke_token, token_id, rt.now,
            audit_event(who, request, "token.revoke", token_id, team=found.team)):
        raise APIError(404, "not_found", "unknown token")
    return Response(status_code=204)


# -- the fleet ------------------------------------------------------------------------------
def _filter(state: str | None, ready: bool | None, q: str | None,
            failing: str | None, team: str | None) -> AgentFilter:
    return AgentFilter(state=state, ready=ready, q=q or None, failing=failing or None,
                       team=team)


StateQ = Annotated[str | None, Query(pattern="^(" + "|".join(STATES) + ")$")]
SortQ = Annotated[str, Query(pattern="^(" + "|".join(s.replace("-", r"\-")
                                                      for s in SORTS) + ")$")]
TextQ = Annotated[str | None, Query(max_length=100, pattern=LINE_PATTERN)]
FailingQ = Annotated[str | None, Query(pattern=CHECK_ID)]
TeamQ = Annotated[TeamName | None, Query(description="only this team's workstations")]


@router.get("/api/v1/agents", response_model=AgentList)
async def agents(request: Request, who: Person, state: StateQ = None, ready: bool | None = None,
                 q: TextQ = None, failing: FailingQ = None, team: TeamQ = None,
                 limit: Annotated[int, Query(ge=1, le=1000)] = 100,
                 offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
                 sort: SortQ = "hostname") -> JSONResponse:
    """One page of the fleet, filtered server-side, with counts over the whole fleet."""
    rt = runtime(request)
    now = rt.now
    total, counts, rows = await run_in_threadpool(
        rt.store.overview, _filter(state, ready, q, failing, team), sort, limit, offset, now,
        who.team_scope)
    return JSONResponse({"total": total, "counts": counts,
                         "agents": [agent_view(r, now) for r in rows]})


CSV_COLUMNS = ("agent_id", "hostname", "display_name", "team", "state", "ready", "verdict",
               "failing", "last_seen", "since", "interval_s", "agent_version", "last_seq")


@router.get("/api/v1/agents.csv", response_class=PlainTextResponse)
async def agents_csv(request: Request, who: Person, state: StateQ = None,
                     ready: bool | None = None, q: TextQ = None, failing: FailingQ = None,
                     team: TeamQ = None, sort: SortQ = "hostname") -> Response:
    """The filtered fleet as CSV (a spreadsheet-safe export: formulas are neutralised)."""
    rt = runtime(request)
    now = rt.now
    _total, _counts, rows = await run_in_threadpool(
        rt.store.overview, _filter(state, ready, q, failing, team), sort, CSV_LIMIT, 0, now,
        who.team_scope)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for row in rows:
        view = agent_view(row, now)
        cells = []
        for col in CSV_COLUMNS:
            value = view[col]
            text = ";".join(value) if isinstance(value, list) else \
                "" if value is None else str(value).lower() if isinstance(value, bool) \
                else str(value)
            # CSV injection: no cell may be a formula, whichever column (most hold text a
            # workstation wrote: hostname, display name, version)
            cells.append(csv_cell(text))
        writer.writerow(cells)
    stamp = datetime.fromtimestamp(now, UTC).strftime("%Y%m%d-%H%M%S")
    return Response(out.getvalue(), media_type="text/csv; charset=utf-8", headers={
        "Content-Disposition": f'attachment; filename="agent-fleet-{stamp}.csv"'})


async def _agent_row(request: Request, agent_id: str, who: Principal) -> Any:
    """The workstation, if ``who`` sees its team; else 404 as for one that does not exist."""
    rt = runtime(request)
    if not _id_form(agent_id):
        raise APIError(404, "not_found", "unknown agent")
    row = await run_in_threadpool(rt.store.agent, agent_id)
    if row is None or not who.sees_team(row.team):
        raise APIError(404, "not_found", "unknown agent")
    return row


@router.get("/api/v1/agents/{agent_id}", response_model=AgentDetail,
            responses={404: {"description": "unknown agent"}})
async def agent(request: Request, agent_id: str, who: Person) -> JSONResponse:
    rt = runtime(request)
    row = await _agent_row(request, agent_id, who)
    latest = await run_in_threadpool(rt.store.latest_heartbeat, agent_id)
    # the workstation's messages in the reader's language (?lang=, cookie, Accept-Language)
    return JSONResponse({**agent_view(row, rt.now),
                         "latest": localized_heartbeat(latest, viewer_language(request))})


@router.patch("/api/v1/agents/{agent_id}", response_model=AgentDetail,
              openapi_extra=json_body(AgentChange),
              responses={404: {"description": "unknown agent"}})
async def change_agent(request: Request, agent_id: str, who: Person) -> JSONResponse:
    """Move a workstation to another team (``{"team": "tokyo-2"}``; null: no team)."""
    req = await read_json(request, AgentChange)
    rt = runtime(request)
    if not _id_form(agent_id) or not await run_in_threadpool(
            rt.store.set_team, agent_id, req.team, rt.now,
            audit_event(who, request, "agent.move", agent_id)):
        raise APIError(404, "not_found", "unknown agent")
    return await agent(request, agent_id, who)


@router.get("/api/v1/agents/{agent_id}/heartbeats", response_model=HeartbeatHistory,
            responses={404: {"description": "unknown agent"}})
async def heartbeats(request: Request, agent_id: str, who: Person,
                     since_seq: Annotated[int, Query(ge=0, le=2**62)] = 0,
                     limit: Annotated[int, Query(ge=1, le=5000)] = 1000) -> JSONResponse:
    """Stored heartbeats after ``since_seq``, in seq order (page with the last seq)."""
    await _agent_row(request, agent_id, who)
    rows = await run_in_threadpool(runtime(request).store.heartbeats, agent_id, since_seq, limit)
    lang = viewer_language(request)
    return JSONResponse({"heartbeats": [localized_heartbeat(r, lang) for r in rows]})


@router.post("/api/v1/agents/{agent_id}/retire", responses={404: {"description": "unknown"}})
async def retire(request: Request, agent_id: str, who: Person) -> JSONResponse:
    """Revoke the workstation's credential: its requests are refused from now on."""
    rt = runtime(request)
    row = await _agent_row(request, agent_id, who)
    if not await run_in_threadpool(rt.store.retire, agent_id, rt.now, audit_event(
            who, request, "agent.retire", agent_id, team=row.team)):
        raise APIError(404, "not_found", "unknown agent")
    rt.forget_agent(agent_id)
    return JSONResponse({"agent_id": agent_id, "state": "retired"})


@router.get("/api/v1/agents/{agent_id}/reports", response_model=ReportList)
async def reports(request: Request, agent_id: str, who: Person) -> dict[str, Any]:
    await _agent_row(request, agent_id, who)
    rows = await run_in_threadpool(runtime(request).store.reports, agent_id)
    return {"reports": [{"report_id": r, "created_at": _ts(t), "size_bytes": n}
                        for r, t, n in rows]}


@router.get("/api/v1/agents/{agent_id}/reports/{report_id}", response_class=HTMLResponse)
async def report(request: Request, agent_id: str, report_id: str, who: Person) -> Response:
    """One uploaded report, shown sandboxed: its scripts cannot reach the dashboard."""
    if not _id_form(agent_id) or not _id_form(report_id, 32):
        raise APIError(404, "not_found", "unknown report")
    await _agent_row(request, agent_id, who)
    html = await run_in_threadpool(runtime(request).store.report, agent_id, report_id)
    if html is None:
        raise APIError(404, "not_found", "unknown report")
    return HTMLResponse(html, headers={"Content-Security-Policy": "sandbox; default-src 'none';"
                                       " img-src data:; style-src 'unsafe-inline'",
                                       "X-Content-Type-Options": "nosniff"})


# -- the login gate ---------------------------------------------------------------------------
NonceQ = Annotated[str | None, Query(pattern=NONCE_PATTERN, description=(
    "optional: 16 to 128 characters of A-Z a-z 0-9 - _, signed into the clearance's `nonce` "
    "claim so the caller can tell it answers this request"))]


@router.get("/api/v1/gate/{agent_id}", response_model=GateDecision,
            responses={401: {"description": "gate key, admin token or that workstation"}})
async def gate(request: Request, agent_id: str, nonce: NonceQ = None) -> JSONResponse:
    """May this agent log in now? Allowed answers carry a signed, short-lived clearance, with
    the request's ``nonce`` signed in when it sent one (a workstation's signed request is
    served once: a replay gets 409 ``replayed``)."""
    from agent_kit.center.gate import decide

    rt = runtime(request)
    if has_signature(request):
        caller = await require_single_use_workstation(request)
        if caller.agent_id != agent_id:
            raise APIError(403, "forbidden", "a workstation may ask only about itself")
    else:
        await run_in_threadpool(authorize_for, request, "gate.ask")
    now = rt.now
    row = await run_in_threadpool(rt.store.agent, agent_id) if _id_form(agent_id) else None
    latest = await run_in_threadpool(rt.store.latest_heartbeat, agent_id) if row else None
    verdict = decide(row, latest, now, rt.policy.policy)
    return JSONResponse({"allowed": verdict.allowed,
                         "reasons": render_all(verdict.reasons, viewer_language(request)),
                         "as_of": iso(now),
                         "clearance": rt.signer.sign(agent_id, now, nonce) if verdict.allowed
                         else None})


@router.get("/api/v1/clearance-key", response_model=ClearanceKey)
async def clearance_key(request: Request) -> dict[str, str]:
    """Public: the Ed25519 key that verifies clearances offline."""
    return {"alg": "EdDSA", "public_key_pem": runtime(request).signer.public_pem}


# -- metrics --------------------------------------------------------------------------------
@router.get("/metrics", response_class=PlainTextResponse)
async def metrics(request: Request) -> Response:
    """Prometheus text (or OpenMetrics, as ``Accept`` asks): the fleet by state, readiness,
    failing checks, heartbeats stored, this center's intake counters."""
    rt = runtime(request)
    if not rt.settings.metrics_public:
        await run_in_threadpool(authorize_for, request, "metrics.read")
    body, content_type = await run_in_threadpool(rt.metrics.render,
                                                 request.headers.get("accept"))
    return Response(body, media_type=content_type)
