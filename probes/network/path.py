"""Network path quality to the center: an RTP-like stream to the center's UDP reflector.

Sends voice-sized packets (12-byte RTP header + codec payload; G.711 at 20 ms: 160 bytes, 50
packets/s) for a few seconds to the reflector (``probes.network.path_packet`` describes the
wire format) and computes from the echoes:

- RTT per packet = (agent receive - agent send) - (reflector send - reflector receive), i.e. the
  reflector's own processing time is taken out (TWAMP, RFC 5357); median and 95th percentile.
- RFC 3550 interarrival jitter per direction: upstream from the agent's send and the
  reflector's receive times, downstream from the reflector's send and the agent's receive
  times. Clock offsets cancel in the differences, so no clock sync is needed. Two figures per
  direction (``probes.network.rtp_stats``): J at the end of the stream (the RFC 3550 figure,
  what RTCP and iperf3 report) and the steady mean |D| (what J estimates, without its
  warm-up from 0).
- Loss per direction: the reflector counts what it answered per session (stateful, like
  STAMP's stateful Session-Reflector, RFC 8762 section 4.3) and returns the count in each
  reply, so forward loss = sent - answered, return loss = answered - echoes back
  (``probes.network.rtp_stats.split_directions`` places each lost packet on its
  way); per direction also the
  worst loss in any full 200 ms window and the G.107 BurstR. After the stream, when packets
  are missing, a count query asks the reflector for its final count. A reflector that does not
  count (an older one) leaves the per-direction figures None: round-trip loss only.
- Round-trip loss, worst 200 ms and BurstR, reordering per direction (RFC 4737), duplicates.

The default test takes 6 s (Twilio's preflight takes 20 s, Teams' network test 17 s).
Nothing here judges the numbers: see ``agent_kit.evaluate.network``.
"""

from __future__ import annotations

import contextlib
import secrets
import selectors
import socket
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from probes.network import rtp_stats
from probes.network.path_packet import (
    COUNTED_PACKET_BYTES,
    FLAG_COUNT,
    KIND_COUNT_ANSWER,
    KIND_COUNT_QUERY,
    KIND_REPLY,
    KIND_REQUEST,
    MAX_PACKET_BYTES,
    PathPacket,
    SessionCounts,
    decode,
    encode,
    packet_size,
)
from probes.network.udp_clock import enable_rx_timestamps, now_ns, recv_stamped

COUNT_QUERY_ATTEMPTS = 3


@dataclass(frozen=True)
class PathReading:
    """What one path test saw. Times in ms; ``None`` where nothing came back to compute from.

    "up" is agent -> center (forward: what the far end of a call hears), "down" is
    center -> agent (return: what the agent hears). The per-direction loss figures are None
    when the reflector does not count per session (``reflected`` None)."""

    target: str                         # "host:port" of the reflector
    sent: int
    received: int                       # distinct packets echoed back
    duplicates: int
    rtt_ms_samples: tuple[float, ...]   # per echoed packet, in sequence order
    rtt_median_ms: float | None
    rtt_p95_ms: float | None
    rtt_min_ms: float | None
    jitter_ms: float | None             # the worse direction's RFC 3550 J
    jitter_up_ms: float | None          # RFC 3550 J at the end of the stream, agent -> center
    jitter_down_ms: float | None        # the same, center -> agent
    jitter_up_steady_ms: float | None   # mean |D| over the stream (what J estimates)
    jitter_down_steady_ms: float | None
    loss_pct: float                     # round trip
    burst_loss_pct: float               # round trip: worst loss in any full 200 ms window
    burst_ratio: float                  # G.107 BurstR of the round-trip loss pattern
    reordered_up: int
    reordered_down: int
    duration_s: float
    packet_interval_ms: float
    payload_bytes: int
    kernel_timestamps: bool             # receive times from the kernel (precise) or user space
    problem: str | None = None          # why the test could not run or nothing came back
    reflected: int | None = None        # packets the reflector answered (its session count)
    loss_up_pct: float | None = None    # (sent - reflected) / sent
    loss_down_pct: float | None = None  # (reflected - received) / reflected
    burst_loss_up_pct: float | None = None
    burst_loss_down_pct: float | None = None
    burst_ratio_up: float | None = None
    burst_ratio_down: float | None = None
    direction_filled: int = 0           # lost packets placed on a way by the count alone

    @property
    def reordered(self) -> int:
        return self.reordered_up + self.reordered_down

    @property
    def reorder_pct(self) -> float:
        return 100.0 * self.reordered / self.received if self.received else 0.0

    @property
    def per_direction(self) -> bool:
        """True when the loss of each direction is known (the reflector counted)."""
        return self.reflected is not None and self.loss_up_pct is not None \
            and self.loss_down_pct is not None

    @property
    def lost_up(self) -> int | None:
        return None if self.reflected is None else max(0, self.sent - self.reflected)

    @property
    def lost_down(self) -> int | None:
        return None if self.reflected is None else max(0, self.reflected - self.received)


