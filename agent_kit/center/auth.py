"""Who is calling, and whether they may: the principal of a request (``principals.Principal``:
the admin token, a named user's key, a dashboard session of either or of an OpenID Connect
login, a gate key; a workstation by its HMAC request signature, docs/center-api.md), checked
against the route's rule (``principals.ROUTE_ACCESS``). FastAPI dependencies.

Every dashboard session, whatever the login, is made by :func:`start_session` ("create a
session for principal X"): the admin-token and user-key login here, and an OpenID Connect
login, which maps its claims to a ``Principal`` (role, teams, subject) and calls it the same way.

And what a hostile caller meets here (docs/center-api.md, "Refusals of hostile callers"):

- failed attempts are counted per source address (``throttle.py``); once an address has spent
  its budget, the credentials a person chooses or types (the admin token, as Bearer or at the
  dashboard login; enrollment tokens, whose check is a database write) are not even checked
  (429 ``too_many_failures``), while the ones the center generated and programs present
  (session cookies, gate keys, workstation signatures) still are, so that one bad client behind
  a shared address (NAT, VPN concentrator) cannot lock the good ones out: a failure among them
  is answered 429 instead of 401;
- a write made with the session cookie must come from the center's own pages
  (``Sec-Fetch-Site: same-origin``, or without that header an ``Origin`` equal to the center's
  own), else 403 ``csrf``: SameSite=Strict does not stop a page on another port of the same
  host (logging out is left free: ``api_admin.logout``);
- a non-idempotent signed request (the gate's clearance, a report upload) is served once per
  signature: the signature is recorded in the database for the clock window, so a replay is
  refused (409 ``replayed``) by every process and host of the center, and after a restart.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from fastapi import Request
from fastapi.responses import Response

from agent_kit.center import credentials
from agent_kit.center.audit import AuditEvent
from agent_kit.center.errors import APIError
from agent_kit.center.principals import ADMIN_TOKEN_SUBJECT, Principal, refusal, route_rule
from agent_kit.center.runtime import CenterRuntime
from agent_kit.center.throttle import retry_after_header
from agent_kit.core.wire import signing

log = logging.getLogger("agent_kit.center")
SESSION_COOKIE = "agent_center_session"
SESSION_MAX_AGE_S = 12 * 3600
USER_KEY_PREFIX = "usr_"
SAFE_METHODS = frozenset(("GET", "HEAD", "OPTIONS"))
# A used signature is kept this long past the clock window: center hosts' clocks differ a little.
USED_SIGNATURE_MARGIN_S = 60


# What the routes are given: the principal the request acts for.
Caller = Principal


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


class TooManyFailures(APIError):
    """429 ``too_many_failures``: this address failed to authenticate too often."""

    def __init__(self, wait_s: float) -> None:
        seconds = retry_after_header(wait_s)
        super().__init__(429, "too_many_failures", "too many failed authentication attempts "
                         f"from this address; retry in {seconds} s",
                         headers={"Retry-After": seconds})


def client_source(client: Sequence[object] | None) -> str:
    """The address of an ASGI ``client`` (``scope["client"]`` or ``request.client``, both
    ``(host, port)`` or None), as the failure budgets take it (they key it themselves)."""
    host = client[0] if client else None
    return host if isinstance(host, str) else "?"


def request_source(request: Request) -> str:
    return client_source(request.client)


def refuse_if_throttled(rt: CenterRuntime, source: str) -> None:
    """429 before a credential is even checked, while ``source`` has no attempt left."""
    wait = rt.failures.wait_s(source)
    if wait > 0:
        raise TooManyFailures(wait)


def failure(rt: CenterRuntime, source: str, refusal: APIError) -> APIError:
    """Count a failed attempt of ``source``; what to raise: ``refusal``, or 429 when the
    address had no attempt left."""
    wait = rt.failures.take(source)
    return TooManyFailures(wait) if wait else refusal


def require_same_origin(request: Request) -> None:
    """A write made with the session cookie comes from the center's own pages, else 403
    ``csrf``. Browsers say so in ``Sec-Fetch-Site`` (trusted alone when present: an ``Origin``
    may look like ours behind a TLS proxy that hides the scheme); without it, ``Origin`` must
    be the center's own (scheme and ``Host``)."""
    site = request.headers.get("sec-fetch-site")
    if site is not None:
        same = site == "same-origin"
    else:
        origin, host = request.headers.get("origin"), request.headers.get("host")
        same = origin is not None and host is not None and \
            origin.lower() == f"{request.scope.get('scheme', 'http')}://{host}".lower()
    if not same:
        raise APIError(403, "csrf", "a dashboard session may change things only from the "
                       "center's own pages (Sec-Fetch-Site / Origin of another site)")


