"""Network path quality to the center: an RTP-like stream to the center's UDP reflector.

Sends voice-sized packets (12-byte RTP header + codec payload; G.711 at 20 ms: 160 bytes, 50
packets/s) for a few seconds to the reflector (``probes.network.path_packet`` describes the
wire format)
and computes from the echoes:

- RTT per packet = (agent receive - agent send) - (reflector send - reflector receive), i.e. the
  reflector's own processing time is taken out (TWAMP, RFC 5357); median and 95th percentile.
- RFC 3550 interarrival jitter per direction: upstream from the agent's send and the
  reflector's receive times, downstream from the reflector's send and the agent's receive
  times. Clock offsets cancel in the differences, so no clock sync is needed.
- Round-trip loss, the worst loss in any 200 ms window, reordering per direction (RFC 4737)
  and duplicates.

The default test takes 6 s (Twilio's preflight takes 20 s, Teams' network test 17 s).
Nothing here judges the numbers: see ``agent_kit.evaluate.network``.
"""

from __future__ import annotations

import selectors
import socket
import threading
import time
from dataclasses import dataclass

from probes.network import rtp_stats
from probes.network.path_packet import (
    KIND_REPLY,
    KIND_REQUEST,
    MAX_PACKET_BYTES,
    PathPacket,
    decode,
    encode,
    packet_size,
)
from probes.network.udp_clock import enable_rx_timestamps, now_ns, recv_stamped


@dataclass(frozen=True)
class PathReading:
    """What one path test saw. Times in ms; ``None`` where nothing came back to compute from."""

    target: str                         # "host:port" of the reflector
    sent: int
    received: int                       # distinct packets echoed back
    duplicates: int
    rtt_ms_samples: tuple[float, ...]   # per echoed packet, in sequence order
    rtt_median_ms: float | None
    rtt_p95_ms: float | None
    rtt_min_ms: float | None
    jitter_ms: float | None             # the worse direction (mean running RFC 3550 J)
    jitter_up_ms: float | None          # agent -> center
    jitter_down_ms: float | None        # center -> agent
    jitter_up_final_ms: float | None    # the last J value, as RTCP reports and iperf3 give it
    jitter_down_final_ms: float | None
    loss_pct: float                     # round trip
    burst_loss_pct: float               # worst loss among the packets of any 200 ms
    burst_ratio: float                  # G.107 BurstR of the loss pattern (1 = random loss)
    reordered_up: int
    reordered_down: int
    duration_s: float
    packet_interval_ms: float
    payload_bytes: int
    kernel_timestamps: bool             # receive times from the kernel (precise) or user space
    problem: str | None = None          # why the test could not run or nothing came back

    @property
    def reordered(self) -> int:
        return self.reordered_up + self.reordered_down

    @property
    def reorder_pct(self) -> float:
        return 100.0 * self.reordered / self.received if self.received else 0.0


@dataclass(frozen=True)
class _Echo:
    seq: int
    sender_tx_ns: int
    reflector_rx_ns: int
    reflector_tx_ns: int
    agent_rx_ns: int


def measure_path(host: str, port: int, *, duration_s: float = 6.0,
                 packet_interval_ms: float = 20.0, payload_bytes: int = 160,
                 stop: threading.Event | None = None, reply_wait_s: float = 1.0) -> PathReading:
    """Stream RTP-sized packets to the reflector at ``host:port`` and measure the path.

    Sends one packet every ``packet_interval_ms`` for ``duration_s`` (or until ``stop`` is set),
    then waits up to ``reply_wait_s`` for late echoes; later ones count as lost. Never raises
    for network problems: they come back as ``problem`` (bad arguments raise ValueError).
    """
    if duration_s <= 0 or packet_interval_ms <= 0 or reply_wait_s < 0:
        raise ValueError("duration_s and packet_interval_ms must be > 0, reply_wait_s >= 0")
    size = packet_size(payload_bytes)
    target = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    try:
        family, _, _, _, sockaddr = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)[0]
    except (OSError, UnicodeError) as exc:
        return _empty(target, packet_interval_ms, payload_bytes,
                      f"cannot resolve the reflector {target}: {exc}")
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        kernel = enable_rx_timestamps(sock)
        try:
            sock.connect(sockaddr)
        except OSError as exc:
            return _empty(target, packet_interval_ms, payload_bytes,
                          f"cannot reach the reflector {target}: {exc}", kernel)
        sock.setblocking(False)
        sent_ns, echoes, arrival, elapsed = _exchange(
            sock, size, kernel, duration_s, packet_interval_ms / 1000.0, reply_wait_s, stop)
    return _reading(target, sent_ns, echoes, arrival, elapsed, packet_interval_ms,
                    payload_bytes, kernel)