@dataclass(frozen=True)
class _Echo:
    seq: int
    sender_tx_ns: int
    reflector_rx_ns: int
    reflector_tx_ns: int
    agent_rx_ns: int


@dataclass
class _Exchange:
    """What came back during one stream."""

    sent_ns: list[int] = field(default_factory=list)
    echoes: dict[int, _Echo] = field(default_factory=dict)
    arrival: list[int] = field(default_factory=list)     # seqs in arrival order, duplicates too
    counts: list[SessionCounts] = field(default_factory=list)
    uncounted: int = 0       # replies without counts (an old reflector, or a full table)
    elapsed_s: float = 0.0


@dataclass(frozen=True)
class PathRecord:
    """Per packet (index = sequence number) what each end saw: the one-way transit times
    (receive minus send, each on one pair of clocks, so with an unknown constant offset) and
    whether the packet reached the reflector. What the scored test call sends the center
    (``agent_kit.core.wire.test_call``); no judgement, no audio."""

    up_transit_ms: tuple[float | None, ...]     # reflector receive - agent send; None: unseen
    down_transit_ms: tuple[float | None, ...]   # agent receive - reflector send; None: no echo
    reached: tuple[bool, ...] | None            # reached the reflector; None: not counted


def measure_path(host: str, port: int, *, duration_s: float = 6.0,
                 packet_interval_ms: float = 20.0, payload_bytes: int = 160,
                 stop: threading.Event | None = None, reply_wait_s: float = 1.0,
                 per_direction: bool = True) -> PathReading:
    """Stream RTP-sized packets to the reflector at ``host:port`` and measure the path.

    Sends one packet every ``packet_interval_ms`` for ``duration_s`` (or until ``stop`` is set),
    then waits up to ``reply_wait_s`` for late echoes; later ones count as lost. With
    ``per_direction`` (and packets of at least 56 bytes) the reflector is asked to count the
    session, and when packets are missing a count query (up to 3 tries, each waiting 3 x the
    95th-percentile RTT, 0.2..1 s) follows the stream. Never raises for network problems: they
    come back as ``problem`` (bad arguments raise ValueError).
    """
    return measure_path_record(host, port, duration_s=duration_s,
                               packet_interval_ms=packet_interval_ms,
                               payload_bytes=payload_bytes, stop=stop,
                               reply_wait_s=reply_wait_s, per_direction=per_direction)[0]


