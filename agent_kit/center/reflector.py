"""The center's UDP reflector for path tests (TWAMP-light style, RFC 5357 appendix I), that
also answers standard STAMP session-senders (RFC 8762, unauthenticated mode).

Agents stream voice-sized UDP packets to it (``agent-kit check``, ``probes/network/path.py``); it
echoes each one with its own receive and send timestamps, so the agent can take the
reflector's processing time out of the RTT and compute jitter per direction, and, when the
agent asks (FLAG_COUNT), with its per-session count of what it received, so the agent knows
the loss of each direction without synchronised clocks (a stateful reflector, as STAMP's
stateful Session-Reflector, RFC 8762 section 4.3).

Packet format (big-endian; ``probes/network/path_packet.py`` holds the one definition, the
count block and the compatibility rules with version-1 agents and reflectors)::

    offset size field
     0     4    magic            b"AKPT"
     4     1    version          1
     5     1    kind             1 = request, 2 = reply, 3 = count query, 4 = count answer
     6     2    flags            bit 0: per-session counts asked for / present
     8     4    seq              sender sequence number
    12     8    sender_tx_ns     sender send time, ns
    20     8    reflector_rx_ns  reflector receive time, ns (0 in a request)
    28     8    reflector_tx_ns  reflector send time, ns (0 in a request)
    36     ...  zero padding, or the count block (session id, reflected, highest seq, window)

A request is padded to the size of a voice packet (12-byte RTP header + payload; G.711 20 ms:
172 bytes). Requests of 36..1472 bytes are answered. A 44-byte datagram that does not start
with b"AKPT" is read as a STAMP session-sender test packet and answered with a 44-byte
session-reflector test packet (section "STAMP" below).

Safety:
- No amplification: an answer has exactly the request's size, never more, and nothing of the
  sender's bytes beyond the header (path test) or the fields STAMP copies is echoed.
- Bounded state: the rate limiter's table and the session table (``ReflectorSessions``: at
  most 4096 sessions, 16 per source address, forgotten after 10 s idle; with no room, packets
  are answered without state).
- Rate limit: a token bucket per source IP address (``max_pps_per_source`` packets/s, bursts up
  to one second's worth); packets over the limit are dropped silently (and not counted).
- Malformed packets, replies (so two reflectors cannot be made to ping-pong), oversized
  datagrams and sources with a port below 1024 (spoofed reflection towards well-known
  services) are ignored without an answer.

Run it alone for an edge site: ``python -m agent_kit.center.reflector --host 0.0.0.0
--port 8751``; ``agent-center serve`` starts one with ``start_reflector``.
"""

from __future__ import annotations

import argparse
import signal
import socket
import struct
import sys
import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field

from probes.network.path_packet import (
    FLAG_COUNT,
    KIND_COUNT_QUERY,
    KIND_REQUEST,
    MAX_PACKET_BYTES,
    WINDOW_BITS,
    SessionCounts,
    answer_to,
    decode,
    is_path_packet,
)
from probes.network.udp_clock import enable_rx_timestamps, enable_rx_ttl, now_ns, recv_stamped_ttl

DEFAULT_PORT = 8751
DEFAULT_MAX_PPS_PER_SOURCE = 200   # 4 simultaneous G.711 tests (50 packets/s) from one address
MAX_SOURCES = 65536                # bound of the rate limiter's table
_IDLE_FORGET_S = 10.0


@dataclass
class _Bucket:
    tokens: float
    last: float


@dataclass
class TokenBuckets:
    """Per-source token buckets: ``rate`` tokens/s, at most ``burst`` saved up."""

    rate: float
    burst: float
    clock: Callable[[], float] = time.monotonic
    max_sources: int = MAX_SOURCES
    _buckets: dict[str, _Bucket] = field(default_factory=dict)

    def allow(self, source: str) -> bool:
        """Take one token from ``source``'s bucket; False when it is empty."""
        now = self.clock()
        bucket = self._buckets.get(source)
        if bucket is None:
            if len(self._buckets) >= self.max_sources:
                self._forget_idle(now)
                if len(self._buckets) >= self.max_sources:
                    return False   # table full of active sources: refuse newcomers
            bucket = self._buckets[source] = _Bucket(self.burst, now)
        bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.last) * self.rate)
        bucket.last = now
        if bucket.tokens < 1.0:
            return False
        bucket.tokens -= 1.0
        return True

    def _forget_idle(self, now: float) -> None:
        for key in [k for k, b in self._buckets.items() if now - b.last > _IDLE_FORGET_S]:
            del self._buckets[key]

    def __len__(self) -> int:
        return len(self._buckets)


