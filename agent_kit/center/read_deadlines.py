"""Deadlines for reading a request: its headers within ``header_timeout_s``, its body within
``body_timeout_s`` plus one second per ``body_min_rate_bps`` bytes received (Apache's
mod_reqtimeout model); past them the center answers 408 (when it has not answered yet) and
closes the connection, with one log line.

uvicorn has no such deadline: ``timeout_keep_alive`` runs only between requests, and a client
that sends its headers one byte at a time (slowloris), or a body that never ends, keeps its
connection (and a slot of the server) for as long as it likes. Two parts:

- :func:`deadline_protocol` makes the ``http`` protocol class given to uvicorn: uvicorn's own
  protocol (h11 or httptools, as uvicorn picks it) wrapped; each connection's deadline is
  checked twice a second by one timer for all of them (none is set per request: the
  heartbeat route is the center's hot path);
- :class:`ReadDeadlines`, pure ASGI middleware in front of the app, tells that connection when
  a request's headers have arrived (the app is called), when its body has, and when the answer
  is complete (the next request's headers are then awaited, on a keep-alive connection).

The middleware finds its connection through a context variable that the protocol sets while
it hands received bytes to uvicorn: uvicorn starts the request's task then, and a task copies
the context it is created in. Under another server (or a test client) the variable is unset
and the middleware does nothing.
"""

from __future__ import annotations

import asyncio
import json
import logging
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

log = logging.getLogger("agent_kit.center.requests")


@dataclass(frozen=True)
class ReadLimits:
    """How long a client may take to send a request (seconds, bytes per second)."""

    header_timeout_s: float
    body_timeout_s: float
    body_min_rate_bps: float


class _Connection:
    """One connection's reading deadline: which phase it is in and until when. Phase changes
    only note the time (this runs for every request); :class:`_Watch` looks at the deadlines."""

    __slots__ = ("transport", "loop", "limits", "phase", "deadline", "body_started",
                 "body_bytes", "answering", "header_bytes")

    def __init__(self, transport: asyncio.BaseTransport, loop: asyncio.AbstractEventLoop,
                 limits: ReadLimits) -> None:
        self.transport, self.loop, self.limits = transport, loop, limits
        self.phase = "headers"      # headers -> body (if any) -> answer -> headers ...
        self.deadline = loop.time() + limits.header_timeout_s
        self.body_started = 0.0
        self.body_bytes = 0
        self.answering = False      # a response has started: never write a 408 over it
        self.header_bytes = 0       # received while awaiting headers (0: an idle connection)

    # -- what the protocol and the middleware report --------------------------------------
    def received(self, nbytes: int) -> None:
        if self.phase == "headers":
            self.header_bytes += nbytes

    def request_started(self, has_body: bool) -> None:
        if has_body:
            self.phase, self.body_started, self.body_bytes = "body", self.loop.time(), 0
            self.deadline = self.body_started + self.limits.body_timeout_s
        else:
            self.phase, self.deadline = "answer", _NEVER

    def body_received(self, nbytes: int, complete: bool) -> None:
        self.body_bytes += nbytes
        if complete and self.phase == "body":
            self.phase, self.deadline = "answer", _NEVER

    def response_started(self) -> None:
        self.answering = True
        if self.phase == "body":   # answered before reading it all: the body no longer matters
            self.phase, self.deadline = "answer", _NEVER

    def response_complete(self) -> None:
        self.phase, self.answering, self.header_bytes = "headers", False, 0
        self.deadline = self.loop.time() + self.limits.header_timeout_s

    # -- the check ------------------------------------------------------------------------
    def check(self, now: float) -> None:
        """Close the connection when it is past its deadline."""
        if now < self.deadline or self.transport.is_closing():
            return
        if self.phase == "body":
            deadline = (self.body_started + self.limits.body_timeout_s
                        + self.body_bytes / self.limits.body_min_rate_bps)
            if now < deadline:   # still coming at the minimum rate: extend
                self.deadline = deadline
                return
            what = f"body not received at {self.limits.body_min_rate_bps:g} bytes/s"
        elif self.phase == "headers":
            if not self.header_bytes:
                self.transport.close()   # an idle connection (keep-alive): nothing to refuse
                return
            what = f"headers not received within {self.limits.header_timeout_s:g} s"
        else:
            return
        peer = self.transport.get_extra_info("peername")
        source = peer[0] if isinstance(peer, tuple) and peer else "?"
        log.warning("closed a slow request from %s: %s", source, what)
        write = getattr(self.transport, "write", None)   # (uvloop's transports are not
        if not self.answering and write is not None:     # asyncio.WriteTransport subclasses)
            body = json.dumps({"error": "request_timeout",
                               "detail": f"request {what}"}).encode()
            write(b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\n"
                  b"content-length: " + str(len(body)).encode() + b"\r\n"
                  b"connection: close\r\n\r\n" + body)
        self.transport.close()


