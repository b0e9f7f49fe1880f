"""The center's bandwidth test endpoint: speedtest-cli's "mini server" protocol, as an ASGI app.

speedtest-cli (``Speedtest.set_mini_server``) talks to a "Speedtest Mini" installation laid out
as ``<base>/`` (an index page naming ``upload_extension: "php"``) and ``<base>/speedtest/``
holding ``latency.txt`` (``test=test``), ``random{N}x{N}.jpg`` (downloads) and ``upload.php``
(POSTed bodies, answered ``size=<bytes>``). The center mounts this app at ``/speedtest``, so the
mini server URL an agent uses is ``https://center:8750/speedtest/`` (``speedtest_path`` in
``GET /healthz``). The same files are also answered one level up (``/speedtest/upload.php`` of
the center itself), which is where speedtest-cli looks when given the center's bare URL.

Built for large transfers on a small server: downloads are generated on the fly from one shared
random block (incompressible, so a compressing proxy cannot inflate the result) and streamed
with back-pressure; uploads are read and discarded while counting. Memory use per transfer is
one chunk, whatever the size.

The endpoint needs no credential: speedtest-cli's protocol has none, and a workstation measures
its line before it is enrolled too (``agent-kit check --center URL`` on day one). What one
source address may move through it is bounded instead (``serve --bandwidth-budget-mib``, per
hour, downloads and uploads together; a token bucket per address and process,
``throttle.py``): a download is charged whole when it starts and what was not sent is given
back when it ends; an upload is charged as it arrives. Beyond the budget: 429
``bandwidth_budget`` with ``Retry-After``.
"""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the web stack is the center's extra; import it where the app is built
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.types import ASGIApp, Receive, Scope, Send

    from agent_kit.center.throttle import SourceBudgets

CHUNK_BYTES = 256 * 1024
MAX_SIDE = 10_000                 # random10000x10000.jpg: 200 MB, the largest download served
MAX_UPLOAD_BYTES = 1 << 30        # one upload request; more is refused (413), never stored
_BLOCK = os.urandom(CHUNK_BYTES)  # shared by every download; random so nothing compresses it
_RANDOM_NAME = re.compile(r"random(\d{1,5})x(\d{1,5})\.jpg")