def measure_path_record(host: str, port: int, *, duration_s: float = 6.0,
                        packet_interval_ms: float = 20.0, payload_bytes: int = 160,
                        stop: threading.Event | None = None, reply_wait_s: float = 1.0,
                        per_direction: bool = True) -> tuple[PathReading, PathRecord]:
    """``measure_path``, and the per-packet record of the same stream (``PathRecord``)."""
    if duration_s <= 0 or packet_interval_ms <= 0 or reply_wait_s < 0:
        raise ValueError("duration_s and packet_interval_ms must be > 0, reply_wait_s >= 0")
    size = packet_size(payload_bytes)
    target = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    try:
        family, _, _, _, sockaddr = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)[0]
    except (OSError, UnicodeError) as exc:
        return _empty(target, packet_interval_ms, payload_bytes,
                      f"cannot resolve the reflector {target}: {exc}"), _NO_RECORD
    session_id = secrets.randbits(32) if per_direction and size >= COUNTED_PACKET_BYTES \
        else None
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        kernel = enable_rx_timestamps(sock)
        try:
            sock.connect(sockaddr)
        except OSError as exc:
            return _empty(target, packet_interval_ms, payload_bytes,
                          f"cannot reach the reflector {target}: {exc}", kernel), _NO_RECORD
        sock.setblocking(False)
        got = _exchange(sock, size, kernel, duration_s, packet_interval_ms / 1000.0,
                        reply_wait_s, stop, session_id)
        final = None
        if session_id is not None and got.counts and len(got.echoes) < len(got.sent_ns):
            rtts = [_rtt_ms(e) for e in got.echoes.values()]
            wait_s = min(1.0, max(0.2, 3 * rtp_stats.percentile(rtts, 95) / 1000.0))
            final = _count_query(sock, size, kernel, session_id, len(got.sent_ns), wait_s)
    # Counts for only part of the stream (the reflector's table had no room at first) would
    # misplace the rest: per direction only when every reply was counted.
    split = rtp_stats.split_directions(len(got.sent_ns), got.echoes.keys(), got.counts, final) \
        if session_id is not None and not got.uncounted else None
    return (_reading(target, got, split, packet_interval_ms, payload_bytes, kernel),
            _record(got, split))


_NO_RECORD = PathRecord((), (), None)


def _record(got: _Exchange, split: rtp_stats.DirectionSplit | None) -> PathRecord:
    up: list[float | None] = [None] * len(got.sent_ns)
    down: list[float | None] = [None] * len(got.sent_ns)
    for seq, e in got.echoes.items():
        up[seq] = (e.reflector_rx_ns - e.sender_tx_ns) / 1e6
        down[seq] = (e.agent_rx_ns - e.reflector_tx_ns) / 1e6
    return PathRecord(tuple(up), tuple(down), split.reached if split is not None else None)


def _request(seq: int, tx: int, size: int, session_id: int | None,
             kind: int = KIND_REQUEST) -> bytes:
    if session_id is None:
        return encode(PathPacket(kind, seq, tx), size)
    return encode(PathPacket(kind, seq, tx, flags=FLAG_COUNT, session_id=session_id), size)


def _exchange(sock: socket.socket, size: int, kernel: bool, duration_s: float,
              interval_s: float, reply_wait_s: float, stop: threading.Event | None,
              session_id: int | None) -> _Exchange:
    """Send on a fixed schedule and collect echoes until every one is back or
    ``reply_wait_s`` after the last send."""
    count = max(1, round(duration_s / interval_s))
    got = _Exchange()
    selector = selectors.DefaultSelector()
    selector.register(sock, selectors.EVENT_READ)
    start = time.monotonic()
    try:
        deadline: float | None = None
        while True:
            now = time.monotonic()
            if deadline is None:
                stopped = stop is not None and stop.is_set()
                if len(got.sent_ns) >= count or stopped:
                    deadline = now + reply_wait_s
                elif now >= start + len(got.sent_ns) * interval_s:
                    seq = len(got.sent_ns)
                    tx = now_ns()
                    # an OSError here is e.g. ICMP port unreachable reported on the next send
                    with contextlib.suppress(OSError):
                        sock.send(_request(seq, tx, size, session_id))
                    got.sent_ns.append(tx)
                    continue
            if deadline is not None and (now >= deadline or len(got.echoes) >= len(got.sent_ns)):
                break
            wake = deadline if deadline is not None else start + len(got.sent_ns) * interval_s
            for _key, _ev in selector.select(max(0.0, wake - time.monotonic())):
                _drain(sock, kernel, got)
    finally:
        selector.close()
    got.elapsed_s = time.monotonic() - start
    return got