_NEVER = float("inf")
CHECK_EVERY_S = 0.5   # how late a deadline may be noticed


class _Watch:
    """The open connections of one event loop, their deadlines checked every CHECK_EVERY_S
    (one timer for all of them, not one per request)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.connections: set[_Connection] = set()
        self.timer: asyncio.TimerHandle | None = None

    def add(self, connection: _Connection) -> None:
        self.connections.add(connection)
        if self.timer is None:
            self.timer = self.loop.call_later(CHECK_EVERY_S, self._tick)

    def discard(self, connection: _Connection) -> None:
        self.connections.discard(connection)

    def _tick(self) -> None:
        now = self.loop.time()
        for connection in list(self.connections):
            try:
                connection.check(now)
            except Exception as exc:  # noqa: BLE001 - one broken transport must not stop the rest
                log.warning("read deadline check failed: %s", type(exc).__name__)
                self.connections.discard(connection)
        self.timer = self.loop.call_later(CHECK_EVERY_S, self._tick) if self.connections \
            else None


_CONNECTION: ContextVar[_Connection | None] = ContextVar("agent_center_connection",
                                                         default=None)


def deadline_protocol(limits: ReadLimits, inner: type[Any] | None = None) -> type[Any]:
    """The ``http`` protocol class for uvicorn (``uvicorn.run(..., http=...)``): uvicorn's own
    (``inner``, by default the one uvicorn would pick) with the reading deadlines."""
    if inner is None:
        from uvicorn.protocols.http.auto import AutoHTTPProtocol

        inner = AutoHTTPProtocol
    protocol_class = inner
    watches: dict[asyncio.AbstractEventLoop, _Watch] = {}   # one per loop (one per process)

    class DeadlineProtocol(asyncio.Protocol):
        def __init__(self, **kwargs: Any) -> None:
            self.inner = protocol_class(**kwargs)
            self.connection: _Connection | None = None
            self.watch: _Watch | None = None

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            loop = asyncio.get_running_loop()
            self.watch = watches.get(loop) or watches.setdefault(loop, _Watch(loop))
            self.connection = _Connection(transport, loop, limits)
            self.watch.add(self.connection)
            token = _CONNECTION.set(self.connection)
            try:
                self.inner.connection_made(transport)
            finally:
                _CONNECTION.reset(token)

        def data_received(self, data: bytes) -> None:
            if self.connection is not None:
                self.connection.received(len(data))
            token = _CONNECTION.set(self.connection)   # inherited by the request's task
            try:
                self.inner.data_received(data)
            finally:
                _CONNECTION.reset(token)

        def eof_received(self) -> bool | None:
            result: bool | None = self.inner.eof_received()
            return result

        def connection_lost(self, exc: Exception | None) -> None:
            if self.connection is not None and self.watch is not None:
                self.watch.discard(self.connection)
            self.inner.connection_lost(exc)

        def pause_writing(self) -> None:
            self.inner.pause_writing()

        def resume_writing(self) -> None:
            self.inner.resume_writing()

    return DeadlineProtocol


def _has_body(scope: dict[str, Any]) -> bool:
    for name, value in scope.get("headers", ()):
        if name == b"transfer-encoding" or (name == b"content-length" and value.strip(b"0 ")):
            return True
    return False


class ReadDeadlines:
    """ASGI middleware: report each request's progress to its connection's deadline."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        connection = _CONNECTION.get() if scope["type"] == "http" else None
        if connection is None:
            await self.app(scope, receive, send)
            return
        connection.request_started(_has_body(scope))

        async def receiving() -> Any:
            message = await receive()
            if message["type"] == "http.request":
                connection.body_received(len(message.get("body", b"")),
                                         not message.get("more_body", False))
            return message

        async def sending(message: Any) -> None:
            if message["type"] == "http.response.start":
                connection.response_started()
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                connection.response_complete()

        await self.app(scope, receiving, sending)
