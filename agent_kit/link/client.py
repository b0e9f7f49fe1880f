"""Talking to the center as an enrolled workstation: signed requests.

``CenterClient`` signs every request (docs/center-api.md, "Workstation request signature";
``agent_kit.core.wire.signing``), corrects its clock from the center's ``server_time`` (a 401
``clock_skew`` is retried once with the corrected time, a 409 ``replayed`` once signed a second
later), and takes an injectable ``httpx``
transport, so tests swap the network (``httpx.MockTransport``) and the fault tests use a real
center. What its answers mean for heartbeat delivery is the courier's business
(``agent_kit.loop.courier``).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from agent_kit import __version__
from agent_kit.core.wire import heartbeat
from agent_kit.core.wire.signing import signature_headers
from agent_kit.link.state_folder import Enrollment

log = logging.getLogger("agent_kit.heartbeat")

TRANSIENT_STATUS = {408, 429, 500, 502, 503, 504}
BATCH_PROBLEM_STATUS = {400, 409, 413, 422}


class CenterUnavailable(Exception):
    """No usable answer now (network, timeout, 5xx, 408, 429): try again later."""

    def __init__(self, reason: str, retry_after_s: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after_s = retry_after_s


class CenterRefused(Exception):
    """A permanent answer: retrying the same request cannot help."""

    def __init__(self, status: int, code: str, detail: str,
                 data: dict[str, Any] | None = None) -> None:
        super().__init__(f"{status} {code}: {detail}" if detail else f"{status} {code}")
        self.status, self.code, self.detail = status, code, detail
        self.data = data or {}   # the answer's ``detail`` when it is an object

    @property
    def center_last_seq(self) -> int | None:
        """A 409 ``seq_conflict``: the workstation's highest seq the center has stored."""
        return _whole(self.data.get("last_seq")) if self.code == "seq_conflict" else None

    @property
    def stored_seq(self) -> int | None:
        """A 409 ``seq_conflict``: the seq under which the clashing heartbeat's id is already
        stored, when it is."""
        return _whole(self.data.get("stored_seq")) if self.code == "seq_conflict" else None

    @property
    def retired(self) -> bool:
        return self.status == 403 and self.code == "retired"

    @property
    def credential_problem(self) -> bool:
        """The workstation itself is refused: every later request would be refused too."""
        return self.status not in BATCH_PROBLEM_STATUS