# What speedtest-cli reads from the mini server's index page (``upload_?[Ee]xtension: "..."``).
INDEX_HTML = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>agent-center bandwidth endpoint</title></head>
<body><p>agent-center bandwidth test endpoint (speedtest-cli mini server protocol).</p>
<script>var settings = { upload_extension: "php" };</script></body></html>
"""


def download_size(side: int) -> int:
    """Bytes of ``random{side}x{side}.jpg``: 2 * side^2, as speedtest.net's files
    (random350x350.jpg is 245,388 bytes, random4000x4000.jpg 31,625,365)."""
    return 2 * side * side


async def _generated_bytes(total: int, budget: SourceBudgets | None = None,
                           source: str = "") -> AsyncIterator[bytes | memoryview]:
    """``total`` random bytes; with a ``budget`` (charged ``total`` already), what is left
    unsent when the stream ends (the client stopped reading) is given back."""
    import asyncio

    view = memoryview(_BLOCK)
    left = total
    try:
        while left > 0:
            n = min(left, CHUNK_BYTES)
            yield view[:n]
            left -= n
            # Let the response see the client go: once it has, uvicorn's send returns at once
            # and this loop would otherwise "send" (and charge) the rest without a pause.
            await asyncio.sleep(0)
    finally:
        if budget is not None and left > 0:
            budget.give_back(source, left)


def create_speedtest_app(budget: SourceBudgets | None = None) -> ASGIApp:
    """The mini-server endpoint as an ASGI app, to mount at ``/speedtest`` in the center;
    ``budget``: bytes per source address (None: unbounded)."""
    from starlette.applications import Starlette
    from starlette.exceptions import HTTPException
    from starlette.requests import ClientDisconnect
    from starlette.responses import (
        HTMLResponse,
        JSONResponse,
        PlainTextResponse,
        Response,
        StreamingResponse,
    )
    from starlette.routing import Route

    from agent_kit.center.throttle import retry_after_header

    no_cache = {"Cache-Control": "no-store"}

    class _Download(StreamingResponse):
        """Closes its generator when the answer ends, also cut short (the client stopped
        reading), so the unsent bytes go back to the budget now, not when it is collected."""

        async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
            try:
                await super().__call__(scope, receive, send)
            finally:
                await self.body_iterator.aclose()  # type: ignore[attr-defined]

    async def index(_: Request) -> Response:
        return HTMLResponse(INDEX_HTML, headers=no_cache)

    async def latency(_: Request) -> Response:
        return PlainTextResponse("test=test", headers=no_cache)

    async def download(request: Request) -> Response:
        match = _RANDOM_NAME.fullmatch(request.path_params["name"])
        if not match or match[1] != match[2] or not 0 < int(match[1]) <= MAX_SIDE:
            return _error(404, "not found",
                          f"downloads are random<N>x<N>.jpg with 1 <= N <= {MAX_SIDE}")
        size = download_size(int(match[1]))
        source = _source(request)
        if budget is not None:
            if size > budget.capacity:
                return _error(429, "bandwidth_budget", f"{match[0]} is larger than what one "
                              f"address may download per hour ({int(budget.capacity)} bytes)")
            if refused := _over_budget(budget.take(source, size)):
                return refused
        return _Download(_generated_bytes(size, budget, source), media_type="image/jpeg",
                         headers={**no_cache, "Content-Length": str(size)})

    def _source(request: Request) -> str:
        return request.client.host if request.client else "?"

    def _over_budget(wait_s: float) -> Response | None:
        if not wait_s:
            return None
        seconds = retry_after_header(wait_s)
        return _error(429, "bandwidth_budget", "this address has used its bandwidth test "
                      f"budget for now; retry in {seconds} s", {"Retry-After": seconds})

    async def upload(request: Request) -> Response:
        if request.method == "GET":   # speedtest-cli's probe for the upload extension
            return PlainTextResponse("size=0", headers=no_cache)
        declared = request.headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > MAX_UPLOAD_BYTES):
            return _error(413, "upload too large",
                          f"one upload may hold at most {MAX_UPLOAD_BYTES} bytes")
        source = _source(request)
        if budget is not None and (refused := _over_budget(budget.wait_s(source, CHUNK_BYTES))):
            return refused
        received = 0
        try:
            async for chunk in request.stream():
                received += len(chunk)
                if received > MAX_UPLOAD_BYTES:
                    return _error(413, "upload too large",
                                  f"one upload may hold at most {MAX_UPLOAD_BYTES} bytes")
                if budget is not None and (refused := _over_budget(budget.take(source,
                                                                               len(chunk)))):
                    return refused
        except ClientDisconnect:  # the usual end of a timed upload: the client stops mid-body
            return Response(status_code=204)
        return PlainTextResponse(f"size={received}", headers=no_cache)

    def _error(status: int, error: str, detail: str,
                headers: dict[str, str] | None = None) -> Response:
        return JSONResponse({"error": error, "detail": detail}, status_code=status,
                            headers={**no_cache, **(headers or {})})

    async def http_error(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return _error(exc.status_code, str(exc.detail).lower(), request_detail(exc))

    def request_detail(exc: HTTPException) -> str:
        if exc.status_code == 405:
            return "this path answers GET (and POST for upload.php) only"
        return "the bandwidth endpoint serves /, latency.txt, random<N>x<N>.jpg and upload.php"

    routes = []
    for prefix in ("/speedtest", ""):
        routes += [
            Route(f"{prefix}/latency.txt", latency, methods=["GET"]),
            Route(f"{prefix}/upload.php", upload, methods=["GET", "POST"]),
            Route(f"{prefix}/{{name:str}}", download, methods=["GET"]),
        ]
    routes = [Route("/", index, methods=["GET"]),
              Route("/index.html", index, methods=["GET"]), *routes]
    return Starlette(routes=routes, exception_handlers={HTTPException: http_error})
