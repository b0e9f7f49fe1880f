"""Talking to the center as an enrolled workstation: signed requests, heartbeat delivery.

``CenterClient`` signs every request (docs/center-api.md, "Workstation request signature";
``agent_kit.core.wire.signing``), corrects its clock from the center's ``server_time`` (a 401
``clock_skew`` is retried once with the corrected time), and takes an injectable ``httpx``
transport, so tests swap the network (``httpx.MockTransport``) and the fault tests use a real
center.

``Courier`` moves heartbeats from the spool to the center: the newest first (current state is
never starved by a backlog), then the backlog oldest first in batches. Errors:

- transient (no answer, timeout, 5xx, 408, 429, a clock skew that persists): keep everything,
  retry later with exponential backoff and jitter (``Retry-After`` respected);
- the batch is refused as malformed (400, 409 ``seq_conflict``, 413, 422): never retried as is;
  a batch is split to find the bad heartbeat(s), which are dropped from the spool and counted;
- the credential is refused (403 ``retired``, any other 401/403) or the URL is wrong (404...):
  delivery stops, the spool is kept, and the user is told (re-enroll).
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from agent_kit import __version__
from agent_kit.core.wire import heartbeat
from agent_kit.core.wire.signing import signature_headers
from agent_kit.link.state_folder import Enrollment
from agent_kit.loop.spool import Spool, Spooled

log = logging.getLogger("agent_kit.heartbeat")

TRANSIENT_STATUS = {408, 429, 500, 502, 503, 504}
BATCH_PROBLEM_STATUS = {400, 409, 413, 422}
MAX_BATCH = heartbeat.MAX_BATCH   # the center's limit per request


class CenterUnavailable(Exception):
    """No usable answer now (network, timeout, 5xx, 408, 429): try again later."""

    def __init__(self, reason: str, retry_after_s: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after_s = retry_after_s


class CenterRefused(Exception):
    """A permanent answer: retrying the same request cannot help."""

    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(f"{status} {code}: {detail}" if detail else f"{status} {code}")
        self.status, self.code, self.detail = status, code, detail

    @property
    def retired(self) -> bool:
        return self.status == 403 and self.code == "retired"

    @property
    def credential_problem(self) -> bool:
        """The workstation itself is refused: every later request would be refused too."""
        return self.status not in BATCH_PROBLEM_STATUS


def _error_of(response: httpx.Response) -> tuple[str, str, Any]:
    try:
        data = response.json()
    except ValueError:
        return f"http_{response.status_code}", response.text[:200], None
    if not isinstance(data, dict):
        return f"http_{response.status_code}", "", None
    detail = data.get("detail")
    return (str(data.get("error") or f"http_{response.status_code}"),
            detail if isinstance(detail, str) else json.dumps(detail)[:300] if detail else "",
            data.get("server_time"))


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


class CenterClient:
    """Signed requests of one enrolled workstation to its center."""

    def __init__(self, enrollment: Enrollment, *, transport: httpx.BaseTransport | None = None,
                 clock: Callable[[], float] = time.time, timeout_s: float = 10.0,
                 clock_offset_s: float = 0.0) -> None:
        self.enrollment = enrollment
        self.clock = clock
        self.offset_s = clock_offset_s   # center clock minus ours, learnt from server_time
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
        """Unix time as the center counts it."""
        return self.clock() + self.offset_s

    def learn_server_time(self, server_time: object) -> None:
        if isinstance(server_time, (int, float)) and not isinstance(server_time, bool):
            offset = float(server_time) - self.clock()
            # server_time is whole seconds: ignore sub-second noise, keep real corrections
            if abs(offset - self.offset_s) > 2.0:
                log.info("clock offset to the center: %+.0f s", offset)
                self.offset_s = offset

    def request(self, method: str, path: str, payload: Any = None) -> httpx.Response:
        """A signed request; raises CenterUnavailable or CenterRefused unless 2xx."""
        body = b"" if payload is None else json.dumps(payload, separators=(",", ":")).encode()
        for attempt in (1, 2):
            headers = signature_headers(self.enrollment.agent_id, self.enrollment.secret,
                                        method, path, body, int(self.now()))
            if body:
                headers["Content-Type"] = "application/json"
            try:
                response = self._http.request(method, path, content=body, headers=headers)
            except httpx.HTTPError as exc:
                raise CenterUnavailable(f"{type(exc).__name__}: {exc}") from None
            if response.is_success:
                return response
            code, detail, server_time = _error_of(response)
            if response.status_code == 401 and code == "clock_skew" and server_time is not None:
                self.learn_server_time(server_time)
                if attempt == 1:
                    continue
                raise CenterUnavailable("the center still finds our clock skewed")
            if response.status_code in TRANSIENT_STATUS:
                raise CenterUnavailable(f"{response.status_code} {code}",
                                        _retry_after(response))
            raise CenterRefused(response.status_code, code, detail)
        raise AssertionError("unreachable")  # pragma: no cover

    def post_heartbeats(self, heartbeats: Sequence[heartbeat.Heartbeat]) -> dict[str, str]:
        """``{id: "stored"|"duplicate"}`` for every heartbeat the center acknowledged."""
        response = self.request("POST", heartbeat.PATH, heartbeat.heartbeat_batch(heartbeats))
        data = response.json()
        self.learn_server_time(data.get("server_time"))
        return {r["id"]: r["status"] for r in data.get("results", [])
                if isinstance(r, dict) and r.get("status") in ("stored", "duplicate")}

    def gate(self) -> dict[str, Any]:
        data: dict[str, Any] = self.request(
            "GET", f"/api/v1/gate/{self.enrollment.agent_id}").json()
        return data

    def policy_toml(self) -> str:
        data = self.request("GET", "/api/v1/policy").json()
        toml = data.get("toml") if isinstance(data, dict) else None
        if not isinstance(toml, str):
            raise CenterUnavailable("the center's policy answer has no TOML")
        return toml


@dataclass
class Backoff:
    """Exponential backoff with "equal jitter": half the step fixed, half random (AWS
    Architecture Blog, "Exponential Backoff and Jitter"), so a fleet does not retry in step."""

    base_s: float = 2.0
    cap_s: float = 60.0
    rng: random.Random = field(default_factory=random.Random)
    failures: int = 0

    def next_delay(self, retry_after_s: float | None = None) -> float:
        step = min(self.cap_s, self.base_s * 2.0 ** min(self.failures, 30))
        self.failures += 1
        delay = float(step / 2 + self.rng.uniform(0, step / 2))
        if retry_after_s is not None:
            delay = max(delay, min(retry_after_s, 10 * self.cap_s))
        return delay

    def reset(self) -> None:
        self.failures = 0


@dataclass(frozen=True)
class DeliveryResult:
    delivered: int = 0            # newly stored at the center
    duplicates: int = 0           # the center already had them (a lost answer, resent)
    rejected: int = 0             # refused as malformed: dropped from the spool
    error: str | None = None      # why delivery stopped early, if it did
    stopped: CenterRefused | None = None   # the workstation is refused: stop delivering
    retry_in_s: float | None = None        # when a transient failure wants a retry


class Courier:
    """Spool -> center. Call ``deliver`` when ``due``; it never raises for network trouble."""

    def __init__(self, spool: Spool, client: CenterClient, *, batch_size: int = 100,
                 backoff: Backoff | None = None, clock: Callable[[], float] = time.monotonic,
                 time_budget_s: float = 20.0) -> None:
        self.spool, self.client, self.clock = spool, client, clock
        self.batch_size = max(1, min(batch_size, MAX_BATCH))
        self.backoff = backoff or Backoff()
        self.time_budget_s = time_budget_s
        self.next_attempt_at = 0.0
        self.stopped: CenterRefused | None = None
        self.last_error: str | None = None
        self.last_success_at: float | None = None   # unix time (center clock)

    def due(self) -> bool:
        return self.stopped is None and self.clock() >= self.next_attempt_at

    def deliver(self) -> DeliveryResult:
        """Newest first, then the backlog oldest first, until empty or the time budget."""
        if self.stopped is not None:
            return DeliveryResult(error=str(self.stopped), stopped=self.stopped)
        started = self.clock()
        totals = [0, 0, 0]   # delivered, duplicates, rejected
        try:
            newest = self.spool.newest()
            if newest is not None:
                self._send([newest], totals)
                sent_newest = {newest.seq}
                while self.clock() - started < self.time_budget_s:
                    batch = self.spool.oldest(self.batch_size, excluding=sent_newest)
                    if not batch or self._send(batch, totals) == 0:
                        break   # empty, or the center acknowledged none of it: next time
        except CenterUnavailable as exc:
            delay = self.backoff.next_delay(exc.retry_after_s)
            self.next_attempt_at = self.clock() + delay
            self.last_error = str(exc)
            log.warning("center unavailable (%s); %d heartbeat(s) kept, retry in %.1f s",
                        exc, self.spool.stats().pending, delay)
            return self._result(totals, error=str(exc), retry_in_s=delay)
        except CenterRefused as exc:
            self.stopped, self.last_error = exc, str(exc)
            log.error("the center refuses this workstation (%s): delivery stopped, "
                      "%d heartbeat(s) kept", exc, self.spool.stats().pending)
            return self._result(totals, error=str(exc), stopped=exc)
        self.backoff.reset()
        self.next_attempt_at = 0.0
        self.last_error = None
        self.last_success_at = self.client.now()
        return self._result(totals)

    @staticmethod
    def _result(totals: list[int], *, error: str | None = None,
                stopped: CenterRefused | None = None,
                retry_in_s: float | None = None) -> DeliveryResult:
        return DeliveryResult(delivered=totals[0], duplicates=totals[1], rejected=totals[2],
                              error=error, stopped=stopped, retry_in_s=retry_in_s)

    def _send(self, batch: list[Spooled], totals: list[int]) -> int:
        """Send one batch; returns how many heartbeats left the spool."""
        try:
            acked = self.client.post_heartbeats([s.body for s in batch])
        except CenterRefused as exc:
            if exc.credential_problem:
                raise
            if len(batch) > 1:   # find the bad one(s): each alone
                return sum(self._send([one], totals) for one in batch)
            log.error("the center refused heartbeat seq %d for good (%s); dropped",
                      batch[0].seq, exc)
            removed = self.spool.reject([batch[0].id])
            totals[2] += removed
            return removed
        ours = {s.id for s in batch}
        acked = {i: st for i, st in acked.items() if i in ours}
        totals[0] += sum(1 for st in acked.values() if st == "stored")
        totals[1] += sum(1 for st in acked.values() if st == "duplicate")
        return self.spool.ack(acked)
