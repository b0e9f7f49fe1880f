"""Alerts: the rules (``alert_config.py``, ``alert_rules.py``) turned into incidents, each
delivered once on opening and once on recovery to its channels (``alert_channels.py``).

A background thread per center process runs :meth:`AlertLoop.check_once` every
``check_every`` (default 5 s):

1. each rule is evaluated against the fleet's latest state (``agents``); a subject whose
   condition holds gets a *pending* incident, which *opens* once the condition has held for the
   rule's ``for`` and *resolves* once it has been gone for its ``recover_for``; a pending one
   whose condition goes never was an incident;
2. opening and resolving write the deliveries (one per channel) in the same transaction, by the
   one process whose conditional UPDATE matched (``incident_store.py``): several processes on one
   database, or a restart, never alert twice;
3. due deliveries are claimed and sent, one round each (bounded tries with stamina's back-off,
   transient failures only); a round that failed transiently is due again after ``retry``
   (doubling up to ``retry_max``), until ``give_up_after`` from the event; then it is marked
   failed, logged once, and shown as such by ``GET /api/v1/incidents``. A refusal (HTTP 4xx
   but 429, SMTP 5xx, a failed login) fails at once. A recovery is sent only after its
   channel's opening message was (or was given up).

Intake never waits for any of it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from stamina.instrumentation import set_on_retry_hooks

from agent_kit.center.alert_channels import log_retry, send
from agent_kit.center.alert_config import AlertConfig
from agent_kit.center.alert_rules import Evaluation, evaluate, resolved_facts
from agent_kit.center.alert_text import rendered, webhook_json
from agent_kit.center.incident_store import DUE, FAILED, OPEN, PENDING, SENT, IncidentStore
from agent_kit.center.runtime import CenterRuntime

log = logging.getLogger("agent_kit.center.alerts")


class AlertLoop:
    def __init__(self, rt: CenterRuntime) -> None:
        self.rt = rt
        self.config: AlertConfig = rt.alerting
        self.store = IncidentStore(rt.db)
        self._stop = threading.Event()
        self._wake = threading.Event()     # an incident opened or resolved: deliver now
        self._tick = threading.Event()     # set only to stop: the rules' own clock
        # Two threads: a channel that is down (each round up to attempts x timeout) never
        # holds up the rules, nor do the rules the sending.
        self._threads = [
            threading.Thread(target=self._run, args=(self.evaluate_rules, self._tick),
                             name="center-alert-rules", daemon=True),
            threading.Thread(target=self._run, args=(self.deliver_due, self._wake),
                             name="center-alert-delivery", daemon=True)]
        # Retries are logged through the center's logger, and only that: stamina's default
        # would also count them in prometheus_client's global registry, which /metrics shows
        # only with several workers (its files), not with one.
        set_on_retry_hooks([log_retry])

    @property
    def period_s(self) -> float:
        return self.config.check_every_s or self.rt.settings.alert_period_s

    def start(self) -> None:
        if self.config.rules:
            for thread in self._threads:
                thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self._tick.set()
        for thread in self._threads:
            if thread.is_alive():
                thread.join(timeout=5)

    def check_once(self) -> int:
        """Evaluate the rules, open and resolve incidents, send what is due; returns how many
        deliveries were sent."""
        self.evaluate_rules()
        return self.deliver_due()

    # -- incidents ------------------------------------------------------------------------
    def evaluate_rules(self) -> None:
        now = self.rt.now
        seen: dict[str, Evaluation] = {}
        live = {(i.rule, i.subject) for i in self.store.live()}
        for each in self.config.rules:
            seen[each.name] = found = evaluate(each, self.store, now)
            for subject, holds in found.active.items():
                if (each.name, subject) not in live:
                    self.store.add_pending(each.name, each.kind, subject,
                                           now if holds.since is None else holds.since,
                                           holds.facts)
        for inc in self.store.live():
            rule = self.config.rule(inc.rule)
            if rule is None:   # a rule taken out of the file: its incidents end quietly
                if inc.state == PENDING:
                    self.store.drop_pending(inc.incident_id)
                else:
                    self.store.resolve(inc.incident_id, now, None, ())
                continue
            ev = seen[rule.name]
            cond = ev.active.get(inc.subject)
            channels = self.config.channels_of(rule)
            if cond is not None:
                if inc.state == PENDING and inc.since + rule.for_s <= now:
                    if self.store.open(inc.incident_id, now, cond.facts, channels):
                        log.info("incident %s opened: rule %s", inc.incident_id, rule.name)
                        self._wake.set()
                elif inc.state == OPEN and inc.clear_since is not None:
                    self.store.set_clearing(inc.incident_id, None)
            elif inc.state == PENDING:
                self.store.drop_pending(inc.incident_id)
            elif rule.recover_for_s > 0 and inc.clear_since is None:
                self.store.set_clearing(inc.incident_id, now)
            elif (inc.clear_since is None or now - inc.clear_since >= rule.recover_for_s) \
                    and self.store.resolve(inc.incident_id, now,
                                           resolved_facts(rule, inc.subject, ev), channels):
                log.info("incident %s resolved: rule %s", inc.incident_id, rule.name)
                self._wake.set()

    # -- deliveries -----------------------------------------------------------------------
    def deliver_due(self) -> int:
        """Send the deliveries due now, one round each; returns how many were sent. A channel
        whose round failed is left alone for the rest of this pass (its other deliveries stay
        due): one round per pass and channel while it is down."""
        policy = self.config.delivery
        sent = 0
        down: set[str] = set()
        for d in self.store.due(self.rt.now):
            if self._stop.is_set():
                break
            if d.channel in down or not self.store.claim(d, self.rt.now, policy.lease_s):
                continue
            channel = self.config.channel(d.channel)
            ev = self.store.incident(d.incident_id, d.event)
            if channel is None or ev is None:
                self.store.finish(d, FAILED, self.rt.now, error="channel no longer configured")
                continue
            try:
                chat, subject, body = rendered(ev, self.config.language)
                payload = webhook_json(ev)
            except Exception as exc:  # noqa: BLE001 - a bug: this one fails, the rest go on
                log.warning("alert delivery of incident %s could not be written: %s",
                            d.incident_id, type(exc).__name__)
                self.store.finish(d, FAILED, self.rt.now, error=type(exc).__name__)
                continue
            outcome = send(channel, payload, body if channel.kind == "email" else chat,
                           subject, policy)
            now = self.rt.now
            rounds = d.tries + 1
            if outcome.sent:
                self.store.finish(d, SENT, now)
                sent += 1
                continue
            down.add(d.channel)
            wait_s = min(policy.retry_s * 2 ** (rounds - 1), policy.retry_max_s)
            if outcome.retry and now + wait_s <= d.created_at + policy.give_up_s:
                log.warning("alert delivery to channel %s failed (%s), round %d: trying again "
                            "in %.0f s", channel.name, outcome.reason, rounds, wait_s)
                self.store.finish(d, DUE, now, next_at=now + wait_s, error=outcome.reason)
            else:
                log.warning("alert delivery to channel %s failed (%s)%s: incident %s, %s not "
                            "delivered", channel.name, outcome.reason,
                            f" for {rounds} round(s), giving up" if outcome.retry
                            else " (not retried)", d.incident_id, d.event)
                self.store.finish(d, FAILED, now, error=outcome.reason)
        return sent

    def _run(self, step: Callable[[], object], wake: threading.Event) -> None:
        while not self._stop.is_set():
            wake.wait(self.period_s)
            wake.clear()
            if self._stop.is_set():
                return
            try:
                step()
            except Exception as exc:  # noqa: BLE001 - keep checking; the database may return
                log.warning("alert %s failed: %s", step.__name__.replace("_", " "),
                            type(exc).__name__)
