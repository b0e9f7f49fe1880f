"""Webhook alerts: a workstation went offline, stopped meeting call standards, or recovered.

A background thread compares each workstation's derived condition (ok / offline / not_ready)
with the last one alerted (``agents.alert_state``); the process that moves the state in the
database sends the alert, so several center processes never alert twice. Delivery is bounded
(3 tries, short timeouts) and runs off the intake path.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import urllib.request

from agent_kit.center.fleet import iso
from agent_kit.center.runtime import CenterRuntime

log = logging.getLogger("agent_kit.center.alerts")
TRIES = 3


def post_json(url: str, payload: dict[str, object], timeout_s: float = 5.0) -> bool:
    """POST JSON; True on a 2xx. Retries with a short backoff; never raises."""
    data = json.dumps(payload).encode()
    for attempt in range(TRIES):
        try:
            request = urllib.request.Request(url, data=data, method="POST",
                                             headers={"Content-Type": "application/json",
                                                      "User-Agent": "agent-center"})
            with urllib.request.urlopen(request, timeout=timeout_s) as response:  # noqa: S310
                if 200 <= response.status < 300:
                    return True
        except Exception as exc:  # noqa: BLE001 - a webhook must never break the center
            log.warning("webhook delivery failed (try %d/%d): %s", attempt + 1, TRIES,
                        type(exc).__name__)
        time.sleep(0.5 * (attempt + 1))
    return False


class AlertLoop:
    def __init__(self, rt: CenterRuntime) -> None:
        self.rt = rt
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="center-alerts", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def check_once(self) -> int:
        """Send the alerts due now; returns how many were sent."""
        url = self.rt.settings.webhook_url
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
            if post_json(url, payload):
                sent += 1
        return sent

    def _run(self) -> None:
        while not self._stop.wait(self.rt.settings.alert_period_s):
            try:
                self.check_once()
            except Exception as exc:  # noqa: BLE001 - keep checking; the database may return
                log.warning("alert check failed: %s", type(exc).__name__)
