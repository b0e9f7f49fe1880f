"""Who is calling: the admin (bearer token or dashboard session cookie), a gate client (gate
key), or a workstation (HMAC request signature, docs/center-api.md). FastAPI dependencies."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from fastapi import Request

from agent_kit.center import credentials
from agent_kit.center.errors import APIError
from agent_kit.center.runtime import CenterRuntime
from agent_kit.core.wire import signing

log = logging.getLogger("agent_kit.center")
SESSION_COOKIE = "agent_center_session"
Role = Literal["admin", "gate", "workstation"]


@dataclass(frozen=True)
class Caller:
    role: Role
    agent_id: str | None = None


def runtime(request: Request) -> CenterRuntime:
    rt: CenterRuntime = request.app.state.center
    return rt


def _bearer(request: Request) -> str | None:
    value = request.headers.get("authorization")
    if not value:
        return None
    scheme, _, token = value.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or len(token) > 200:
        return None
    return token


def _unauthorized(detail: str) -> APIError:
    return APIError(401, "unauthorized", detail, headers={"WWW-Authenticate": "Bearer"})


def caller_admin(request: Request) -> Caller | None:
    rt = runtime(request)
    token = _bearer(request)
    if token is not None and rt.admin_token_valid(token):
        return Caller("admin")
    session = request.cookies.get(SESSION_COOKIE)
    if session and len(session) <= 200 and rt.store.session_valid(session, rt.now):
        return Caller("admin")
    return None


def require_admin(request: Request) -> Caller:
    found = caller_admin(request)
    if found is None:
        raise _unauthorized("an admin token (Bearer) or a dashboard session is needed")
    return found


def caller_gate(request: Request) -> Caller | None:
    token = _bearer(request)
    if token is not None and token.startswith("gate_") and \
            runtime(request).store.gate_key_valid(credentials.token_hash(token)):
        return Caller("gate")
    return None


def has_signature(request: Request) -> bool:
    return signing.AGENT_ID_HEADER in request.headers   # (case-insensitive)


async def require_workstation(request: Request) -> Caller:
    """Verify the HMAC signature over method, path, timestamp and body."""
    rt = runtime(request)
    headers = request.headers
    agent_id, timestamp, signature = signature_headers(
        rt, headers.get(signing.AGENT_ID_HEADER), headers.get(signing.TIMESTAMP_HEADER),
        headers.get(signing.SIGNATURE_HEADER))
    body = await request.body()
    await verify_workstation(rt, request.method, request.url.path, agent_id, timestamp, body,
                             signature)
    return Caller("workstation", agent_id)


def signature_headers(rt: CenterRuntime, agent_id: str | None, timestamp: str | None,
                      signature: str | None) -> tuple[str, str, str]:
    """The three signature headers, well-formed and with a timestamp inside the clock window
    (checked before the body is read); else 401 ``unauthorized``/``bad_signature``/
    ``clock_skew``. One implementation for the FastAPI routes and the heartbeat fast path; the
    form and the window are ``core.wire.signing``'s."""
    try:
        found = signing.parse_signature_headers(agent_id, timestamp, signature)
    except signing.SignatureMissing as exc:
        raise APIError(401, "unauthorized", str(exc)) from None
    except signing.SignatureMalformed as exc:
        raise APIError(401, "bad_signature", str(exc)) from None
    now = rt.now
    if not signing.within_clock_window(found[1], now, rt.settings.clock_window_s):
        raise APIError(401, "clock_skew", f"timestamp is more than "
                       f"{rt.settings.clock_window_s} s from the center's clock",
                       extra={"server_time": int(now)})
    return found


async def verify_workstation(rt: CenterRuntime, method: str, path: str, agent_id: str,
                             timestamp: str, body: bytes, signature: str) -> None:
    """The signature matches this workstation's secret and the workstation is not retired;
    else 401 ``bad_signature`` / 403 ``retired``."""
    if rt.sweep_due():  # retirements made elsewhere, in the background (within 30 s)
        _in_background(rt.sweep_retired)
    auth = rt.cached_agent_auth(agent_id)
    if auth is None:
        from starlette.concurrency import run_in_threadpool

        auth = await run_in_threadpool(rt.agent_auth, agent_id)
    # Unknown agent and wrong signature look the same (no oracle for agent ids).
    if auth is None or not signing.signature_matches(
            auth[0], method, path, timestamp, body, signature):
        raise APIError(401, "bad_signature", "the request signature does not match")
    if auth[1]:
        raise APIError(403, "retired", "this workstation was retired; enroll it again")


def _in_background(work: Callable[[], None]) -> None:
    import asyncio

    def done(future: asyncio.Future[None]) -> None:
        if not future.cancelled() and future.exception() is not None:
            log.warning("credential cache sweep failed: %s", type(future.exception()).__name__)

    asyncio.get_running_loop().run_in_executor(None, work).add_done_callback(done)
