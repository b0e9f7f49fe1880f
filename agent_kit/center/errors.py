"""Every error the API gives is JSON ``{"error": "<code>", "detail": ...}`` with a 4xx code (503
when the database is down): FastAPI's own 404/405/422 answers, malformed JSON, a wrong content
type and oversized bodies included. An unexpected exception is a bug: it is logged (without the
request body) and answered with 500 ``internal``, which the fuzz test proves never happens.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from agent_kit.center.database import DatabaseFull, DatabaseUnavailable
from agent_kit.core.wire.text import REASONS as TEXT_REASONS

log = logging.getLogger("agent_kit.center")

STATUS_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
                405: "method_not_allowed", 406: "not_acceptable", 409: "conflict",
                413: "body_too_large", 415: "unsupported_media_type", 422: "validation_error",
                429: "too_many_requests", 503: "unavailable"}


class APIError(StarletteHTTPException):
    """An answer with our error code; ``extra`` keys go next to error/detail."""

    def __init__(self, status: int, error: str, detail: Any = None,
                 extra: dict[str, Any] | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(status_code=status, detail=detail, headers=headers)
        self.error = error
        self.extra = extra or {}


def error_response(status: int, error: str, detail: Any = None,
                   headers: Mapping[str, str] | None = None, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": error, "detail": detail, **extra}, status_code=status,
                        headers=headers)


def validation_detail(errors: Any) -> list[dict[str, Any]]:
    """Pydantic's error list without the input echoed back or non-JSON context; a text that
    breaks a ``core.wire.text`` rule says so in words rather than by quoting the pattern."""
    out = []
    for e in errors:
        loc = [p if isinstance(p, int | str) else str(p) for p in e.get("loc", ())]
        msg = str(e.get("msg", ""))
        if e.get("type") == "string_pattern_mismatch":
            msg = next((f"the text {reason}" for pattern, reason in TEXT_REASONS.items()
                        if pattern in msg), msg)
        out.append({"loc": loc, "msg": msg, "type": str(e.get("type", ""))})
    return out


def api_error_response(exc: StarletteHTTPException) -> JSONResponse:
    """The answer to an :class:`APIError` (or Starlette's own 404/405...)."""
    if isinstance(exc, APIError):
        return error_response(exc.status_code, exc.error, exc.detail, exc.headers, **exc.extra)
    code = STATUS_CODES.get(exc.status_code, "error")
    detail = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
    return error_response(exc.status_code, code, detail, exc.headers)


def invalid_body_response(errors: Any) -> JSONResponse:
    """400 ``invalid_json`` for a body that is not JSON, else 422 with pydantic's reasons."""
    detail = validation_detail(errors)
    if any(e["type"] in ("json_invalid", "json_type") for e in detail):
        return error_response(400, "invalid_json", "the body is not valid JSON")
    return error_response(422, "validation_error", detail)


def database_down_response(exc: DatabaseUnavailable) -> JSONResponse:
    """503: ``disk_full`` when the database has no room left, else ``database_unavailable``;
    the database's own message goes to the log (one line), not to the client."""
    if isinstance(exc, DatabaseFull):
        log.error("database disk full: %s", exc)
        return error_response(503, "disk_full", "the center's database has no room left "
                              "(disk full); nothing was stored, retry later",
                              {"Retry-After": "30"})
    log.warning("database unavailable: %s", exc)
    return error_response(503, "database_unavailable", "the database cannot be reached; "
                          "retry later", {"Retry-After": "5"})


_TRACED: set[tuple[str, str, int]] = set()   # where a bug's traceback was logged already


def internal_error_response(method: str, path: str, exc: BaseException) -> JSONResponse:
    """500 ``internal`` for a bug, logged in one line (its traceback too, the first time it
    happens at that place in the code: a request that hits it again adds one line, not 100)."""
    from agent_kit.center.request_log import printable

    frame = exc.__traceback__
    while frame is not None and frame.tb_next is not None:
        frame = frame.tb_next
    where = (type(exc).__name__, frame.tb_frame.f_code.co_filename if frame else "?",
             frame.tb_lineno if frame else 0)
    first = where not in _TRACED and len(_TRACED) < 1000
    if first:
        _TRACED.add(where)
    log.error("internal error on %s %s: %s at %s:%d%s", printable(method, 10), printable(path),
              where[0], where[1].rsplit("/", 1)[-1], where[2],
              "" if first else " (its traceback was logged before)",
              exc_info=exc if first else None)
    return error_response(500, "internal", "internal error")


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return api_error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return invalid_body_response(exc.errors())

    @app.exception_handler(ClientDisconnect)
    async def gone(request: Request, exc: ClientDisconnect) -> JSONResponse:
        # Nobody will read this (the client left, or read_deadlines.py closed a slow one).
        return error_response(400, "client_disconnected", "the client went away")

    @app.exception_handler(DatabaseUnavailable)
    async def db_down(request: Request, exc: DatabaseUnavailable) -> JSONResponse:
        return database_down_response(exc)

    @app.exception_handler(Exception)
    async def bug(request: Request, exc: Exception) -> JSONResponse:
        return internal_error_response(request.method, request.url.path, exc)


class BodyTooLarge(APIError):
    def __init__(self, limit: int) -> None:
        super().__init__(413, "body_too_large", f"request bodies are limited to {limit} bytes")


class BodyLimit:
    """ASGI middleware: refuse bodies over the limit (by Content-Length, or while streaming)."""

    def __init__(self, app: ASGIApp, limit: int, limits_by_path: dict[str, int]) -> None:
        self.app, self.limit, self.limits_by_path = app, limit, limits_by_path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limits_by_path.get(scope.get("path", ""), self.limit)
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                if not value.isdigit() or len(value) > 15:
                    await _send_json(send, 400, "bad_request", "invalid Content-Length")
                    return
                if int(value) > limit:
                    await _send_json(send, 413, "body_too_large",
                                     f"request bodies are limited to {limit} bytes")
                    return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLarge(limit)
            return message

        await self.app(scope, limited, send)


async def _send_json(send: Send, status: int, error: str, detail: str) -> None:
    import json

    body = json.dumps({"error": error, "detail": detail}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})
