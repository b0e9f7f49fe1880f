"""Webhook alerts: a workstation went offline, stopped meeting call standards, or recovered.

A background thread compares each workstation's derived condition (ok / offline / not_ready)
with the last one alerted (``agents.alert_state``); the process that moves the state in the
database sends the alert, so several center processes never alert twice. Delivery (httpx, with
stamina's retries) is bounded: a few tries per alert (``webhook_attempts``), each with short
timeouts, exponential back-off with jitter between them, retried only when the failure may pass
(no connection, a timeout, a 5xx or 429 answer), never after another 4xx. It runs in the alert
thread, off the intake path.
"""

from __future__ import annotations

import json
import logging
import threading

import httpx
import stamina
from stamina.instrumentation import RetryDetails, set_on_retry_hooks

from agent_kit.center.fleet import iso
from agent_kit.center.runtime import CenterRuntime

log = logging.getLogger("agent_kit.center.alerts")
WAIT_MAX_S = 5.0          # longest back-off between two tries
# The failures that may pass by themselves: no connection, a reset one, no answer in time.
TRANSIENT_ERRORS = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)


def transient(exc: Exception) -> bool:
    """Is a delivery failure worth another try: a network failure or timeout, a 5xx (the
    receiver is down or overloaded) or 429 (too many requests); never another 4xx (the request
    itself is refused: the same request will be refused again)."""
    if isinstance(exc, httpx.HTTPStatusError):
        code = exc.response.status_code
        return code == 429 or code >= 500
    return isinstance(exc, TRANSIENT_ERRORS)


def post_json(url: str, payload: dict[str, object], *, attempts: int = 3,
              timeout_s: float = 5.0, backoff_s: float = 0.5) -> bool:
    """POST JSON; True once a try got a 2xx. At most ``attempts`` tries, each with
    ``timeout_s`` timeouts; transient failures (:func:`transient`) wait ``backoff_s``, then
    twice that, ... (plus up to ``backoff_s`` of jitter, at most ``WAIT_MAX_S``) and try again.
    Never raises."""
    body = json.dumps(payload).encode()
    headers = {"Content-Type": "application/json", "User-Agent": "agent-center"}
    try:
        with httpx.Client(timeout=timeout_s, headers=headers) as client:
            for attempt in stamina.retry_context(
                    on=transient, attempts=attempts, timeout=None, wait_initial=backoff_s,
                    wait_max=WAIT_MAX_S, wait_jitter=backoff_s):
                with attempt:
                    client.post(url, content=body).raise_for_status()
        return True
    except httpx.HTTPStatusError as exc:
        log.warning("webhook delivery failed: HTTP %d%s", exc.response.status_code,
                    f" after {attempts} tries" if transient(exc) else " (not retried)")
    except Exception as exc:  # noqa: BLE001 - a webhook must never break the center
        log.warning("webhook delivery failed%s: %s",
                    f" after {attempts} tries" if transient(exc) else "", type(exc).__name__)
    return False


def _log_retry(details: RetryDetails) -> None:
    """stamina's hook for each retry it schedules: one log line, as every center log."""
    log.warning("webhook delivery failed (try %d), trying again in %.1f s: %s",
                details.retry_num, details.wait_for, _failure(details.caused_by))


def _failure(exc: Exception) -> str:
    if isinstance(exc, httpx.HTTPStatusError):
        return f"HTTP {exc.response.status_code}"
    return type(exc).__name__


class AlertLoop:
    def __init__(self, rt: CenterRuntime) -> None:
        self.rt = rt
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="center-alerts", daemon=True)
        # Retries are logged through the center's logger, and only that: stamina's default
        # would also count them in prometheus_client's global registry, which /metrics shows
        # only with several workers (its files), not with one.
        set_on_retry_hooks([_log_retry])

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def check_once(self) -> int:
        """Send the alerts due now; returns how many were sent."""
        settings = self.rt.settings
        url = settings.webhook_url
        sent = 0
        now = self.rt.now
        for agent_id, hostname, old, new, failing in self.rt.store.alert_candidates(now):
            if not self.rt.store.claim_alert(agent_id, old, new):
                continue
            if url is None:
                continue
            event = {"offline": "agent_offline", "not_ready": "agent_not_ready",
                     "ok": "agent_recovered"}[new]
            payload: dict[str, object] = {
                "event": event, "agent_id": agent_id, "hostname": hostname, "previous": old,
                "state": new, "failing": [f for f in failing.split(",") if f], "at": iso(now)}
            if post_json(url, payload, attempts=settings.webhook_attempts,
                         timeout_s=settings.webhook_timeout_s,
                         backoff_s=settings.webhook_backoff_s):
                sent += 1
        return sent

    def _run(self) -> None:
        while not self._stop.wait(self.rt.settings.alert_period_s):
            try:
                self.check_once()
            except Exception as exc:  # noqa: BLE001 - keep checking; the database may return
                log.warning("alert check failed: %s", type(exc).__name__)