# ---- the session table -------------------------------------------------------------------
# The reflector's per-session state: what a stateful STAMP Session-Reflector keeps (RFC 8762
# section 4.3: in stateful mode it keeps the test state, so forward and return loss can be told
# apart), bounded because the reflector faces the public internet.
#
# A session is one test stream: a path test (``probes.network.path_packet``, keyed by the
# sender's address, port and session id) or a STAMP session-sender (below, keyed by address,
# port and SSID). Per session the table keeps the count of distinct sequence
# numbers answered, the highest one and a 64-bit window of which of the last 64 were answered
# (the path test returns them in each reply), and when it last heard from the session.
#
# Bounds (an attacker can spoof source addresses, so every one of them holds):
#
# - ``max_sessions`` in all (4096 by default, about a megabyte); a newcomer that finds no room
#   gets no state: its packets are answered statelessly (a path test then reports round-trip
#   loss only).
# - ``max_per_source`` sessions per source address (16), so one address cannot fill the table.
# - A session idle for ``idle_s`` (10 s: a stream sends every 20 ms, its count query follows
#   within about 2 s) is forgotten; the table is swept at most once a second, so a flood of
#   newcomers costs one pass over the table per second, not one per packet.

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


# ---- STAMP -------------------------------------------------------------------------------
# STAMP (RFC 8762) Session-Reflector packets, unauthenticated mode: so that a standard STAMP
# session-sender (a router's, a monitoring system's) can measure the path to the center too.
#
# Session-sender test packet (RFC 8762 section 4.2.1; bytes 14-15 are MBZ there and
# the SSID of RFC 8972 section 3), 44 bytes::
#
#      0  4  Sequence Number
#      4  8  Timestamp                  (NTP 64-bit, or PTPv2 truncated when Z = 1)
#     12  2  Error Estimate             S | Z | Scale (6 bits) | Multiplier (8 bits), RFC 4656
#     14  2  SSID / MBZ
#     16 28  MBZ
#
# Session-reflector test packet (section 4.3.1), 44 bytes as well, so the answer is
# never larger than the question::
#
#      0  4  Sequence Number            stateful: the reflector's own count per session, 0, 1,
#                                       ...; stateless: the sender's (section 4.3.1)
#      4  8  Timestamp                  when the reflector sent this answer
#     12  2  Error Estimate             the reflector's (S = 0: no external sync claimed)
#     14  2  SSID / MBZ                 copied
#     16  8  Receive Timestamp          when the reflector received the test packet
#     24  4  Session-Sender Sequence Number   copied
#     28  8  Session-Sender Timestamp         copied
#     36  2  Session-Sender Error Estimate    copied
#     38  2  MBZ
#     40  1  Session-Sender TTL         TTL / hop limit of the received packet (0: unknown)
#     41  3  MBZ
#
# The reflector answers in the timestamp format the sender used (its Z flag), keeps a count per
# session (source address, port, SSID) in the bounded session table (``ReflectorSessions``:
# stateful mode, so the sender can tell forward loss from return loss) and answers statelessly
# when the table has no room. Only the 44-byte base packet is answered: authenticated mode
# (112 bytes) and RFC 8972 TLVs are not supported.
#
# Telling path-test packets and STAMP apart: a path-test packet starts with b"AKPT"; anything
# that does is handled as a path-test packet (or dropped when malformed), never as STAMP. A
# STAMP packet starts with its sequence number, so one with sequence number 0x414B5054
# (1 095 454 804, i.e. b"AKPT": more than 250 days of a 50 packets/s session) would not be
# answered; every other 44-byte datagram is read as STAMP.

STAMP_PACKET_BYTES = 44
_SENDER = struct.Struct("!IQHH")                # seq, timestamp, error estimate, SSID
_REFLECTOR = struct.Struct("!IQHHQIQHHB3x")     # RFC 8762 section 4.3.1
_NTP_UNIX_OFFSET_S = 2_208_988_800              # 1900-01-01 to 1970-01-01 (RFC 5905)
_Z_FLAG = 0x4000
# Error Estimate (RFC 4656 4.1.2): S = 0 (no external synchronisation claimed), Scale 22 and
# Multiplier 1: 2^22 * 2^-32 s, about 1 ms. Chosen: the reflector does not know how well its
# clock is synchronised; only its own differences (receive -> send) are meant to be used.
_ERROR_SCALE = 22
_ERROR_MULTIPLIER = 1


