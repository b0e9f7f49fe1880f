"""The reflector's per-session state: what a stateful STAMP Session-Reflector keeps (RFC 8762
section 4.3: in stateful mode it keeps the test state, so forward and return loss can be told
apart), bounded because the reflector faces the public internet.

A session is one test stream: a path test (``probes.network.path_packet``, keyed by the
sender's address, port and session id) or a STAMP session-sender (``agent_kit.center.stamp``,
keyed by address, port and SSID). Per session the table keeps the count of distinct sequence
numbers answered, the highest one and a 64-bit window of which of the last 64 were answered
(the path test returns them in each reply), and when it last heard from the session.

Bounds (an attacker can spoof source addresses, so every one of them holds):

- ``max_sessions`` in all (4096 by default, about a megabyte); a newcomer that finds no room
  gets no state: its packets are answered statelessly (a path test then reports round-trip
  loss only).
- ``max_per_source`` sessions per source address (16), so one address cannot fill the table.
- A session idle for ``idle_s`` (10 s: a stream sends every 20 ms, its count query follows
  within about 2 s) is forgotten; the table is swept at most once a second, so a flood of
  newcomers costs one pass over the table per second, not one per packet.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field

from probes.network.path_packet import WINDOW_BITS, SessionCounts

DEFAULT_MAX_SESSIONS = 4096
DEFAULT_MAX_PER_SOURCE = 16
DEFAULT_IDLE_S = 10.0
_SWEEP_EVERY_S = 1.0
_WINDOW_MASK = (1 << WINDOW_BITS) - 1


@dataclass
class _Session:
    source: str
    session_id: int
    reflected: int = 0
    highest_seq: int = -1
    window: int = 0
    last_seen: float = 0.0

    def record(self, seq: int) -> None:
        """Count ``seq`` as answered (a duplicate within the window is not counted again;
        one older than the window cannot be told from a duplicate and is counted)."""
        if seq > self.highest_seq:
            shift = seq - self.highest_seq if self.highest_seq >= 0 else WINDOW_BITS
            self.window = (self.window << shift | 1) & _WINDOW_MASK if shift < WINDOW_BITS \
                else 1
            self.highest_seq = seq
            self.reflected += 1
            return
        back = self.highest_seq - seq
        if back < WINDOW_BITS:
            if self.window >> back & 1:
                return   # a duplicate: answered again, not counted again
            self.window |= 1 << back
        self.reflected += 1

    def counts(self) -> SessionCounts:
        return SessionCounts(self.session_id, self.reflected, max(0, self.highest_seq),
                             self.window)


@dataclass
class ReflectorSessions:
    """Bounded per-session counts. ``clock`` is monotonic seconds (injectable for tests)."""

    max_sessions: int = DEFAULT_MAX_SESSIONS
    max_per_source: int = DEFAULT_MAX_PER_SOURCE
    idle_s: float = DEFAULT_IDLE_S
    clock: Callable[[], float] = time.monotonic
    _sessions: dict[Hashable, _Session] = field(default_factory=dict)
    _per_source: dict[str, int] = field(default_factory=dict)
    _swept: float = float("-inf")

    def answered(self, key: Hashable, source: str, session_id: int,
                 seq: int) -> SessionCounts | None:
        """Record that ``seq`` of the session ``key`` (from ``source``) is being answered and
        return the session's counts after it; None when there is no room for the session."""
        session = self._session(key, source, session_id, create=True)
        if session is None:
            return None
        session.record(seq)
        return session.counts()

    def peek(self, key: Hashable) -> SessionCounts | None:
        """The session's counts as they stand (a count query), None for an unknown session."""
        session = self._session(key, "", 0, create=False)
        return None if session is None else session.counts()

    def next_seq(self, key: Hashable, source: str, session_id: int) -> int | None:
        """For a STAMP stateful reflector: its own sequence number for the next packet of the
        session (0, 1, 2, ...), counting it; None when there is no room for the session."""
        session = self._session(key, source, session_id, create=True)
        if session is None:
            return None
        session.reflected += 1
        return session.reflected - 1

    def _session(self, key: Hashable, source: str, session_id: int,
                 create: bool) -> _Session | None:
        now = self.clock()
        if now - self._swept >= _SWEEP_EVERY_S:
            self._sweep(now)
        session = self._sessions.get(key)
        if session is not None and now - session.last_seen > self.idle_s:
            self._drop(key)
            session = None
        if session is None:
            if not create or len(self._sessions) >= self.max_sessions \
                    or self._per_source.get(source, 0) >= self.max_per_source:
                return None
            session = self._sessions[key] = _Session(source, session_id)
            self._per_source[source] = self._per_source.get(source, 0) + 1
        session.last_seen = now
        return session

    def _sweep(self, now: float) -> None:
        self._swept = now
        for key in [k for k, s in self._sessions.items() if now - s.last_seen > self.idle_s]:
            self._drop(key)

    def _drop(self, key: Hashable) -> None:
        session = self._sessions.pop(key)
        left = self._per_source[session.source] - 1
        if left:
            self._per_source[session.source] = left
        else:
            del self._per_source[session.source]

    def __len__(self) -> int:
        return len(self._sessions)
