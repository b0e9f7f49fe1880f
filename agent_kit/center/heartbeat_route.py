"""``POST /api/v1/heartbeats``, the center's hot route: what it does, and a lean pure-ASGI path to
it in front of FastAPI.

:func:`accept_heartbeats` is the route: strict validation from the raw bytes, group-committed
intake, the acknowledgement. Both ways in call it, after the same signature functions of
``auth.py``:

- the FastAPI route in ``api_workstation.py`` (it documents the route in the OpenAPI spec and
  serves it when the app is used without this wrapper);
- :class:`HeartbeatFastPath`, mounted in front of FastAPI by ``app.py`` (inside the body-size
  limit middleware), which answers exactly this path and method without FastAPI's routing,
  dependency solving and request objects: that HTTP machinery was about half of the CPU per
  heartbeat (docs/BENCHMARKS.md "Center load"). Its errors are the same JSON answers, built by
  the same functions of ``errors.py`` the exception handlers use, with the same security
  headers.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi.exceptions import RequestValidationError
from starlette.types import ASGIApp, Receive, Scope, Send

from agent_kit.center.auth import client_source, signature_headers, verify_workstation
from agent_kit.center.database import DatabaseUnavailable
from agent_kit.center.errors import (
    APIError,
    api_error_response,
    database_down_response,
    internal_error_response,
    invalid_body_response,
)
from agent_kit.center.intake import Refused, SeqConflict
from agent_kit.center.models import HeartbeatBatch
from agent_kit.center.request_bodies import parse_json
from agent_kit.center.runtime import CenterRuntime
from agent_kit.core.wire import heartbeat, signing

PATH = heartbeat.PATH
# What SecurityHeaders (app.py) adds to every answer.
SECURITY_HEADERS = ((b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"no-referrer"))


async def accept_heartbeats(rt: CenterRuntime, agent_id: str, content_type: str,
                            body: bytes) -> dict[str, Any]:
    """Validate a signed workstation's batch, store it (answered once committed) and return the
    acknowledgement, with the tag of the policy the workstation should run; 415/400/422 for a bad body, 409 ``seq_conflict``, 422 ``not_storable`` when
    the database refuses it (the rest of its group is stored), 503 if the database is down or
    ``disk_full``."""
    batch: Any = parse_json(content_type, body, HeartbeatBatch)   # fields: core.wire.heartbeat
    received_at = rt.now
    outcome = await rt.intake.store(agent_id, batch.heartbeats, received_at)
    if isinstance(outcome, SeqConflict):
        raise APIError(409, "seq_conflict", seq_conflict_detail(outcome),
                       extra={"id": outcome.id, "seq": outcome.seq})
    if isinstance(outcome, Refused):
        raise APIError(422, "not_storable", f"the database refused this batch ({outcome.reason});"
                       " nothing of it was stored")
    effective = rt.policies.cached_for_agent(agent_id)   # no database read when fresh
    if effective is None:
        from starlette.concurrency import run_in_threadpool

        effective = await run_in_threadpool(rt.policies.for_agent, agent_id)
    return {"results": [{"id": i, "seq": s, "status": st} for i, s, st in outcome],
            "server_time": int(rt.now), "policy_tag": effective.tag}


def seq_conflict_detail(conflict: SeqConflict) -> dict[str, Any]:
    """The 409 ``seq_conflict`` detail: what clashed and the workstation's highest stored seq
    (``last_seq``), from which an agent that lost its spool renumbers what it still has."""
    if conflict.stored_seq is not None:
        message = (f"heartbeat id {conflict.id} is already stored with seq {conflict.stored_seq}"
                   f", not {conflict.seq}; nothing of this batch was stored")
    else:
        message = (f"seq {conflict.seq} is already stored under another heartbeat id; nothing "
                   f"of this batch was stored; the last stored seq is {conflict.last_seq}")
    return {"message": message, "id": conflict.id, "seq": conflict.seq,
            "last_seq": conflict.last_seq, "stored_seq": conflict.stored_seq}


class _Disconnected(Exception):
    """The client went away before its body arrived: nobody to answer."""


class HeartbeatFastPath:
    """Pure ASGI: ``POST /api/v1/heartbeats`` straight to :func:`accept_heartbeats`; every other
    request goes on to ``app``."""

    def __init__(self, app: ASGIApp, rt: CenterRuntime) -> None:
        self.app, self.rt = app, rt

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != PATH or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        try:
            ack = await self._handle(scope, receive)
        except _Disconnected:
            return
        except APIError as exc:
            response = api_error_response(exc)
        except RequestValidationError as exc:
            response = invalid_body_response(exc.errors())
        except DatabaseUnavailable as exc:
            response = database_down_response(exc)
        except Exception as exc:  # a bug: logged, answered 500 (the fuzz test proves none)
            response = internal_error_response("POST", PATH, exc)
        else:
            content = _ENCODE(ack).encode()
            await send({"type": "http.response.start", "status": 200, "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(content)).encode()), *SECURITY_HEADERS]})
            await send({"type": "http.response.body", "body": content})
            return
        present = {name for name, _ in response.raw_headers}
        response.raw_headers.extend(h for h in SECURITY_HEADERS if h[0] not in present)
        await response(scope, receive, send)

    async def _handle(self, scope: Scope, receive: Receive) -> dict[str, Any]:
        found: dict[bytes, str] = {}
        for name, value in scope["headers"]:
            if name in _WANTED and name not in found:  # the first one, as Starlette's get()
                found[name] = value.decode("latin-1")
        rt = self.rt
        source = client_source(scope.get("client"))
        agent_id, timestamp, signature = signature_headers(
            rt, found.get(_AGENT_ID), found.get(_TIMESTAMP), found.get(_SIGNATURE), source)
        body = await _read_body(receive)
        await verify_workstation(rt, "POST", PATH, agent_id, timestamp, body, signature, source)
        return await accept_heartbeats(rt, agent_id, found.get(b"content-type", ""), body)


# What Starlette's JSONResponse writes, without building an encoder per answer.
_ENCODE = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode
# ASGI header names are lowercase bytes.
_AGENT_ID, _TIMESTAMP, _SIGNATURE = (name.lower().encode() for name in signing.HEADERS)
_WANTED = frozenset((b"content-type", _AGENT_ID, _TIMESTAMP, _SIGNATURE))


async def _read_body(receive: Receive) -> bytes:
    message = await receive()
    if message["type"] != "http.request":
        raise _Disconnected
    body: bytes = message.get("body", b"")
    if not message.get("more_body", False):
        return body
    chunks = [body]
    while True:
        message = await receive()
        if message["type"] != "http.request":
            raise _Disconnected
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)