def _whole(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 \
        else None


def _error_of(response: httpx.Response) -> tuple[str, str, Any, dict[str, Any] | None]:
    """The error code, the detail as one line, ``server_time``, and the detail object."""
    try:
        data = response.json()
    except ValueError:
        return f"http_{response.status_code}", response.text[:200], None, None
    if not isinstance(data, dict):
        return f"http_{response.status_code}", "", None, None
    detail = data.get("detail")
    if isinstance(detail, dict) and isinstance(detail.get("message"), str):
        text = detail["message"]
    else:
        text = detail if isinstance(detail, str) else json.dumps(detail)[:300] if detail else ""
    return (str(data.get("error") or f"http_{response.status_code}"), text,
            data.get("server_time"), detail if isinstance(detail, dict) else None)


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


@dataclass(frozen=True)
class PolicyDocument:
    """``GET /api/v1/policy``: ``(toml_text, source)`` layers to merge over the default in
    order, and the center's tag for them."""

    layers: tuple[tuple[str, str], ...]
    tag: str | None


class CenterClient:
    """Signed requests of one enrolled workstation to its center."""

    def __init__(self, enrollment: Enrollment, *, transport: httpx.BaseTransport | None = None,
                 clock: Callable[[], float] = time.time, timeout_s: float = 10.0,
                 clock_offset_s: float = 0.0) -> None:
        self.enrollment = enrollment
        self.clock = clock
        self.offset_s = clock_offset_s   # center clock minus ours, learnt from server_time
        # the tag of the policy the center wants this workstation to run, from the last
        # heartbeat acknowledgement (None: none yet, or a center before policy versions)
        self.center_policy_tag: str | None = None
        self._http = httpx.Client(base_url=enrollment.center_url, transport=transport,
                                  timeout=httpx.Timeout(timeout_s, connect=min(5.0, timeout_s)),
                                  headers={"User-Agent": f"agent-kit/{__version__}"})

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> CenterClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def now(self) -> float:
        """Unix time as the center counts it, for signing requests only: ``server_time`` comes
        in unsigned answers, so nothing that decides a login may trust this offset
        (``agent_kit.link.clearance`` checks clearances by this computer's clock)."""
        return self.clock() + self.offset_s

    def learn_server_time(self, server_time: object) -> None:
        if isinstance(server_time, (int, float)) and not isinstance(server_time, bool):
            offset = float(server_time) - self.clock()
            # server_time is whole seconds: ignore sub-second noise, keep real corrections
            if abs(offset - self.offset_s) > 2.0:
                log.info("clock offset to the center: %+.0f s", offset)
                self.offset_s = offset

    def request(self, method: str, path: str, payload: Any = None,
                params: dict[str, str] | None = None) -> httpx.Response:
        """A signed request (``params``: its query string, which the signature leaves out);
        raises CenterUnavailable or CenterRefused unless 2xx."""
        body = b"" if payload is None else json.dumps(payload, separators=(",", ":")).encode()
        later_s = 0
        for attempt in (1, 2):
            headers = signature_headers(self.enrollment.agent_id, self.enrollment.secret,
                                        method, path, body, int(self.now()) + later_s)
            if body:
                headers["Content-Type"] = "application/json"
            try:
                response = self._http.request(method, path, content=body, headers=headers,
                                              params=params)
            except httpx.HTTPError as exc:
                raise CenterUnavailable(f"{type(exc).__name__}: {exc}") from None
            if response.is_success:
                return response
            code, detail, server_time, data = _error_of(response)
            if response.status_code == 401 and code == "clock_skew" and server_time is not None:
                self.learn_server_time(server_time)
                if attempt == 1:
                    continue
                raise CenterUnavailable("the center still finds our clock skewed")
            if response.status_code == 409 and code == "replayed" and attempt == 1:
                # The center serves a signature once (gate, reports): the same request was
                # signed in the same second by another process of this workstation. Signing it
                # one second later makes it a new one.
                later_s = 1
                continue
            if response.status_code in TRANSIENT_STATUS:
                raise CenterUnavailable(f"{response.status_code} {code}",
                                        _retry_after(response))
            raise CenterRefused(response.status_code, code, detail, data)
        raise AssertionError("unreachable")  # pragma: no cover

    def post_heartbeats(self, heartbeats: Sequence[heartbeat.Heartbeat]) -> dict[str, str]:
        """``{id: "stored"|"duplicate"}`` for every heartbeat the center acknowledged."""
        response = self.request("POST", heartbeat.PATH, heartbeat.heartbeat_batch(heartbeats))
        data = response.json()
        self.learn_server_time(data.get("server_time"))
        tag = data.get("policy_tag")
        if isinstance(tag, str):
            self.center_policy_tag = tag
        return {r["id"]: r["status"] for r in data.get("results", [])
                if isinstance(r, dict) and r.get("status") in ("stored", "duplicate")}

    def gate(self, nonce: str | None = None) -> dict[str, Any]:
        """The center's gate answer for this workstation; ``nonce`` (sent as the query
        parameter, which the signature does not cover) comes back signed in the clearance. The
        reasons come in the language this process speaks (``lang``)."""
        from agent_kit.core.i18n import current_language

        path = f"/api/v1/gate/{self.enrollment.agent_id}"
        params = {"lang": current_language()}
        if nonce is not None:
            params["nonce"] = nonce
        data: dict[str, Any] = self.request("GET", path, params=params).json()
        return data

    def policy_document(self) -> PolicyDocument:
        """This workstation's effective policy at the center: the layers to merge over the
        default in order (a center before policy versions sends one, its ``toml``) and the tag
        the heartbeat acknowledgement names it by (None from such a center)."""
        data = self.request("GET", "/api/v1/policy").json()
        if not isinstance(data, dict) or not isinstance(data.get("toml"), str):
            raise CenterUnavailable("the center's policy answer has no TOML")
        layers: list[tuple[str, str]] = []
        raw = data.get("layers")
        if isinstance(raw, list):
            for layer in raw:
                if not isinstance(layer, dict) or not isinstance(layer.get("toml"), str):
                    raise CenterUnavailable("the center's policy answer has a bad layer")
                where = "fleet" if layer.get("team") is None else f"team {layer.get('team')}"
                layers.append((layer["toml"], f"center policy ({where}, version "
                               f"{layer.get('version_id')})"))
        else:
            layers.append((data["toml"], "center policy"))
        tag = data.get("tag")
        return PolicyDocument(tuple(layers), tag if isinstance(tag, str) else None)