@dataclass(frozen=True)
class StampTest:
    """A session-sender test packet, as far as the reflector reads it."""

    seq: int
    timestamp: int          # as sent (64 bits, the sender's format)
    error_estimate: int
    ssid: int

    @property
    def ptp_format(self) -> bool:
        """True when the sender uses PTPv2 truncated timestamps (Z flag set)."""
        return bool(self.error_estimate & _Z_FLAG)


def parse_stamp_test(data: bytes) -> StampTest | None:
    """The session-sender test packet in ``data``, or None if it cannot be one (not 44 bytes,
    or a path-test packet's magic)."""
    if len(data) != STAMP_PACKET_BYTES or data[:4] == b"AKPT":
        return None
    seq, timestamp, error, ssid = _SENDER.unpack_from(data)
    return StampTest(seq, timestamp, error, ssid)


def stamp_timestamp(ns: int, ptp: bool) -> int:
    """``ns`` (Unix epoch, ns) as a 64-bit STAMP timestamp: NTP (seconds since 1900 and a
    32-bit binary fraction, RFC 5905) or, with ``ptp``, PTPv2 truncated (seconds since 1970
    and nanoseconds, 32 bits each; RFC 8762 section 4.2.1)."""
    seconds, rest_ns = divmod(ns, 1_000_000_000)
    if ptp:
        return (seconds & 0xFFFFFFFF) << 32 | rest_ns
    fraction = (rest_ns << 32) // 1_000_000_000
    return ((seconds + _NTP_UNIX_OFFSET_S) & 0xFFFFFFFF) << 32 | fraction


def reflect_stamp(test: StampTest, reflector_seq: int, rx_ns: int, tx_ns: int,
            sender_ttl: int | None) -> bytes:
    """The 44-byte session-reflector test packet answering ``test`` (RFC 8762 4.3.1)."""
    ptp = test.ptp_format
    error = (_Z_FLAG if ptp else 0) | _ERROR_SCALE << 8 | _ERROR_MULTIPLIER
    ttl = sender_ttl if sender_ttl is not None and 0 <= sender_ttl <= 255 else 0
    return _REFLECTOR.pack(reflector_seq & 0xFFFFFFFF, stamp_timestamp(tx_ns, ptp), error,
                           test.ssid, stamp_timestamp(rx_ns, ptp), test.seq, test.timestamp,
                           test.error_estimate, 0, ttl)


@dataclass(frozen=True)
class ReflectorStats:
    answered: int
    ignored: int        # malformed, oversized, replies, low source ports
    rate_limited: int
    stamp_answered: int = 0    # of ``answered``: STAMP session-sender packets
    sessions: int = 0          # sessions in the table now


