"""Send a diagnosis report to the center (``POST /api/v1/reports``), signed as the workstation.

The signature is the one docs/center-api.md gives for every workstation request:
HMAC-SHA256(secret, METHOD \\n PATH \\n TIMESTAMP \\n hex(SHA256(body))). A 401 ``clock_skew``
answer carries the center's time: the request is signed again with that offset, once.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from agent_kit.config import Enrollment

if TYPE_CHECKING:
    import httpx

    from agent_kit.diagnose import Diagnosis

REPORTS_PATH = "/api/v1/reports"


class UploadError(Exception):
    """The report could not be sent; the message says why in plain words."""


@dataclass(frozen=True)
class UploadResult:
    report_id: str
    url: str          # absolute URL of the report on the center


def signed_headers(enrollment: Enrollment, method: str, path: str, body: bytes,
                   timestamp: int) -> dict[str, str]:
    """The three X-Agent-* headers of a workstation request."""
    text = "\n".join((method.upper(), path, str(timestamp), hashlib.sha256(body).hexdigest()))
    signature = hmac.new(enrollment.secret.encode(), text.encode(), hashlib.sha256).hexdigest()
    return {"X-Agent-Id": enrollment.agent_id, "X-Agent-Timestamp": str(timestamp),
            "X-Agent-Signature": signature}


def report_body(diagnosis: Diagnosis, html: str, *, report_id: str | None = None,
                created_at: datetime | None = None) -> dict[str, Any]:
    """The JSON body docs/center-api.md gives for ``POST /api/v1/reports``."""
    return {"id": report_id or str(uuid.uuid4()),
            "created_at": (created_at or datetime.now(UTC)).isoformat(timespec="seconds"),
            "verdict": diagnosis.report.verdict.value,
            "likely_cause": diagnosis.likely.key if diagnosis.likely else None,
            "summary": diagnosis.summary(), "html": html}


def upload_report(enrollment: Enrollment, body: dict[str, Any], *,
                  transport: httpx.BaseTransport | None = None,
                  clock: Callable[[], float] = time.time,
                  timeout_s: float = 15.0) -> UploadResult:
    """POST the report; raise ``UploadError`` with a plain reason when the center refuses."""
    import httpx

    data = json.dumps(body, ensure_ascii=False).encode("utf-8")
    offset = 0.0
    with httpx.Client(base_url=enrollment.center_url, transport=transport,
                      timeout=timeout_s) as client:
        for _attempt in range(2):
            headers = signed_headers(enrollment, "POST", REPORTS_PATH, data,
                                     int(clock() + offset))
            headers["Content-Type"] = "application/json"
            try:
                response = client.post(REPORTS_PATH, content=data, headers=headers)
            except httpx.HTTPError as exc:
                raise UploadError(f"the center {enrollment.center_url} does not answer: "
                                  f"{exc}") from None
            answer = _json(response)
            if response.status_code == 401 and answer.get("error") == "clock_skew" \
                    and isinstance(answer.get("server_time"), int | float):
                offset = float(answer["server_time"]) - clock()
                continue
            if response.status_code in (200, 201) and isinstance(answer.get("report_id"), str):
                url = str(answer.get("url") or "")
                if url.startswith("/"):
                    url = enrollment.center_url.rstrip("/") + url
                return UploadResult(report_id=answer["report_id"], url=url)
            raise UploadError(f"the center refused the report: HTTP {response.status_code} "
                              f"{answer.get('error') or ''} {answer.get('detail') or ''}".strip())
    raise UploadError("the center refused the report: clock skew persists")


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        value = response.json()
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
