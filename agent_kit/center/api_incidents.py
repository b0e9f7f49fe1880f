"""``GET /api/v1/incidents``: the alert incidents (``alerts.py``), newest first, each with the
state of its deliveries and its message in the reader's language."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from agent_kit.center.alert_text import headline, utc_time, webhook_json
from agent_kit.center.auth import authorize, runtime
from agent_kit.center.fleet import iso
from agent_kit.center.incident_store import IncidentRow, IncidentStore
from agent_kit.center.models import IncidentList
from agent_kit.center.principals import Principal
from agent_kit.center.viewer_language import viewer_language
from agent_kit.core.i18n import render

router = APIRouter()
# who may: principals.ROUTE_ACCESS ("incidents.read": admins and viewers of every team)
Person = Annotated[Principal, Depends(authorize)]


def incident_view(row: IncidentRow, lang: str) -> dict[str, Any]:
    """The API's Incident object (docs/center-api.md)."""
    out = webhook_json(row.event)
    text = render(headline(row.event, lambda epoch: utc_time(float(epoch), lang)),
                  lang)
    return {**{k: out[k] for k in ("incident_id", "rule", "kind", "subject", "since",
                                   "opened_at", "resolved_at", "facts", "resolved_facts",
                                   "message")},
            "state": row.state, "text": text,
            "deliveries": [{"channel": d.channel, "event": d.event, "state": d.state,
                            "tries": d.tries, "sent_at": iso(d.sent_at),
                            "last_error": d.last_error} for d in row.deliveries]}


@router.get("/api/v1/incidents", response_model=IncidentList)
async def incidents(request: Request, _: Person,
                    state: Annotated[str | None, Query(pattern="^(open|resolved)$")] = None,
                    limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> JSONResponse:
    """Opened incidents, newest first (``state``: only open or only resolved ones)."""
    rt = runtime(request)
    rows = await run_in_threadpool(IncidentStore(rt.db).incidents, state, limit)
    lang = viewer_language(request)
    return JSONResponse({"incidents": [incident_view(r, lang) for r in rows]})