def authenticate(request: Request) -> Principal | None:
    """The principal of the Bearer credential or the session cookie; None when no credential
    is presented; 401 (or 429) when the one presented is wrong; 403 ``csrf`` for a cookie
    write from another site's page. Gate keys (made by the center, presented by programs) are
    checked even from a throttled address; the admin token and user keys (a person may type
    them) are not."""
    rt = runtime(request)
    token = _bearer(request)
    if token is not None:
        source = request_source(request)
        if token.startswith("gate_"):
            key_id = rt.store.gate_key_id(credentials.token_hash(token))
            if key_id is not None:
                return Principal("gate", f"gate-key:{key_id}")
        refuse_if_throttled(rt, source)
        found = principal_of_secret(rt, token)
        if found is not None:
            return found
        raise failure(rt, source, _unauthorized(
            "that is not the admin token, a user's key or a gate key"))
    session = request.cookies.get(SESSION_COOKIE)
    if session:
        principal = rt.store.session_principal(session, rt.now, rt.session_tag) \
            if len(session) <= 200 else None
        if principal is not None:
            if request.method not in SAFE_METHODS:
                require_same_origin(request)
            return principal
        raise failure(rt, request_source(request),
                      _unauthorized("the dashboard session has ended: log in again"))
    return None


def principal_of_secret(rt: CenterRuntime, secret: str) -> Principal | None:
    """Whose secret this is: a named user's key (``usr_...``) or the admin token; None."""
    if secret.startswith(USER_KEY_PREFIX):
        user = rt.store.user_by_key(secret)
        return user.principal() if user is not None else None
    if rt.admin_token_valid(secret):
        return Principal("admin", ADMIN_TOKEN_SUBJECT)
    return None


def authorize_for(request: Request, action: str) -> Principal:
    """The request's principal if it may do ``action`` (a ``principals.ACTIONS`` key); else
    401 (no or a wrong credential) or 403 ``forbidden`` with the reason."""
    principal = authenticate(request)
    if principal is None:
        raise _unauthorized("a credential is needed: a user's key or the admin token "
                            "(Bearer), or a dashboard session")
    why = refusal(principal, action)
    if why is not None:
        raise APIError(403, "forbidden", why)
    return principal


def authorize(request: Request) -> Principal:
    """FastAPI dependency: the principal, if it may call this route by the route's rule in
    ``principals.ROUTE_ACCESS`` (a route without a rule is refused to everyone)."""
    route = request.scope.get("route")
    rule = route_rule(request.method, getattr(route, "path", ""))
    if rule is None or rule == "public":
        raise APIError(403, "forbidden", "this route has no access rule")
    return authorize_for(request, rule)


def require_admin(request: Request) -> Principal:
    return authorize_for(request, "user.admin")


def start_session(rt: CenterRuntime, response: Response, principal: Principal, source: str,
                  method: str) -> None:
    """Create a dashboard session for ``principal`` and set its cookie on ``response`` (HttpOnly,
    SameSite=Strict, 12 h); the login is recorded in the audit log (``method``: how they
    proved who they are, an id: "admin_token", "user_key", "openid_connect"). Blocking (database):
    call it from a worker thread. A named user's session (``principal.user_id``) takes their
    role and teams from the users table at each request and ends with their key; any other
    principal's keeps the role and teams it was made with, for its lifetime."""
    session = rt.store.create_session(rt.now, rt.session_tag, principal, AuditEvent(
        principal.subject, source, "login", principal.subject,
        {"method": method, "role": principal.role,
         "teams": None if principal.teams is None else sorted(principal.teams)}))
    response.set_cookie(SESSION_COOKIE, session, httponly=True, samesite="strict",
                        secure=rt.settings.tls, path="/", max_age=SESSION_MAX_AGE_S)


def audit_event(principal: Principal, request: Request, action: str,
                target: str | None = None, **detail: object) -> AuditEvent:
    """An audit event done by ``principal`` from the request's address."""
    return AuditEvent(principal.subject, request_source(request), action, target, detail)


def has_signature(request: Request) -> bool:
    return signing.AGENT_ID_HEADER in request.headers   # (case-insensitive)


