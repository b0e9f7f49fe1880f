"""Which headset and which network link a workstation uses, read from its last heartbeat.

A heartbeat carries no device list: what names the devices are the parameters of two checks'
messages (``agent_kit.evaluate.audio`` and ``agent_kit.evaluate.link``), which the agent sends
as message ids + parameters (``core.wire.heartbeat``):

- ``audio.headset``: ``name`` (or ``mic``) is the microphone calls use, ``out`` the speaker when
  it is another device, ``kind`` its kind as a message ("USB headset");
- ``network.link``: ``interface`` is the interface, plain or as the message "{interface} at
  {speed} Mbit/s"; the check's whole message ("Wi-Fi (wlan0 at 300 Mbit/s)") says the kind.

Names are the workstation's own text (shown as text, never markup); kinds and the link's line
are rendered in the reader's language. A parameter that is missing reads as None.
"""

from __future__ import annotations

from typing import Any, TypedDict

from agent_kit.core.checks import AUDIO_HEADSET, NETWORK_LINK
from agent_kit.core.i18n import Msg, render


class Headset(TypedDict):
    check: str               # the check naming it (its title labels it)
    status: str | None
    microphone: str | None
    speaker: str | None      # only when sound plays through another device
    kind: str | None


class Link(TypedDict):
    check: str
    status: str | None
    interface: str | None
    speed_mbps: float | None
    text: str | None         # the check's message: kind and interface, in the reader's words


class Devices(TypedDict):
    headset: Headset | None
    link: Link | None


def _check(body: dict[str, Any], check_id: str) -> dict[str, Any] | None:
    for check in body.get("checks") or []:
        if isinstance(check, dict) and check.get("id") == check_id:
            return check
    return None


def _params(check: dict[str, Any]) -> dict[str, Any]:
    params = check.get("message_params")
    return params if isinstance(params, dict) else {}


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _rendered(value: object, lang: str) -> str | None:
    if isinstance(value, dict):
        message = Msg.from_json(value)
        return render(message, lang) if message is not None else None
    return _text(value)


def _headset(check: dict[str, Any], lang: str) -> Headset:
    params = _params(check)
    return {"check": AUDIO_HEADSET.id, "status": _text(check.get("status")),
            "microphone": _text(params.get("name")) or _text(params.get("mic")),
            "speaker": _text(params.get("out")),
            "kind": _rendered(params.get("kind"), lang)}


def _link(check: dict[str, Any], lang: str) -> Link:
    interface = _params(check).get("interface")
    speed: float | None = None
    if isinstance(interface, dict):
        inner = interface.get("params")
        inner = inner if isinstance(inner, dict) else {}
        raw_speed = inner.get("speed")
        speed = float(raw_speed) if isinstance(raw_speed, (int, float)) and \
            not isinstance(raw_speed, bool) else None
        interface = inner.get("interface")
    message = Msg.from_json({"id": check.get("message_id"),
                             "params": check.get("message_params")})
    text = render(message, lang) if message is not None else _text(check.get("message"))
    return {"check": NETWORK_LINK.id, "status": _text(check.get("status")),
            "interface": _text(interface),
            "speed_mbps": speed, "text": text}


def devices_of(body: dict[str, Any] | None, lang: str) -> Devices:
    """The headset and the link of a stored heartbeat, in ``lang`` (None where it has no such
    check)."""
    if body is None:
        return {"headset": None, "link": None}
    headset = _check(body, AUDIO_HEADSET.id)
    link = _check(body, NETWORK_LINK.id)
    return {"headset": _headset(headset, lang) if headset else None,
            "link": _link(link, lang) if link else None}
