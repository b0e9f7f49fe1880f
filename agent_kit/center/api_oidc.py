"""The single sign-on routes (OpenID Connect, ``oidc.py``): ``GET /auth/oidc/login`` sends the
browser to the provider; ``GET /auth/oidc/callback`` takes the provider's answer, maps the
person's groups to a role and teams (``oidc_settings.OidcSettings.role_for``) and starts a
dashboard session (``auth.start_session``), or refuses: 400 (a state that is not this
browser's: forged, stale, another window), 401 (the provider refused, or its answer does not
validate, such as a replayed code), 403 ``no_role`` (in no mapped group), 502 (the provider
cannot be reached); 404 when the center has no single sign-on. A browser is answered with a
page in its language, a program with the usual ``{"error", "detail"}``. Each refusal is in
the audit log (``login_failed``, method "openid connect", the person's subject when known).
"""

from __future__ import annotations

import html
import logging
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from agent_kit.center.audit import AuditEvent
from agent_kit.center.auth import TooManyFailures, request_source, runtime, start_session
from agent_kit.center.oidc import LOGIN_COOKIE, LOGIN_MAX_AGE_S, NO_ROLE, OidcClient, OidcRefused
from agent_kit.center.principals import Principal

log = logging.getLogger("agent_kit.center")
router = APIRouter(include_in_schema=False)
STATIC = Path(__file__).parent / "static"
METHOD = "openid connect"
LOGIN_PATH = "/auth/oidc/login"
NOT_CONFIGURED = "Single sign-on is not set up on this center."


def oidc_client(request: Request) -> OidcClient | None:
    """This process's client of the provider (made on first use), None without SSO."""
    rt = runtime(request)
    if rt.settings.oidc is None:
        return None
    client: OidcClient | None = getattr(request.app.state, "oidc_client", None)
    if client is None:
        client = OidcClient(rt.settings.oidc, rt.center_key)
        request.app.state.oidc_client = client
    return client


@router.get(LOGIN_PATH)
async def oidc_login(request: Request) -> Response:
    """Send the browser to the provider, with a fresh state, nonce and PKCE challenge."""
    client = oidc_client(request)
    if client is None:
        return _refusal(request, OidcRefused(404, "not_found", NOT_CONFIGURED,
                                             "no --oidc-issuer"))
    rt = runtime(request)
    try:
        url, pending = await client.begin(rt.now)
    except OidcRefused as refused:
        log.warning("single sign-on: %s", refused.detail)
        return _refusal(request, refused)
    response = RedirectResponse(url, status_code=303, headers={"Cache-Control": "no-store"})
    # Lax: the provider's redirect back is a navigation from another site.
    response.set_cookie(LOGIN_COOKIE, client.seal(pending), max_age=LOGIN_MAX_AGE_S,
                        path="/auth/oidc", httponly=True, samesite="lax",
                        secure=rt.settings.tls)
    return response


@router.get("/auth/oidc/callback")
async def oidc_callback(request: Request) -> Response:
    """The provider's answer: validate it, then a dashboard session, or a refusal."""
    client = oidc_client(request)
    if client is None:
        return _refusal(request, OidcRefused(404, "not_found", NOT_CONFIGURED,
                                             "no --oidc-issuer"))
    rt = runtime(request)
    source = request_source(request)
    query = request.query_params
    try:
        pending = client.open(request.cookies.get(LOGIN_COOKIE), rt.now)
        identity = await client.finish(pending, query.get("state"), query.get("code"),
                                       query.get("error"), rt.now)
        mapped = client.settings.role_for(identity.groups)
        if mapped is None:
            raise OidcRefused(403, "no_role", NO_ROLE,
                              f"in no mapped group (groups: {sorted(identity.groups)[:20]})",
                              identity.subject)
    except OidcRefused as refused:
        log.warning("single sign-on refused from %s: %s", source, refused.detail)
        await run_in_threadpool(rt.store.record, AuditEvent(
            refused.subject or "anonymous", source, "login_failed", refused.subject,
            {"method": METHOD, "reason": refused.code}), rt.now)
        if refused.status in (400, 401):   # a forged or replayed answer counts as a failure
            wait = rt.failures.take(source)
            if wait:
                raise TooManyFailures(wait) from None
        return _refusal(request, refused)
    role, teams = mapped
    principal = Principal(role, identity.subject, teams=teams)
    response = RedirectResponse("/", status_code=303, headers={"Cache-Control": "no-store"})
    response.delete_cookie(LOGIN_COOKIE, path="/auth/oidc")
    await run_in_threadpool(start_session, rt, response, principal, source, METHOD)
    return response


def _refusal(request: Request, refused: OidcRefused) -> Response:
    """The refusal as a page in the reader's language (a browser), else as JSON."""
    if "text/html" in request.headers.get("accept", ""):
        from agent_kit.center.dashboard_text import page
        from agent_kit.center.viewer_language import viewer_language

        text = page(STATIC / "sso.html", viewer_language(request)).replace(
            "__CODE__", html.escape(refused.code)).replace(
            "<!--reason-->", html.escape(refused.reason))
        response: Response = HTMLResponse(text, status_code=refused.status, headers={
            "Content-Security-Policy": "default-src 'self'; style-src 'self' 'unsafe-inline'; "
            "img-src 'self' data:; frame-ancestors 'none'", "Cache-Control": "no-store"})
    else:
        response = JSONResponse({"error": refused.code, "detail": refused.reason},
                                status_code=refused.status, headers={"Cache-Control": "no-store"})
    response.delete_cookie(LOGIN_COOKIE, path="/auth/oidc")
    return response