class ReflectorHandle:
    """A reflector running in a background thread. ``address`` is the bound (host, port)."""

    def __init__(self, sock: socket.socket, max_pps_per_source: int,
                 sessions: ReflectorSessions | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._sock = sock
        self._kernel = enable_rx_timestamps(sock)
        self._ttl = enable_rx_ttl(sock)
        self._limit = TokenBuckets(rate=float(max_pps_per_source),
                                   burst=float(max_pps_per_source), clock=clock)
        self._sessions = sessions if sessions is not None else ReflectorSessions(clock=clock)
        self._stop = threading.Event()
        self._answered = self._ignored = self._limited = self._stamp = 0
        name = sock.getsockname()
        self.address: tuple[str, int] = (str(name[0]), int(name[1]))
        sock.settimeout(0.2)   # how often the loop looks at the stop flag
        self._thread = threading.Thread(target=self._serve, name="reflector", daemon=True)
        self._thread.start()

    @property
    def stats(self) -> ReflectorStats:
        return ReflectorStats(self._answered, self._ignored, self._limited, self._stamp,
                              len(self._sessions))

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                data, addr, rx_ns, ttl = recv_stamped_ttl(self._sock, MAX_PACKET_BYTES + 1,
                                                          self._kernel, self._ttl)
            except TimeoutError:
                continue
            except OSError:
                if self._stop.is_set():
                    return
                continue   # e.g. ICMP errors from an earlier reply; keep serving
            self._handle(data, addr, rx_ns, ttl)

    def _handle(self, data: bytes, addr: object, rx_ns: int, ttl: int | None = None) -> None:
        if not isinstance(addr, tuple) or len(addr) < 2 or int(addr[1]) < 1024:
            self._ignored += 1
            return
        path = is_path_packet(data)
        if path:
            answer = self._path_answer(data, addr, rx_ns)
        else:
            answer = self._stamp_answer(data, addr, rx_ns, ttl)
        if answer is None:
            return
        try:
            self._sock.sendto(answer, addr)
        except OSError:
            return
        self._answered += 1
        self._stamp += not path

    def _allowed(self, source: str) -> bool:
        if self._limit.allow(source):
            return True
        self._limited += 1
        return False

    def _path_answer(self, data: bytes, addr: tuple[object, ...], rx_ns: int) -> bytes | None:
        request = decode(data, KIND_REQUEST)
        query = None if request is not None else decode(data, KIND_COUNT_QUERY)
        if request is None and query is None:
            self._ignored += 1
            return None
        source = str(addr[0])
        # the limit comes before the count: a packet that is not answered is not counted
        if not self._allowed(source):
            return None
        counts = None
        if request is not None and request.flags & FLAG_COUNT:
            counts = self._sessions.answered(("path", source, addr[1], request.session_id),
                                             source, request.session_id, request.seq)
        elif query is not None and query.flags & FLAG_COUNT:
            counts = self._sessions.peek(("path", source, addr[1], query.session_id))
        return answer_to(data, rx_ns, now_ns(), counts)

    def _stamp_answer(self, data: bytes, addr: tuple[object, ...], rx_ns: int,
                      ttl: int | None) -> bytes | None:
        test = parse_stamp_test(data)
        if test is None:
            self._ignored += 1
            return None
        source = str(addr[0])
        if not self._allowed(source):
            return None
        # stateful when the table has room (RFC 8762 4.3.1: the reflector's own sequence
        # number per session), stateless (the sender's number) when it has not
        seq = self._sessions.next_seq(("stamp", source, addr[1], test.ssid), source, test.ssid)
        return reflect_stamp(test, test.seq if seq is None else seq, rx_ns, now_ns(), ttl)

    def close(self) -> None:
        """Stop answering and release the port."""
        self._stop.set()
        self._thread.join(timeout=2.0)
        self._sock.close()

    def __enter__(self) -> ReflectorHandle:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def start_reflector(host: str, port: int, *,
                    max_pps_per_source: int = DEFAULT_MAX_PPS_PER_SOURCE,
                    sessions: ReflectorSessions | None = None,
                    clock: Callable[[], float] = time.monotonic) -> ReflectorHandle:
    """Bind ``host:port`` (port 0: any free port) and answer path-test and STAMP packets in a
    thread. ``sessions``: the session table (its bounds); None: the default bounds.
    ``clock`` (monotonic seconds) paces the rate limiter and the default session table.

    Raises OSError when the address cannot be bound, ValueError for a bad rate.
    """
    if max_pps_per_source < 1:
        raise ValueError("max_pps_per_source must be at least 1")
    family, _, _, _, sockaddr = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM,
                                                   flags=socket.AI_PASSIVE)[0]
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        sock.bind(sockaddr)
    except OSError:
        sock.close()
        raise
    return ReflectorHandle(sock, max_pps_per_source, sessions, clock)


def main(argv: list[str] | None = None) -> int:
    """``python -m agent_kit.center.reflector --host H --port P``: a reflector alone."""
    parser = argparse.ArgumentParser(prog="python -m agent_kit.center.reflector",
                                     description="UDP reflector for agent-kit path tests.")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (0.0.0.0 or :: for every interface)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="UDP port")
    parser.add_argument("--max-pps-per-source", type=int, default=DEFAULT_MAX_PPS_PER_SOURCE,
                        help="packets per second answered per source address")
    args = parser.parse_args(argv)
    if not 0 <= args.port < 65536:
        parser.error(f"--port {args.port} must be 0..65535")
    if args.max_pps_per_source < 1:
        parser.error("--max-pps-per-source must be at least 1")
    try:
        handle = start_reflector(args.host, args.port,
                                 max_pps_per_source=args.max_pps_per_source)
    except (OSError, UnicodeError) as exc:
        print(f"cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 2
    done = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: done.set())
    host, port = handle.address
    print(f"reflector listening on {host}:{port} (UDP)", flush=True)
    try:
        while not done.wait(0.5):
            pass
    finally:
        handle.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
