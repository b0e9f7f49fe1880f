"""Send a diagnosis report to the center (``POST /api/v1/reports``), signed as the workstation.

Signed with ``agent_kit.core.wire.signing.signature_headers``, the one signature of every
workstation request (docs/center-api.md).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from agent_kit.core.wire.signing import signature_headers
from agent_kit.link.state_folder import Enrollment

if TYPE_CHECKING:
    import httpx

REPORTS_PATH = "/api/v1/reports"


class UploadError(Exception):
    """The report could not be sent; the message says why in plain words."""


@dataclass(frozen=True)
class UploadResult:
    report_id: str
    url: str          # absolute URL of the report on the center


def upload_report(enrollment: Enrollment, html: str, *,
                  transport: httpx.BaseTransport | None = None,
                  clock: Callable[[], float] = time.time,
                  timeout_s: float = 15.0) -> UploadResult:
    """POST the HTML report; raise ``UploadError`` with a plain reason when it does not arrive.

    The body is the HTML itself (``text/html``), as the center's endpoint takes it; the request
    is signed as every workstation request is (``core.wire.signing``); a ``clock_skew`` refusal
    is retried once at the center's time, a ``replayed`` one (the center takes a signature
    once) signed a second later.
    """
    import httpx

    body = html.encode("utf-8")
    offset = 0.0
    with httpx.Client(base_url=enrollment.center_url, transport=transport,
                      timeout=timeout_s) as client:
        for _attempt in range(2):
            headers = signature_headers(enrollment.agent_id, enrollment.secret, "POST",
                                        REPORTS_PATH, body, int(clock() + offset))
            headers["Content-Type"] = "text/html; charset=utf-8"
            try:
                response = client.post(REPORTS_PATH, content=body, headers=headers)
            except httpx.HTTPError as exc:
                raise UploadError(f"the center {enrollment.center_url} does not answer: "
                                  f"{type(exc).__name__}: {exc}") from None
            answer = _json(response)
            if response.status_code == 401 and answer.get("error") == "clock_skew" \
                    and isinstance(answer.get("server_time"), int | float):
                offset = float(answer["server_time"]) - clock()
                continue
            if response.status_code == 409 and answer.get("error") == "replayed":
                offset += 1.0   # this very report was signed in this second already: re-sign
                continue
            if response.is_success and isinstance(answer.get("report_id"), str):
                url = str(answer.get("url") or "")
                if url.startswith("/"):
                    url = enrollment.center_url.rstrip("/") + url
                return UploadResult(report_id=answer["report_id"], url=url or (
                    f"{enrollment.center_url.rstrip('/')}/agents/{enrollment.agent_id}"))
            raise UploadError(f"the center refused the report: HTTP {response.status_code} "
                              f"{answer.get('error') or ''} {answer.get('detail') or ''}".strip())
    raise UploadError("the center refused the report: our clock is still off")


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        value = response.json()
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
