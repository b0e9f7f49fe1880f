"""Heartbeat delivery: the spool to the center, through the signed client.

``Courier`` moves heartbeats from the spool to the center: the newest first (current state is
never starved by a backlog), then the backlog oldest first in batches. Errors:

- transient (no answer, timeout, 5xx, 408, 429, a clock skew that persists): keep everything,
  retry later with exponential backoff and jitter (``Retry-After`` respected);
- a 409 ``seq_conflict`` that says the center's highest stored seq (``detail.last_seq``): the
  spool was lost or replaced and its counter is behind the center's; the waiting heartbeats are
  renumbered after it (``Spool.resync``) and sent again at once, none dropped. One whose id the
  center already holds (``detail.stored_seq``) is delivered: it leaves the spool;
- the batch is refused as malformed (400, 409 without ``last_seq``, 413, 422): never retried as
  is; a batch is split to find the bad heartbeat(s), which are dropped from the spool and
  counted;
- the credential is refused (403 ``retired``, any other 401/403) or the URL is wrong (404...):
  delivery stops, the spool is kept, and the user is told (re-enroll).
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from agent_kit.core.wire.heartbeat import MAX_BATCH
from agent_kit.link.client import CenterClient, CenterRefused, CenterUnavailable
from agent_kit.loop.spool import Spool, Spooled

log = logging.getLogger("agent_kit.heartbeat")

# Renumberings in one delivery before it waits for the next attempt: one is the lost-spool case;
# more only when something else keeps taking the seqs (a copied enrollment on a second machine).
MAX_RESYNCS_PER_DELIVERY = 3


class _Resynced(Exception):
    """The spool was renumbered, or a heartbeat found delivered already (``progress``: one
    left the spool, which bounds itself): start the delivery again."""

    def __init__(self, progress: bool = False) -> None:
        super().__init__()
        self.progress = progress


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
            renumbered = 0
            while True:
                try:
                    self._send_spool(started, totals)
                    break
                except _Resynced as again:
                    renumbered += 0 if again.progress else 1
                if renumbered > MAX_RESYNCS_PER_DELIVERY:
                    raise CenterUnavailable("the center keeps finding this workstation's "
                                            "heartbeat numbers taken (is its enrollment used on "
                                            "another computer too?)")
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

    def _send_spool(self, started: float, totals: list[int]) -> None:
        """The newest heartbeat alone, then the backlog oldest first, within the time budget."""
        newest = self.spool.newest()
        if newest is None:
            return
        self._send([newest], totals)
        sent_newest = {newest.seq}
        while self.clock() - started < self.time_budget_s:
            batch = self.spool.oldest(self.batch_size, excluding=sent_newest)
            if not batch or self._send(batch, totals) == 0:
                break   # empty, or the center acknowledged none of it: next time

    def _settle_conflict(self, refused: CenterRefused, batch: list[Spooled],
                         totals: list[int]) -> None:
        """A 409 ``seq_conflict`` the spool can settle: raises :class:`_Resynced` when it did
        (the delivery starts again), returns when it cannot (an older center's answer)."""
        clashing = refused.data.get("id")
        if refused.stored_seq is not None and any(s.id == clashing for s in batch):
            # the center has this very heartbeat under its earlier seq: it is delivered
            log.info("heartbeat %s is already stored at the center (seq %d)", clashing,
                     refused.stored_seq)
            removed = self.spool.ack([str(clashing)])
            totals[1] += removed
            if removed:
                raise _Resynced(progress=True)
            return
        last_seq = refused.center_last_seq
        if last_seq is None:
            return
        done = self.spool.resync(last_seq)
        if done is None:
            return
        log.warning("the center already holds heartbeats up to seq %d under other ids (this "
                    "computer's spool was lost or replaced): %d waiting heartbeat(s) renumbered "
                    "after it and sent again", last_seq, done.renumbered)
        raise _Resynced

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
            if exc.code == "seq_conflict":
                self._settle_conflict(exc, batch, totals)
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
