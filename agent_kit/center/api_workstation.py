"""What workstations call: enrollment, heartbeats, diagnosis reports (the policy: ``api_policy``)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from agent_kit.center.auth import (
    Caller,
    failure,
    refuse_if_throttled,
    request_source,
    require_single_use_workstation,
    require_workstation,
    runtime,
)
from agent_kit.center.errors import APIError
from agent_kit.center.models import (
    EnrollRequest,
    EnrollResponse,
    HeartbeatAck,
    HeartbeatBatch,
)
from agent_kit.center.request_bodies import json_body, read_json

router = APIRouter(prefix="/api/v1")
Workstation = Annotated[Caller, Depends(require_workstation)]
SingleUseWorkstation = Annotated[Caller, Depends(require_single_use_workstation)]
ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "unauthorized, bad_signature or clock_skew"},
    403: {"description": "retired"}}


@router.post("/enroll", status_code=201, response_model=EnrollResponse,
             openapi_extra=json_body(EnrollRequest), responses={401: {"description":
                                                                      "invalid_token"}})
async def enroll(request: Request) -> JSONResponse:
    """Exchange an enrollment token for this workstation's id and secret."""
    from starlette.concurrency import run_in_threadpool

    from agent_kit.center.credentials import derive_secret

    rt = runtime(request)
    source = request_source(request)
    refuse_if_throttled(rt, source)   # each try is a database write: none while throttled
    req = await read_json(request, EnrollRequest)
    now = rt.now
    made = await run_in_threadpool(rt.store.enroll, req.token, req.hostname, req.display_name,
                                   now)
    if made is None:
        raise failure(rt, source, APIError(401, "invalid_token",
                                           "unknown, expired, revoked or used-up token"))
    agent_id, nonce = made
    body = EnrollResponse(agent_id=agent_id, secret=derive_secret(rt.center_key, agent_id, nonce),
                          heartbeat_interval_s=rt.settings.heartbeat_interval_s,
                          server_time=int(now))
    return JSONResponse(body.model_dump(), status_code=201)


@router.post("/heartbeats", response_model=HeartbeatAck, openapi_extra=json_body(HeartbeatBatch),
             responses={**ERRORS, 409: {"description": "seq_conflict"}})
async def heartbeats(request: Request, caller: Workstation) -> JSONResponse:
    """Store a batch of heartbeats; answered once committed. (The served app answers this in
    ``heartbeat_route.HeartbeatFastPath`` before FastAPI, with the same functions.)"""
    from agent_kit.center.heartbeat_route import accept_heartbeats

    assert caller.agent_id is not None
    ack = await accept_heartbeats(runtime(request), caller.agent_id,
                                  request.headers.get("content-type", ""), await request.body())
    return JSONResponse(ack)


@router.post("/reports", status_code=201, openapi_extra={"requestBody": {
    "required": True, "content": {"text/html": {"schema": {"type": "string"}}}}},
    responses={**ERRORS, 409: {"description": "replayed"}, 429: {"description": "report_quota"}})
async def upload_report(request: Request, caller: SingleUseWorkstation) -> JSONResponse:
    """A diagnosis report (HTML, 2 MiB max) for the agent's dashboard page, within the
    workstation's quotas (``serve --reports-per-hour``, ``--report-storage-mib``)."""
    from starlette.concurrency import run_in_threadpool

    from agent_kit.center.store import ReportQuota
    from agent_kit.center.throttle import retry_after_header

    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != "text/html":
        raise APIError(415, "unsupported_media_type", "send the report as text/html")
    raw = await request.body()
    try:
        html = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise APIError(400, "bad_request", "the report is not UTF-8 text") from None
    if "\x00" in html:
        raise APIError(400, "bad_request", "the report contains NUL characters")
    rt = runtime(request)
    assert caller.agent_id is not None
    try:
        report_id = await run_in_threadpool(
            rt.store.add_report, caller.agent_id, html, rt.now,
            per_hour=rt.settings.reports_per_hour,
            storage_bytes=rt.settings.report_storage_bytes)
    except ReportQuota as exc:
        raise APIError(429, "report_quota", str(exc), headers={
            "Retry-After": retry_after_header(exc.retry_after_s)}) from None
    return JSONResponse({"report_id": report_id}, status_code=201)
