"""Budgets per source address: a token bucket for each address, in this process's memory.

The center uses them for failed authentication (``auth.py``: each failed attempt takes one
token; an empty bucket answers 429 ``too_many_failures``), for the log lines of refused
requests (``request_log.py``) and for the bytes of the bandwidth endpoint (``speedtest.py``).

The buckets are per process: with ``serve --workers N`` (or N hosts) the kernel spreads a
source's connections over the processes, so a source gets up to N times the budget. Sharing
them in the database would cost a write per failed attempt, which is what an attacker controls.

Sources are keyed by address (parsed only when a budget is asked, not for every request); an
IPv6 address by its /64, the block one subscriber usually gets
(rotating addresses inside it gains nothing). The number of sources kept is bounded: full
buckets are forgotten first, then the oldest.
"""

from __future__ import annotations

import ipaddress
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

MAX_SOURCES = 65_536


def source_key(host: str | None) -> str:
    """The budget key of a client address: the IPv4 address, an IPv6 /64, or the text as
    given when it is not an address (a Unix socket, a test client)."""
    if not host:
        return "?"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host[:100]
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


@dataclass
class _Bucket:
    level: float
    at: float


class SourceBudgets:
    """A token bucket per source: ``capacity`` tokens, refilled at ``refill_per_s``."""

    def __init__(self, capacity: float, refill_per_s: float,
                 clock: Callable[[], float] = time.monotonic,
                 max_sources: int = MAX_SOURCES) -> None:
        if capacity <= 0 or refill_per_s <= 0:
            raise ValueError("a budget needs a positive capacity and refill rate")
        self.capacity, self.refill_per_s = float(capacity), float(refill_per_s)
        self.clock, self.max_sources = clock, max_sources
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()   # routes run in the event loop and in worker threads

    def _bucket(self, source: str, now: float) -> _Bucket:
        bucket = self._buckets.get(source)
        if bucket is None:
            if len(self._buckets) >= self.max_sources:
                self._forget(now)
            bucket = self._buckets[source] = _Bucket(self.capacity, now)
        else:
            bucket.level = min(self.capacity,
                               bucket.level + (now - bucket.at) * self.refill_per_s)
            bucket.at = now
        return bucket

    def _forget(self, now: float) -> None:
        for source in [s for s, b in self._buckets.items()
                       if b.level + (now - b.at) * self.refill_per_s >= self.capacity]:
            del self._buckets[source]
        while len(self._buckets) >= self.max_sources:   # the oldest first (insertion order)
            del self._buckets[next(iter(self._buckets))]

    def wait_s(self, source: str, amount: float = 1.0) -> float:
        """Seconds until ``amount`` tokens are there (0: now); nothing is taken. ``source``: a
        client address (keyed by :func:`source_key`)."""
        source = source_key(source)
        with self._lock:
            bucket = self._bucket(source, self.clock())
            return max(0.0, (amount - bucket.level) / self.refill_per_s)

    def take(self, source: str, amount: float = 1.0) -> float:
        """Take ``amount`` tokens: 0.0 when taken, else the seconds until they will be there
        (nothing is taken)."""
        source = source_key(source)
        with self._lock:
            bucket = self._bucket(source, self.clock())
            if bucket.level >= amount:
                bucket.level -= amount
                return 0.0
            return max(1e-3, (amount - bucket.level) / self.refill_per_s)

    def give_back(self, source: str, amount: float) -> None:
        """Return tokens taken but not used (a download cut short)."""
        source = source_key(source)
        with self._lock:
            bucket = self._bucket(source, self.clock())
            bucket.level = min(self.capacity, bucket.level + amount)


def retry_after_header(wait_s: float) -> str:
    """``Retry-After`` in whole seconds, at least 1."""
    return str(max(1, math.ceil(wait_s)))