def _exchange(sock: socket.socket, size: int, kernel: bool, duration_s: float,
              interval_s: float, reply_wait_s: float, stop: threading.Event | None,
              ) -> tuple[list[int], dict[int, _Echo], list[int], float]:
    """Send on a fixed schedule and collect echoes; returns send times, echoes by seq,
    sequence numbers in arrival order (duplicates included) and the elapsed time."""
    count = max(1, round(duration_s / interval_s))
    sent_ns: list[int] = []
    echoes: dict[int, _Echo] = {}
    arrival: list[int] = []
    selector = selectors.DefaultSelector()
    selector.register(sock, selectors.EVENT_READ)
    start = time.monotonic()
    send_errors = 0
    try:
        deadline: float | None = None
        while True:
            now = time.monotonic()
            if deadline is None:
                stopped = stop is not None and stop.is_set()
                if len(sent_ns) >= count or stopped:
                    deadline = now + reply_wait_s
                elif now >= start + len(sent_ns) * interval_s:
                    seq = len(sent_ns)
                    tx = now_ns()
                    try:
                        sock.send(encode(PathPacket(KIND_REQUEST, seq, tx), size))
                    except OSError:   # e.g. ICMP port unreachable reported on the next send
                        send_errors += 1
                    sent_ns.append(tx)
                    continue
            if deadline is not None and (now >= deadline or len(echoes) >= len(sent_ns)):
                break
            wake = deadline if deadline is not None else start + len(sent_ns) * interval_s
            for _key, _ev in selector.select(max(0.0, wake - time.monotonic())):
                _drain(sock, kernel, sent_ns, echoes, arrival)
    finally:
        selector.close()
    return sent_ns, echoes, arrival, time.monotonic() - start


def _drain(sock: socket.socket, kernel: bool, sent_ns: list[int], echoes: dict[int, _Echo],
           arrival: list[int]) -> None:
    while True:
        try:
            data, _addr, rx_ns = recv_stamped(sock, MAX_PACKET_BYTES + 1, kernel)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:      # ICMP errors surface here on a connected socket; keep listening
            continue
        reply = decode(data, KIND_REPLY)
        # Ignore anything that is not an echo of a packet we sent, with our own timestamp.
        if reply is None or reply.seq >= len(sent_ns) or sent_ns[reply.seq] != reply.sender_tx_ns:
            continue
        arrival.append(reply.seq)
        if reply.seq not in echoes:
            echoes[reply.seq] = _Echo(reply.seq, reply.sender_tx_ns, reply.reflector_rx_ns,
                                      reply.reflector_tx_ns, rx_ns)


def _reading(target: str, sent_ns: list[int], echoes: dict[int, _Echo], arrival: list[int],
             elapsed_s: float, interval_ms: float, payload_bytes: int,
             kernel: bool) -> PathReading:
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
    jitter_up = rtp_stats.mean_jitter(up_transit) if has else None
    jitter_down = rtp_stats.mean_jitter(down_transit) if has else None
    problem = None
    if sent and not ordered:
        problem = (f"no answer from the reflector {target} to {sent} packets: it is not "
                   "running, or UDP to it is blocked")
    return PathReading(
        target=target, sent=sent, received=len(echoes),
        duplicates=rtp_stats.count_duplicates(arrival),
        rtt_ms_samples=tuple(round(r, 4) for r in rtts),
        rtt_median_ms=rtp_stats.percentile(rtts, 50) if rtts else None,
        rtt_p95_ms=rtp_stats.percentile(rtts, 95) if rtts else None,
        rtt_min_ms=min(rtts) if rtts else None,
        jitter_ms=max(jitter_up, jitter_down) if jitter_up is not None
        and jitter_down is not None else None,
        jitter_up_ms=jitter_up, jitter_down_ms=jitter_down,
        jitter_up_final_ms=rtp_stats.rfc3550_jitter(up_transit) if has else None,
        jitter_down_final_ms=rtp_stats.rfc3550_jitter(down_transit) if has else None,
        loss_pct=rtp_stats.loss_pct(sent, len(echoes)),
        burst_loss_pct=rtp_stats.burst_loss_pct(send_ms, lost),
        burst_ratio=rtp_stats.burst_ratio(lost),
        reordered_up=rtp_stats.count_reordered([e.seq for e in up]),
        reordered_down=rtp_stats.count_reordered([sent_rank[e.seq] for e in down]),
        duration_s=elapsed_s, packet_interval_ms=interval_ms, payload_bytes=payload_bytes,
        kernel_timestamps=kernel, problem=problem,
    )


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
        jitter_up_ms=None, jitter_down_ms=None, jitter_up_final_ms=None,
        jitter_down_final_ms=None, loss_pct=0.0, burst_loss_pct=0.0, burst_ratio=1.0,
        reordered_up=0, reordered_down=0, duration_s=0.0, packet_interval_ms=interval_ms,
        payload_bytes=payload_bytes, kernel_timestamps=kernel, problem=problem)
