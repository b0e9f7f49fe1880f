"""``POST /api/v1/test-call``: score one test call's receive record (a Starlette route).

Public like the reflector and the bandwidth endpoint (``agent-kit check --center URL`` runs it
before a workstation is enrolled), so it is bounded the same way: the body is a few KB of
numbers (``agent_kit.core.wire.test_call``: at most 1500 packets), each source address has a
budget of ``SCORES_PER_HOUR`` scores (429 with ``Retry-After`` beyond it), and one score runs at
a time per process (a second request meanwhile gets 503 ``busy`` with ``Retry-After``: the
agent's check then says the center was busy). Scoring is CPU-bound (ViSQOL, about a second per
direction), so it runs in a worker thread, never in the event loop.

Answers: 200 the score (``CallScore.to_json``), 400 ``bad_json``, 422 ``bad_record`` (the detail
says what does not follow the contract or the offer), 413 (``BodyLimit`` in front), 429
``too_many_requests``, 503 ``busy``; errors are ``{"error", "detail"}`` like every other route.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from agent_kit.core.wire.test_call import CallOffer, RecordError, parse_record

if TYPE_CHECKING:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response

    from agent_kit.center.call_score import CallScorer
    from agent_kit.center.throttle import SourceBudgets

SCORES_PER_HOUR = 30        # per source address; chosen: a check or two an hour, with retries
MAX_BODY_BYTES = 64 * 1024  # 1500 packets x 2 directions x ~10 characters, and room
BUSY_RETRY_S = 5


def _error(status: int, error: str, detail: Any, headers: dict[str, str] | None = None
           ) -> Response:
    from starlette.responses import JSONResponse

    return JSONResponse({"error": error, "detail": detail}, status_code=status,
                        headers=headers)


class LazyScorer:
    """The scorer, built on the first test call (loading ViSQOL and its numba kernels and
    encoding the clip take a few seconds of CPU, the very first time on a machine 15 s while
    numba compiles its cache, and memory a center that is never asked need not pay)."""

    def __init__(self) -> None:
        self._scorer: CallScorer | None = None
        self._lock = threading.Lock()

    def get(self) -> CallScorer:
        with self._lock:
            if self._scorer is None:
                from agent_kit.center.call_score import CallScorer

                self._scorer = CallScorer()
            return self._scorer


def score_endpoint(scorer: LazyScorer, budgets: SourceBudgets | None = None
                       ) -> Callable[[Request], Awaitable[Response]]:
    """The route handler for ``POST OFFER_PATH`` (the center adds it to its app; a lab
    center to its own)."""
    from starlette.concurrency import run_in_threadpool
    from starlette.responses import JSONResponse

    from agent_kit.center.throttle import retry_after_header

    running = threading.Semaphore(1)

    async def score(request: Request) -> Response:
        body = await request.body()
        if len(body) > MAX_BODY_BYTES:
            return _error(413, "too_large", f"a receive record is at most {MAX_BODY_BYTES} "
                          "bytes")
        try:
            record = parse_record(json.loads(body))
        except (ValueError, RecursionError) as exc:   # UnicodeDecodeError is a ValueError
            if isinstance(exc, RecordError):
                return _error(422, "bad_record", str(exc))
            return _error(400, "bad_json", "the body is not JSON")
        source = request.client[0] if request.client else "?"
        if budgets is not None:
            wait = budgets.take(source)
            if wait:
                return _error(429, "too_many_requests",
                              f"at most {SCORES_PER_HOUR} test calls an hour per address",
                              {"Retry-After": retry_after_header(wait)})
        if not running.acquire(blocking=False):
            if budgets is not None:
                budgets.give_back(source, 1.0)
            return _error(503, "busy", "another test call is being scored",
                          {"Retry-After": str(BUSY_RETRY_S)})
        try:
            result = await run_in_threadpool(lambda: scorer.get().score(record))
        except RecordError as exc:
            return _error(422, "bad_record", str(exc))
        finally:
            running.release()
        return JSONResponse(result.to_json(), headers={"Cache-Control": "no-store"})

    return score


def add_test_call_route(app: Starlette, budgets: SourceBudgets | None = None, *,
                        warm: bool = False) -> CallOffer | None:
    """``POST OFFER_PATH`` on ``app`` (the center's FastAPI app or a lab's Starlette app) when
    this center can score; returns the offer for ``/healthz`` (None: no test call here, and
    the reason is logged once). ``warm``: build the scorer and the codecs' clean scores now
    (a lab that times its first call), not on the first request."""
    from agent_kit.center.call_score import OFFER_PATH, offer_here

    offer, problem = offer_here()
    if offer is None:
        logging.getLogger(__name__).warning("no test call offered: %s", problem)
        return None
    scorer = LazyScorer()
    if warm:
        for codec in offer.codecs:
            scorer.get().reference_mos_lqo(codec.name)
    app.router.add_route(OFFER_PATH, score_endpoint(scorer, budgets),
                         methods=["POST"], include_in_schema=False)
    return offer
