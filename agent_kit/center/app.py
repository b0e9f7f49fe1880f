"""The center's ASGI app: API routers, error handling, body limits, dashboard files, the
bandwidth endpoint. ``create_app(settings)`` builds one; uvicorn serves it (``cli.py``).

No interactive API docs page (``/docs``): FastAPI's loads swagger-ui from a CDN, a script of
another origin on the admin's origin. The OpenAPI document is served, as JSON."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, HTMLResponse, Response

from agent_kit import __version__
from agent_kit.center.heartbeat_route import SECURITY_HEADERS
from agent_kit.center.settings import CenterSettings, from_env

STATIC = Path(__file__).parent / "static"


def create_app(settings: CenterSettings | None = None) -> FastAPI:
    from agent_kit.center import (api_admin, api_incidents, api_oidc, api_policy, api_users,
                                  api_workstation)
    from agent_kit.center.alerts import AlertLoop
    from agent_kit.center.errors import BodyLimit, install_error_handlers
    from agent_kit.center.request_bodies import add_body_schemas
    from agent_kit.center.runtime import build_runtime

    settings = settings or from_env()
    rt = build_runtime(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        rt.intake.start()
        alerts = AlertLoop(rt)
        alerts.start()
        try:
            yield
        finally:
            alerts.stop()
            rt.close()

    app = FastAPI(title="agent-center", version=__version__, lifespan=lifespan,
                  openapi_url="/api/v1/openapi.json", docs_url=None, redoc_url=None)
    app.state.center = rt
    install_error_handlers(app)
    app.include_router(api_workstation.router)
    app.include_router(api_admin.router)
    app.include_router(api_policy.router)
    app.include_router(api_users.router)
    app.include_router(api_incidents.router)
    app.include_router(api_oidc.router)

    if settings.serve_dashboard:
        from fastapi.staticfiles import StaticFiles

        app.mount("/static", StaticFiles(directory=STATIC), name="static")

        from agent_kit.center.dashboard_text import page
        from agent_kit.center.viewer_language import viewer_language

        def _with_sso(html: str) -> str:
            """The sign-in offers "Sign in with SSO" when the center has a provider."""
            return html.replace('<div id="sso" class="sso" hidden>', '<div id="sso" class="sso">',
                                1) if settings.oidc is not None else html

        # The pages in the reader's language (the selector's cookie, else Accept-Language).
        @app.get("/", include_in_schema=False)
        async def fleet_page(request: Request) -> Response:
            return HTMLResponse(_with_sso(page(STATIC / "index.html", viewer_language(request))),
                                headers={**_PAGE_HEADERS, "Vary": "Cookie, Accept-Language"})

        @app.get("/agents/{agent_id}", include_in_schema=False)
        async def agent_page(request: Request, agent_id: str) -> Response:
            return HTMLResponse(_with_sso(page(STATIC / "agent.html", viewer_language(request))),
                                headers={**_PAGE_HEADERS, "Vary": "Cookie, Accept-Language"})

        @app.get("/audit", include_in_schema=False)
        async def audit_page(request: Request) -> Response:
            return HTMLResponse(_with_sso(page(STATIC / "audit.html", viewer_language(request))),
                                headers={**_PAGE_HEADERS, "Vary": "Cookie, Accept-Language"})

        @app.get("/favicon.ico", include_in_schema=False)
        async def favicon() -> Response:
            return FileResponse(STATIC / "favicon.svg", media_type="image/svg+xml")

    if settings.mount_speedtest:
        from agent_kit.center.speedtest import create_speedtest_app
        from agent_kit.center.throttle import SourceBudgets

        budget = settings.bandwidth_budget_bytes
        app.mount("/speedtest", create_speedtest_app(
            SourceBudgets(budget, budget / 3600) if budget > 0 else None))

    app.state.test_call_offer = None
    if settings.test_call:
        from agent_kit.center.test_call_route import add_test_call_route
        from agent_kit.center.throttle import SourceBudgets

        per_hour = settings.test_calls_per_hour
        app.state.test_call_offer = add_test_call_route(
            app, SourceBudgets(per_hour, per_hour / 3600) if per_hour > 0 else None)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            from fastapi.openapi.utils import get_openapi

            schema = get_openapi(title=app.title, version=app.version, routes=app.routes)
            app.openapi_schema = add_body_schemas(schema)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    check_route_rules(app)

    app.add_middleware(SecurityHeaders)

    # The bandwidth endpoint limits its own uploads (it counts and discards them).
    from agent_kit.center.speedtest import MAX_UPLOAD_BYTES

    limits = {"/api/v1/reports": settings.report_limit_bytes,
              "/speedtest/upload.php": MAX_UPLOAD_BYTES,
              "/speedtest/speedtest/upload.php": MAX_UPLOAD_BYTES}
    from agent_kit.center.heartbeat_route import HeartbeatFastPath
    from agent_kit.center.read_deadlines import ReadDeadlines
    from agent_kit.center.request_log import RefusalLog

    wrapped = BodyLimit(HeartbeatFastPath(app, rt), settings.body_limit_bytes, limits)
    app.state.asgi = ReadDeadlines(RefusalLog(wrapped))
    return app


def app_routes(app: FastAPI) -> list[tuple[str, str]]:
    """Every ``(method, path)`` the app serves (HEAD as GET; a mounted app as ``MOUNT``)."""
    from fastapi.routing import iter_route_contexts
    from starlette.routing import Mount

    found: set[tuple[str, str]] = set()
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        path = str(getattr(route, "path", ""))
        if isinstance(route, Mount):
            found.add(("MOUNT", path))
            continue
        for method in getattr(route, "methods", None) or ():
            found.add(("GET" if method == "HEAD" else method, path))
    return sorted(found)


def check_route_rules(app: FastAPI) -> None:
    """Refuse to build an app with a route that has no access rule (``principals.py``)."""
    from agent_kit.center.principals import route_rule

    missing = [f"{m} {p}" for m, p in app_routes(app) if route_rule(m, p) is None]
    if missing:
        raise RuntimeError("routes without an access rule in principals.ROUTE_ACCESS: "
                           + ", ".join(missing))


class SecurityHeaders:
    """Pure ASGI (no BaseHTTPMiddleware, whose task per request costs intake throughput):
    ``nosniff`` and ``no-referrer`` on every answer that does not set them itself."""

    EXTRA = SECURITY_HEADERS

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def add_headers(message: Any) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", ())}
                extra = [h for h in self.EXTRA if h[0] not in present]
                if extra:
                    message = {**message, "headers": [*message.get("headers", ()), *extra]}
            await send(message)

        await self.app(scope, receive, add_headers)


_PAGE_HEADERS = {"Content-Security-Policy": "default-src 'self'; img-src 'self' data:; "
                 "style-src 'self' 'unsafe-inline'; frame-ancestors 'none'",
                 "Cache-Control": "no-store"}


def asgi_app(settings: CenterSettings | None = None) -> Any:
    """The app with the read deadlines, the refusal log and the body-size limit in front (what
    uvicorn serves, with ``read_deadlines.deadline_protocol``)."""
    return create_app(settings).state.asgi


def worker_app() -> Any:
    """Factory for uvicorn workers (``--workers N``): settings from the environment."""
    return asgi_app(from_env())
