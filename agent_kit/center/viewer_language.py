"""The language of the person (or program) reading the center's answers, and the workstations'
messages rendered in it.

A workstation sends its messages as message ids + parameters (``core.wire.heartbeat``: a check's
``message_id``/``message_params``, the gate's ``reason_messages``) beside their English text;
the center renders them in the reader's language (``core.i18n.render``), so a Korean agent's
messages read in English on an English page. The reader's language is, first found: the
``lang`` query parameter, the ``agent_center_lang`` cookie (the dashboard's language selector
sets it), the request's ``Accept-Language``; else English. A heartbeat stored before message
ids were sent keeps the text it came with.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Sequence
from typing import Any

from fastapi import Request

from agent_kit.core.i18n import SUPPORTED, Msg, render, supported_language

LANG_COOKIE = "agent_center_lang"
LANG_COOKIE_MAX_AGE_S = 365 * 86_400


def accepted_language(header: str | None) -> str | None:
    """The supported language ``Accept-Language`` prefers most (RFC 9110 12.5.4), or None."""
    best: tuple[float, int, str] | None = None
    for index, item in enumerate((header or "").split(",")[:32]):
        tag, _sep, rest = item.strip().partition(";")
        weight = 1.0
        for param in rest.split(";"):
            name, _eq, value = param.strip().partition("=")
            if name.strip().lower() == "q":
                try:
                    weight = float(value)
                except ValueError:
                    weight = 0.0
        lang = supported_language(tag)
        if lang is None or weight <= 0:
            continue
        if best is None or (weight, -index) > (best[0], best[1]):
            best = (weight, -index, lang)
    return best[2] if best else None


def viewer_language(request: Request) -> str:
    """The reader's language: ``?lang=``, the cookie, ``Accept-Language``, else English."""
    for candidate in (request.query_params.get("lang"), request.cookies.get(LANG_COOKIE)):
        lang = supported_language(candidate)
        if lang is not None:
            return lang
    return accepted_language(request.headers.get("accept-language")) or "en"


def _message(message_id: object, params: object) -> Msg | None:
    return Msg.from_json({"id": message_id, "params": params}) if isinstance(message_id, str) \
        else None


def localized_heartbeat(body: dict[str, Any] | None, lang: str) -> dict[str, Any] | None:
    """A stored heartbeat with every check's ``message``/``fix`` and the gate's ``reasons``
    rendered in ``lang`` from their message ids (text without ids is left as it came)."""
    if body is None:
        return None
    out = copy.deepcopy(body)
    for check in out.get("checks") or []:
        if not isinstance(check, dict):
            continue
        message = _message(check.get("message_id"), check.get("message_params"))
        if message is not None:
            check["message"] = render(message, lang)
        fix = _message(check.get("fix_id"), check.get("fix_params"))
        if fix is not None:
            check["fix"] = render(fix, lang)
    gate = out.get("gate")
    if isinstance(gate, dict):
        gate["reasons"] = localized_reasons(gate.get("reasons") or [],
                                            gate.get("reason_messages") or [], lang)
    return out


def localized_reasons(texts: Sequence[object], messages: Sequence[object],
                      lang: str) -> list[str]:
    """Gate reasons in ``lang``: each one's message when it has one, else its text."""
    out = []
    for i, text in enumerate(texts):
        message = Msg.from_json(messages[i]) if i < len(messages) else None
        out.append(render(message, lang) if message is not None else str(text))
    return out


def first_reason(body: dict[str, Any] | None, lang: str) -> dict[str, str | None] | None:
    """Why a workstation cannot take calls, in one line of ``lang``: its first failing check
    (the heartbeat lists them in catalogue order: the link and the VPN before what they cause)
    with that check's message, ``{"check": id, "text": message or None}``; when no check fails
    but the gate is still closed (its recovery time), the gate's first reason with
    ``"check": None``; None when the heartbeat gives no reason at all."""
    if body is None:
        return None
    for check in body.get("checks") or []:
        if isinstance(check, dict) and check.get("status") == "fail":
            message = _message(check.get("message_id"), check.get("message_params"))
            text = render(message, lang) if message is not None else check.get("message")
            return {"check": str(check.get("id")), "text": str(text) if text else None}
    gate = body.get("gate")
    if isinstance(gate, dict) and not gate.get("open") and gate.get("reasons"):
        reasons = localized_reasons(gate.get("reasons") or [],
                                    gate.get("reason_messages") or [], lang)
        return {"check": None, "text": reasons[0]}
    return None


def render_all(messages: Iterable[Msg | str], lang: str) -> list[str]:
    """Messages the center made itself (``center.gate``), in ``lang``."""
    return [render(m, lang) for m in messages]


__all__ = ["LANG_COOKIE", "SUPPORTED", "accepted_language", "first_reason",
           "localized_heartbeat", "localized_reasons", "render_all", "viewer_language"]