async def require_workstation(request: Request) -> Caller:
    """Verify the HMAC signature over method, path, timestamp and body."""
    caller, _, _ = await _verified_workstation(request)
    return caller


async def require_single_use_workstation(request: Request) -> Caller:
    """:func:`require_workstation` for a request that must not be served twice (a clearance, a
    report): its signature is recorded, and a replay is refused with 409 ``replayed``."""
    caller, timestamp, signature = await _verified_workstation(request)
    await use_signature(runtime(request), timestamp, signature)
    return caller


async def _verified_workstation(request: Request) -> tuple[Caller, str, str]:
    rt = runtime(request)
    headers = request.headers
    source = request_source(request)
    agent_id, timestamp, signature = signature_headers(
        rt, headers.get(signing.AGENT_ID_HEADER), headers.get(signing.TIMESTAMP_HEADER),
        headers.get(signing.SIGNATURE_HEADER), source)
    body = await request.body()
    await verify_workstation(rt, request.method, request.url.path, agent_id, timestamp, body,
                             signature, source)
    return Principal("workstation", f"workstation:{agent_id}", agent_id=agent_id), timestamp, \
        signature


async def use_signature(rt: CenterRuntime, timestamp: str, signature: str) -> None:
    """Record a verified signature as used (in the database: every process and host, and
    after a restart); 409 ``replayed`` when it already was. Kept until its timestamp leaves
    the clock window (plus a margin), then swept."""
    from starlette.concurrency import run_in_threadpool

    expires_at = int(timestamp) + rt.settings.clock_window_s + USED_SIGNATURE_MARGIN_S
    sweep_before = rt.now if rt.used_signature_sweep_due() else None
    if not await run_in_threadpool(rt.store.use_signature, signature, expires_at, sweep_before):
        raise APIError(409, "replayed", "this signed request was already served; a new request "
                       "needs a new signature (a later timestamp)")


def signature_headers(rt: CenterRuntime, agent_id: str | None, timestamp: str | None,
                      signature: str | None, source: str) -> tuple[str, str, str]:
    """The three signature headers, well-formed and with a timestamp inside the clock window
    (checked before the body is read); else 401 ``unauthorized``/``bad_signature``/
    ``clock_skew`` (malformed headers count as a failed attempt of ``source``). One
    implementation for the FastAPI routes and the heartbeat fast path; the form and the window
    are ``core.wire.signing``'s."""
    try:
        found = signing.parse_signature_headers(agent_id, timestamp, signature)
    except signing.SignatureMissing as exc:
        raise APIError(401, "unauthorized", str(exc)) from None
    except signing.SignatureMalformed as exc:
        raise failure(rt, source, APIError(401, "bad_signature", str(exc))) from None
    now = rt.now
    if not signing.within_clock_window(found[1], now, rt.settings.clock_window_s):
        raise APIError(401, "clock_skew", f"timestamp is more than "
                       f"{rt.settings.clock_window_s} s from the center's clock",
                       extra={"server_time": int(now)})
    return found


async def verify_workstation(rt: CenterRuntime, method: str, path: str, agent_id: str,
                             timestamp: str, body: bytes, signature: str, source: str) -> None:
    """The signature matches this workstation's secret and the workstation is not retired;
    else 401 ``bad_signature`` (429 once ``source`` has failed too often) / 403 ``retired``."""
    if rt.sweep_due():  # retirements made elsewhere, in the background (within 30 s)
        _in_background(rt.sweep_retired)
    auth = rt.cached_agent_auth(agent_id)
    if auth is None:
        from starlette.concurrency import run_in_threadpool

        auth = await run_in_threadpool(rt.agent_auth, agent_id)
    # Unknown agent and wrong signature look the same (no oracle for agent ids).
    if auth is None or not signing.signature_matches(
            auth[0], method, path, timestamp, body, signature):
        raise failure(rt, source, APIError(401, "bad_signature",
                                           "the request signature does not match"))
    if auth[1]:
        raise APIError(403, "retired", "this workstation was retired; enroll it again")


def _in_background(work: Callable[[], None]) -> None:
    import asyncio

    def done(future: asyncio.Future[None]) -> None:
        if not future.cancelled() and future.exception() is not None:
            log.warning("credential cache sweep failed: %s", type(future.exception()).__name__)

    asyncio.get_running_loop().run_in_executor(None, work).add_done_callback(done)