def _drain(sock: socket.socket, kernel: bool, got: _Exchange) -> None:
    while True:
        try:
            data, _addr, rx_ns = recv_stamped(sock, MAX_PACKET_BYTES + 1, kernel)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:      # ICMP errors surface here on a connected socket; keep listening
            continue
        reply = decode(data, KIND_REPLY)
        # Ignore anything that is not an echo of a packet we sent, with our own timestamp.
        if reply is None or reply.seq >= len(got.sent_ns) \
                or got.sent_ns[reply.seq] != reply.sender_tx_ns:
            continue
        got.arrival.append(reply.seq)
        if reply.counts is not None:
            got.counts.append(reply.counts)
        else:
            got.uncounted += 1
        if reply.seq not in got.echoes:
            got.echoes[reply.seq] = _Echo(reply.seq, reply.sender_tx_ns, reply.reflector_rx_ns,
                                          reply.reflector_tx_ns, rx_ns)


def _count_query(sock: socket.socket, size: int, kernel: bool, session_id: int,
                 first_seq: int, wait_s: float) -> SessionCounts | None:
    """The reflector's count of the session after the stream (kind 3 -> 4), or None when no
    answer with counts came in ``COUNT_QUERY_ATTEMPTS`` tries of ``wait_s`` each. An answer
    to an earlier try that arrives during a later one is taken too."""
    asked: dict[int, int] = {}     # query seq -> its send time
    selector = selectors.DefaultSelector()
    selector.register(sock, selectors.EVENT_READ)
    try:
        for attempt in range(COUNT_QUERY_ATTEMPTS):
            seq, tx = first_seq + attempt, now_ns()
            try:
                sock.send(_request(seq, tx, size, session_id, KIND_COUNT_QUERY))
            except OSError:
                continue
            asked[seq] = tx
            deadline = time.monotonic() + wait_s
            while (left := deadline - time.monotonic()) > 0:
                if not selector.select(left):
                    break
                answer = _read_count_answer(sock, kernel, asked, session_id)
                if answer is not None:
                    return answer
    finally:
        selector.close()
    return None


def _read_count_answer(sock: socket.socket, kernel: bool, asked: dict[int, int],
                       session_id: int) -> SessionCounts | None:
    while True:
        try:
            data, _addr, _rx = recv_stamped(sock, MAX_PACKET_BYTES + 1, kernel)
        except (BlockingIOError, InterruptedError):
            return None
        except OSError:
            continue
        answer = decode(data, KIND_COUNT_ANSWER)
        if answer is not None and asked.get(answer.seq) == answer.sender_tx_ns \
                and answer.counts is not None and answer.counts.session_id == session_id:
            return answer.counts


def _reading(target: str, got: _Exchange, split: rtp_stats.DirectionSplit | None,
             interval_ms: float, payload_bytes: int, kernel: bool) -> PathReading:
    sent_ns, echoes = got.sent_ns, got.echoes
    sent = len(sent_ns)
    ordered = [echoes[s] for s in sorted(echoes)]
    rtts = [_rtt_ms(e) for e in ordered]
    lost = [seq not in echoes for seq in range(sent)]
    send_ms = [(t - sent_ns[0]) / 1e6 for t in sent_ns] if sent_ns else []
    # Upstream: reflector arrival order; downstream: agent arrival order.
    up = sorted(ordered, key=lambda e: (e.reflector_rx_ns, e.seq))
    down = sorted(ordered, key=lambda e: (e.agent_rx_ns, e.seq))
    up_transit = [(e.reflector_rx_ns - e.sender_tx_ns) / 1e6 for e in up]
    down_transit = [(e.agent_rx_ns - e.reflector_tx_ns) / 1e6 for e in down]
    # Downstream order is judged against the order the reflector sent in.
    sent_rank = {e.seq: i for i, e in enumerate(sorted(ordered, key=lambda e: (
        e.reflector_tx_ns, e.seq)))}
    has = bool(ordered)
    jitter_up = rtp_stats.rfc3550_jitter(up_transit) if has else None
    jitter_down = rtp_stats.rfc3550_jitter(down_transit) if has else None
    problem = None
    if sent and not ordered:
        problem = (f"no answer from the reflector {target} to {sent} packets: it is not "
                   "running, or UDP to it is blocked")
    d = _directions(split, send_ms, lost) if split is not None else None
    return PathReading(
        target=target, sent=sent, received=len(echoes),
        duplicates=rtp_stats.count_duplicates(got.arrival),
        rtt_ms_samples=tuple(round(r, 4) for r in rtts),
        rtt_median_ms=rtp_stats.percentile(rtts, 50) if rtts else None,
        rtt_p95_ms=rtp_stats.percentile(rtts, 95) if rtts else None,
        rtt_min_ms=min(rtts) if rtts else None,
        jitter_ms=max(jitter_up, jitter_down) if jitter_up is not None
        and jitter_down is not None else None,
        jitter_up_ms=jitter_up, jitter_down_ms=jitter_down,
        jitter_up_steady_ms=rtp_stats.mean_transit_difference(up_transit) if has else None,
        jitter_down_steady_ms=rtp_stats.mean_transit_difference(down_transit) if has else None,
        loss_pct=rtp_stats.loss_pct(sent, len(echoes)),
        burst_loss_pct=rtp_stats.burst_loss_pct(send_ms, lost),
        burst_ratio=rtp_stats.burst_ratio(lost),
        reordered_up=rtp_stats.count_reordered([e.seq for e in up]),
        reordered_down=rtp_stats.count_reordered([sent_rank[e.seq] for e in down]),
        duration_s=got.elapsed_s, packet_interval_ms=interval_ms, payload_bytes=payload_bytes,
        kernel_timestamps=kernel, problem=problem,
        reflected=d.reflected if d else None, loss_up_pct=d.loss_up_pct if d else None,
        loss_down_pct=d.loss_down_pct if d else None,
        burst_loss_up_pct=d.burst_loss_up_pct if d else None,
        burst_loss_down_pct=d.burst_loss_down_pct if d else None,
        burst_ratio_up=d.burst_ratio_up if d else None,
        burst_ratio_down=d.burst_ratio_down if d else None,
        direction_filled=d.filled if d else 0,
    )


