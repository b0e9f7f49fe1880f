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
session-reflector test packet (``agent_kit.center.stamp``).

Safety:
- No amplification: an answer has exactly the request's size, never more, and nothing of the
  sender's bytes beyond the header (path test) or the fields STAMP copies is echoed.
- Bounded state: the rate limiter's table and the session table
  (``agent_kit.center.reflector_sessions``: at most 4096 sessions, 16 per source address,
  forgotten after 10 s idle; with no room, packets are answered without state).
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
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from agent_kit.center import stamp
from agent_kit.center.reflector_sessions import ReflectorSessions
from probes.network.path_packet import (
    FLAG_COUNT,
    KIND_COUNT_QUERY,
    KIND_REQUEST,
    MAX_PACKET_BYTES,
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
        test = stamp.parse_test(data)
        if test is None:
            self._ignored += 1
            return None
        source = str(addr[0])
        if not self._allowed(source):
            return None
        # stateful when the table has room (RFC 8762 4.3.1: the reflector's own sequence
        # number per session), stateless (the sender's number) when it has not
        seq = self._sessions.next_seq(("stamp", source, addr[1], test.ssid), source, test.ssid)
        return stamp.reflect(test, test.seq if seq is None else seq, rx_ns, now_ns(), ttl)

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
