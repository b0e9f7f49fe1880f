"""One log line per refused request, and never more: what a hostile client can make the center
write is bounded.

:class:`RefusalLog` is pure ASGI middleware, outermost: for every 4xx answer it writes one line
(method, path, source address, status, error code), with the path escaped and cut
(:func:`printable`), nothing of the request's headers or body. A source's lines are budgeted
(a burst, then one every few seconds, ``throttle.py``); what is not written is counted and said
in the source's next line. 5xx answers are logged where they are made (``errors.py``: a
traceback once per place in the code, then one line each). An exception that escapes the app
is answered 500 here instead of by uvicorn, whose answer logs the whole traceback each time.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

from agent_kit.center.throttle import SourceBudgets, source_key

log = logging.getLogger("agent_kit.center.requests")
LOG_BURST = 20          # lines per source address, then one every LOG_REFILL_S
LOG_REFILL_S = 3.0
PATH_CHARS = 100
_ERROR_CODE = re.compile(r"[a-z_ ]{1,40}")
_ADDRESS = re.compile(r"[0-9A-Fa-f:./?]{1,60}")
# Answers that are not refusals: the client went away before its answer (errors.py).
QUIET_ERRORS = frozenset(("client_disconnected",))


def printable(text: str, limit: int = PATH_CHARS) -> str:
    """``text`` for a log line: cut to ``limit`` characters, every control, non-ASCII or
    quote character escaped (``ascii()``), so that a line is one line and says what came."""
    cut = text[:limit]
    return ascii(cut) + ("..." if len(text) > limit else "")


def _error_code(body: bytes) -> str:
    try:
        value = json.loads(body).get("error")
    except (ValueError, AttributeError):
        return "-"
    return value if isinstance(value, str) and _ERROR_CODE.fullmatch(value) else "-"


class RefusalLog:
    """ASGI middleware: one bounded log line per 4xx answer."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.budgets = SourceBudgets(LOG_BURST, 1 / LOG_REFILL_S)
        self.unlogged: dict[str, int] = {}

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 0
        error = ""

        async def watching(message: Any) -> None:
            nonlocal status, error
            if message["type"] == "http.response.start":
                status = int(message["status"])
            elif message["type"] == "http.response.body" and 400 <= status < 500 and not error:
                error = _error_code(bytes(message.get("body", b""))[:500])
            await send(message)

        try:
            await self.app(scope, receive, watching)
        except Exception as exc:  # a bug below: one answer, one line (not uvicorn's traceback)
            from agent_kit.center.errors import internal_error_response

            response = internal_error_response(scope.get("method", "?"),
                                               scope.get("path", "?"), exc)
            if status == 0:
                await response(scope, receive, send)
            return
        if 400 <= status < 500 and error not in QUIET_ERRORS:
            self.refused(scope, status, error or "-")

    def refused(self, scope: Any, status: int, error: str) -> None:
        client = scope.get("client")
        source = str(client[0]) if client else "?"
        if self.budgets.take(source):
            key = source_key(source)
            self.unlogged[key] = self.unlogged.get(key, 0) + 1
            if len(self.unlogged) > 10_000:   # bounded, like the budgets
                self.unlogged.clear()
            return
        skipped = self.unlogged.pop(source_key(source), 0)
        log.warning("refused %s %s from %s: %d %s%s", printable(str(scope.get("method")), 10),
                    printable(str(scope.get("path"))),
                    source if _ADDRESS.fullmatch(source) else printable(source, 60), status, error,
                    f" (and {skipped} more from this address, not logged)" if skipped else "")