@dataclass(frozen=True)
class _Directions:
    reflected: int
    loss_up_pct: float
    loss_down_pct: float
    burst_loss_up_pct: float
    burst_loss_down_pct: float
    burst_ratio_up: float
    burst_ratio_down: float
    filled: int


def _directions(split: rtp_stats.DirectionSplit, send_ms: Sequence[float],
                lost: Sequence[bool]) -> _Directions:
    """The per-direction loss figures: forward over every packet sent, return over the
    packets that reached the reflector (their windows on the agent's send schedule)."""
    lost_up = [not r for r in split.reached]
    back = [seq for seq, r in enumerate(split.reached) if r]
    lost_down = [lost[seq] for seq in back]
    reflected = len(back)
    return _Directions(
        reflected=reflected,
        loss_up_pct=rtp_stats.loss_pct(len(lost_up), reflected),
        loss_down_pct=rtp_stats.loss_pct(reflected, reflected - sum(lost_down)),
        burst_loss_up_pct=rtp_stats.burst_loss_pct(send_ms, lost_up),
        burst_loss_down_pct=rtp_stats.burst_loss_pct([send_ms[s] for s in back], lost_down),
        burst_ratio_up=rtp_stats.burst_ratio(lost_up),
        burst_ratio_down=rtp_stats.burst_ratio(lost_down),
        filled=split.filled_from_count)


def _rtt_ms(echo: _Echo) -> float:
    raw = echo.agent_rx_ns - echo.sender_tx_ns
    held = echo.reflector_tx_ns - echo.reflector_rx_ns
    # A reflector's hold time outside [0, raw] is nonsense (a broken clock): ignore it.
    if not 0 <= held <= raw:
        held = 0
    return (raw - held) / 1e6


def _empty(target: str, interval_ms: float, payload_bytes: int, problem: str,
           kernel: bool = False) -> PathReading:
    return PathReading(
        target=target, sent=0, received=0, duplicates=0, rtt_ms_samples=(),
        rtt_median_ms=None, rtt_p95_ms=None, rtt_min_ms=None, jitter_ms=None,
        jitter_up_ms=None, jitter_down_ms=None, jitter_up_steady_ms=None,
        jitter_down_steady_ms=None, loss_pct=0.0, burst_loss_pct=0.0, burst_ratio=1.0,
        reordered_up=0, reordered_down=0, duration_s=0.0, packet_interval_ms=interval_ms,
        payload_bytes=payload_bytes, kernel_timestamps=kernel, problem=problem)
