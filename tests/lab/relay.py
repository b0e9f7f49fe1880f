"""A user-space UDP impairment relay: the lab's netem (which this kernel lacks).

Listens on ``--listen HOST:PORT`` and forwards each client's datagrams to ``--upstream
HOST:PORT`` (one upstream socket per client, so replies find their way back), adding per
direction (``up``: client -> upstream, ``down``: back):

- a base delay plus a random extra delay: ``uniform`` U(0, jitter_ms) (i.i.d., so the RFC 3550
  jitter of the stream is E|X1 - X2| = jitter_ms / 3 while packets do not overtake each other)
  or ``exponential`` with mean jitter_ms (E|X1 - X2| = jitter_ms);
- loss with probability loss_pct / 100;
- reordering: with probability reorder_pct / 100 a packet is held reorder_extra_ms longer, so
  the next packets overtake it.

Every random draw comes from ``random.Random(f"{seed}:{direction}")`` in a fixed order per
packet (loss, delay, reorder), so a seed gives the same impairment for the same packets. The
ground truth is the record of what was done: per datagram the kernel receive time, the time
it was sent on (or that it was dropped), and, for path-test packets (``AKPT``), the sequence
number and kind. ``truth()`` turns the record into the figures a probe should measure.

The relay is independent of the product on purpose: it reads the kernel's receive stamps
itself (``SO_TIMESTAMPNS``) and computes the truth with its own few lines of math (RFC 3550 J
in 6.4.1's float form and in appendix A.8's integer form, mean |D|, median, reordering, loss,
worst full 200 ms window and G.107 BurstR per direction), so a mistake in ``probes.network``
cannot hide by being in the reference too: it imports nothing of ``probes`` or ``agent_kit``
(``tests/test_layers.py`` holds it to that).

Run in a namespace: ``python -m tests.lab.relay --listen 192.0.2.2:9000 --upstream
127.0.0.1:8751 --spec '{"up": {"delay_ms": 10, "jitter_ms": 30}}' --record out.json``; it
prints ``relay ready`` and writes the record on SIGTERM/SIGINT. Optional ``--tcp-upstream``
also passes TCP connections through unimpaired (iperf3's control connection).
"""

from __future__ import annotations

import argparse
import contextlib
import heapq
import json
import random
import selectors
import signal
import socket
import struct
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Any

DISTRIBUTIONS = ("uniform", "exponential")


@dataclass(frozen=True)
class Impairment:
    delay_ms: float = 0.0
    jitter_ms: float = 0.0
    distribution: str = "uniform"
    loss_pct: float = 0.0
    reorder_pct: float = 0.0
    reorder_extra_ms: float = 50.0

    def __post_init__(self) -> None:
        if self.distribution not in DISTRIBUTIONS:
            raise ValueError(f"distribution must be one of {DISTRIBUTIONS}")
        if min(self.delay_ms, self.jitter_ms, self.loss_pct, self.reorder_pct,
               self.reorder_extra_ms) < 0 or self.loss_pct > 100 or self.reorder_pct > 100:
            raise ValueError(f"impairment values out of range: {self}")

    def expected_jitter_ms(self) -> float:
        """RFC 3550 jitter of i.i.d. extra delays (no reordering): E|X1 - X2|."""
        return self.jitter_ms / 3 if self.distribution == "uniform" else self.jitter_ms


@dataclass(frozen=True)
class Spec:
    up: Impairment = field(default_factory=Impairment)
    down: Impairment = field(default_factory=Impairment)
    seed: int = 1

    @classmethod
    def from_json(cls, text: str) -> Spec:
        data = json.loads(text)
        return cls(up=Impairment(**data.get("up", {})), down=Impairment(**data.get("down", {})),
                   seed=int(data.get("seed", 1)))

    def to_json(self) -> str:
        return json.dumps(asdict(self))


@dataclass
class Record:
    """One datagram through the relay. ``tx_ns`` None: dropped."""

    direction: str
    flow: str           # the client's address
    index: int          # arrival order in this direction
    rx_ns: int
    tx_ns: int | None
    seq: int | None     # path-test sequence number (AKPT packets), else None
    kind: int | None = None   # path-test kind: 1 request, 2 reply, 3 count query, 4 answer
    planned_ms: float | None = None   # the hold drawn for it (delay + extra + reorder hold)
    sender_tx_ns: int | None = None   # path-test packets: the send time the sender wrote in it


class _Direction:
    def __init__(self, name: str, imp: Impairment, seed: int) -> None:
        self.name, self.imp = name, imp
        self.rng = random.Random(f"{seed}:{name}")
        self.count = 0

    def decide(self) -> float | None:
        """Hold time in ns for the next datagram, None to drop it (draws in a fixed order)."""
        imp, rng = self.imp, self.rng
        self.count += 1
        lost = rng.random() < imp.loss_pct / 100
        if imp.distribution == "uniform":
            extra = rng.uniform(0, imp.jitter_ms)
        else:
            extra = rng.expovariate(1 / imp.jitter_ms) if imp.jitter_ms > 0 else 0.0
        reorder = rng.random() < imp.reorder_pct / 100
        if lost:
            return None
        return (imp.delay_ms + extra + (imp.reorder_extra_ms if reorder else 0.0)) * 1e6


def _seq_of(data: bytes) -> int | None:
    if len(data) >= 12 and data[:4] == b"AKPT":
        return int(struct.unpack_from("!I", data, 8)[0])
    return None


def _kind_of(data: bytes) -> int | None:
    return data[5] if len(data) >= 12 and data[:4] == b"AKPT" else None


def _sender_tx_of(data: bytes) -> int | None:
    """The sender's send time in a path-test packet (big-endian u64 at offset 12)."""
    if len(data) >= 20 and data[:4] == b"AKPT":
        return int(struct.unpack_from("!Q", data, 12)[0])
    return None


# The kernel's receive stamp (Linux asm-generic/socket.h: SO_TIMESTAMPNS = 35, a struct
# timespec of two native longs), read here rather than through the product's udp_clock.
_SO_TIMESTAMPNS = 35
_TIMESPEC = struct.Struct("@ll")


def enable_rx_timestamps(sock: socket.socket) -> bool:
    try:
        sock.setsockopt(socket.SOL_SOCKET, _SO_TIMESTAMPNS, 1)
    except OSError:
        return False
    return True


def recv_stamped(sock: socket.socket, bufsize: int, kernel: bool) -> tuple[bytes, Any, int]:
    if not kernel:
        data, addr = sock.recvfrom(bufsize)
        return data, addr, time.time_ns()
    data, ancdata, _flags, addr = sock.recvmsg(bufsize, socket.CMSG_SPACE(_TIMESPEC.size))
    for level, kind, payload in ancdata:
        if level == socket.SOL_SOCKET and kind == _SO_TIMESTAMPNS:
            sec, nsec = _TIMESPEC.unpack_from(payload)
            return data, addr, sec * 1_000_000_000 + nsec
    return data, addr, time.time_ns()


class Relay:
    """The relay loop (one thread: select on every socket, send what is due)."""

    def __init__(self, listen: tuple[str, int], upstream: tuple[str, int], spec: Spec) -> None:
        self.upstream, self.spec = upstream, spec
        self.listen = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.listen.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        self.listen.bind(listen)
        self.kernel = enable_rx_timestamps(self.listen)
        self.dirs = {"up": _Direction("up", spec.up, spec.seed),
                     "down": _Direction("down", spec.down, spec.seed)}
        self.flows: dict[Any, socket.socket] = {}
        self.sock_flow: dict[socket.socket, Any] = {}
        self.records: list[Record] = []
        self.sel = selectors.DefaultSelector()
        self.sel.register(self.listen, selectors.EVENT_READ)
        self.heap: list[tuple[int, int, int]] = []     # (due_ns, tiebreak, record index)
        self.payloads: dict[int, tuple[socket.socket, bytes, Any]] = {}
        self.stop = threading.Event()

    @property
    def address(self) -> tuple[str, int]:
        return self.listen.getsockname()[:2]

    def _upstream_for(self, client: Any) -> socket.socket:
        sock = self.flows.get(client)
        if sock is None:
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
            enable_rx_timestamps(sock)
            sock.connect(self.upstream)
            sock.setblocking(False)
            self.flows[client], self.sock_flow[sock] = sock, client
            self.sel.register(sock, selectors.EVENT_READ)
        return sock

    def _accept(self, direction: str, data: bytes, client: Any, rx_ns: int,
                out: socket.socket, dest: Any) -> None:
        d = self.dirs[direction]
        index = d.count
        hold = d.decide()
        rec = Record(direction, f"{client[0]}:{client[1]}", index, rx_ns, None, _seq_of(data),
                     _kind_of(data), None if hold is None else hold / 1e6, _sender_tx_of(data))
        self.records.append(rec)
        if hold is None:
            return
        i = len(self.records) - 1
        heapq.heappush(self.heap, (rx_ns + int(hold), i, i))
        self.payloads[i] = (out, data, dest)

    def _drain(self, sock: socket.socket) -> None:
        while True:
            try:
                data, addr, rx_ns = recv_stamped(sock, 65536, self.kernel)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            if sock is self.listen:
                self._accept("up", data, addr, rx_ns, self._upstream_for(addr), None)
            else:
                client = self.sock_flow[sock]
                self._accept("down", data, client, rx_ns, self.listen, client)

    def serve(self) -> None:
        self.listen.setblocking(False)
        while not self.stop.is_set():
            now = time.time_ns()
            while self.heap and self.heap[0][0] <= now:
                _due, _t, i = heapq.heappop(self.heap)
                out, data, dest = self.payloads.pop(i)
                self.records[i].tx_ns = time.time_ns()
                try:
                    out.send(data) if dest is None else out.sendto(data, dest)
                except OSError:
                    self.records[i].tx_ns = None
                now = time.time_ns()
            wait = (self.heap[0][0] - now) / 1e9 if self.heap else 0.1
            for key, _ev in self.sel.select(min(0.1, max(0.0, wait))):
                self._drain(key.fileobj)  # type: ignore[arg-type]

    def close(self) -> None:
        self.stop.set()
        for sock in [self.listen, *self.flows.values()]:
            sock.close()
        self.sel.close()


def rfc3550_final_jitter(transits: list[float]) -> float:
    """J at the end of the stream: J += (|D| - J) / 16 over consecutive transits (RFC 3550
    6.4.1), J = 0 at the start."""
    j = 0.0
    for i in range(1, len(transits)):
        j += (abs(transits[i] - transits[i - 1]) - j) / 16
    return j


def rfc3550_a8_jitter_ns(transits_ns: list[int]) -> float:
    """J at the end of the stream as RFC 3550 appendix A.8 computes it, in integers: the
    estimate is kept scaled by 16 (``jitter += d - ((jitter + 8) >> 4)``) in the clock's own
    units, here nanoseconds, and read as ``jitter >> 4``; returned unrounded (scaled / 16) so
    it can be compared with the float form of 6.4.1 to within a nanosecond."""
    scaled = 0
    for i in range(1, len(transits_ns)):
        d = abs(transits_ns[i] - transits_ns[i - 1])
        scaled += d - ((scaled + 8) >> 4)
    return scaled / 16


def mean_abs_difference(transits: list[float]) -> float:
    """The mean |D| of consecutive transits (the steady value J estimates)."""
    if len(transits) < 2:
        return 0.0
    return sum(abs(transits[i] - transits[i - 1]) for i in range(1, len(transits))) / (
        len(transits) - 1)


def median(values: list[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def overtaken(order: list[int]) -> int:
    """Packets sent on after one that arrived later than them (RFC 4737's reordered)."""
    count, highest = 0, -1
    for index in order:
        if index < highest:
            count += 1
        else:
            highest = index
    return count


def worst_window_loss_pct(times_ns: list[int], lost: list[bool],
                          window_ms: float = 200.0) -> tuple[float, int]:
    """The worst loss among the packets inside any full ``window_ms`` window (Microsoft Teams'
    "burst < 10 % in any 200 ms"), with the fewest packets a full window held.

    A window starts at each packet's time and holds the packets before ``start + window``; it
    is full when the stream still runs for the whole window, i.e. it starts no later than
    ``window`` before the last packet's time plus one packet spacing (the median gap), so a
    short tail window never counts (the last of 300 packets lost is 1 in 10, not 1 in 1). A
    stream shorter than one window is one window.
    """
    if not lost:
        return 0.0, 0
    order = sorted(range(len(lost)), key=lambda i: times_ns[i])
    t = [times_ns[i] for i in order]
    gone = [lost[i] for i in order]
    window_ns = window_ms * 1e6
    spacing = median([float(b - a) for a, b in zip(t, t[1:], strict=False)]) if len(t) > 1 \
        else 0.0
    last_full_start = t[-1] + spacing - window_ns
    starts = [i for i in range(len(t)) if t[i] <= last_full_start]
    if not starts:
        return 100.0 * sum(gone) / len(gone), len(gone)
    worst, fewest = 0.0, len(t)
    for i in starts:
        inside = [gone[k] for k in range(i, len(t)) if t[k] < t[i] + window_ns]
        worst = max(worst, sum(inside) / len(inside))
        fewest = min(fewest, len(inside))
    return 100.0 * worst, fewest


def gilbert_burst_ratio(lost: list[bool]) -> float:
    """BurstR of a loss pattern (ITU-T G.107 / G.113 Appendix I, two-state Markov model):
    1 / (p + q), p = P(lost | the previous one arrived), q = P(arrived | the previous one lost).
    1 when the pattern has no arrived-then-lost or no lost-then-arrived step (p or q cannot be
    estimated; G.107 takes such loss as random)."""
    steps = list(zip(lost, lost[1:], strict=False))
    after_arrived = [now for before, now in steps if not before]
    after_lost = [now for before, now in steps if before]
    p_hits, q_hits = sum(after_arrived), sum(not now for now in after_lost)
    if not after_arrived or not after_lost or p_hits == 0 or q_hits == 0:
        return 1.0
    return 1.0 / (p_hits / len(after_arrived) + q_hits / len(after_lost))


def _hold_ms(rec: dict[str, Any]) -> float:
    return float(rec["tx_ns"] - rec["rx_ns"]) / 1e6


def truth(records: list[dict[str, Any]], flow: str | None = None) -> dict[str, Any]:
    """What a probe on this flow should have measured, from the relay's record.

    Per direction, over the stream's own datagrams (a path test's count queries and answers
    left out): packets, dropped, loss; jitter of the hold times in the order the relay sent
    the packets on, as RFC 3550 J at the end of the stream and the mean |D| (for a path test,
    over the packets that made the whole round trip: the only ones the probe can time);
    median hold time; reordering. ``path`` (path-test flows): packets sent, what the relay
    dropped on the way to the reflector (``dropped_up``) and back (``dropped_down``), loss
    round trip and per direction, median RTT (up + down hold per sequence number), and per
    direction the worst full 200 ms window's loss (with the fewest packets such a window held)
    and BurstR of the loss pattern that direction's listener hears.
    """
    recs = [r for r in records if flow is None or r["flow"] == flow]
    stream = [r for r in recs if r.get("kind") in (None, 1, 2)]
    up = {r["seq"]: r for r in stream if r["direction"] == "up" and r["seq"] is not None}
    down = {r["seq"]: r for r in stream if r["direction"] == "down" and r["seq"] is not None}
    round_trip = {s for s in up if up[s]["tx_ns"] is not None and s in down
                  and down[s]["tx_ns"] is not None}
    out: dict[str, Any] = {}
    for direction in ("up", "down"):
        mine = [r for r in stream if r["direction"] == direction]
        sent = sorted((r for r in mine if r["tx_ns"] is not None), key=lambda r: r["tx_ns"])
        timed = [r for r in sent if r["seq"] is None or r["seq"] in round_trip]
        holds = [_hold_ms(r) for r in timed]
        dropped = sum(r["tx_ns"] is None for r in mine)
        out[direction] = {
            "packets": len(mine), "dropped": dropped,
            "loss_pct": 100.0 * dropped / len(mine) if mine else 0.0,
            "jitter_rfc3550_ms": rfc3550_final_jitter(holds),
            "jitter_rfc3550_a8_ms": rfc3550_a8_jitter_ns(
                [r["tx_ns"] - r["rx_ns"] for r in timed]) / 1e6,
            "jitter_mean_abs_d_ms": mean_abs_difference(holds),
            "hold_median_ms": median([_hold_ms(r) for r in sent]) if sent else 0.0,
            "reordered": overtaken([r["index"] for r in sent]),
        }
    if up:
        sent_n = len(up)
        dropped_up = sum(r["tx_ns"] is None for r in up.values())
        dropped_down = sum(r["tx_ns"] is None for r in down.values())
        rtts = [_hold_ms(up[s]) + _hold_ms(down[s]) for s in round_trip]
        reached = sent_n - dropped_up
        # The loss pattern each listener hears, in sequence order on the sender's schedule
        # (the send time it wrote in each packet; the relay's receive stamp for a packet
        # without one): up over every packet sent, down over the packets that reached the
        # reflector (a reply's seq is its request's).
        seqs = sorted(up)
        at_ns = {s: up[s].get("sender_tx_ns") or up[s]["rx_ns"] for s in seqs}
        lost_up = [up[s]["tx_ns"] is None for s in seqs]
        back = [s for s in seqs if up[s]["tx_ns"] is not None]
        lost_down = [s not in down or down[s]["tx_ns"] is None for s in back]
        burst_up, window_up = worst_window_loss_pct([at_ns[s] for s in seqs], lost_up)
        burst_down, window_down = worst_window_loss_pct([at_ns[s] for s in back], lost_down)
        out["path"] = {"sent": sent_n, "returned": len(round_trip),
                       "dropped_up": dropped_up, "dropped_down": dropped_down,
                       "loss_pct": 100.0 * (sent_n - len(round_trip)) / sent_n,
                       "loss_up_pct": 100.0 * dropped_up / sent_n,
                       "loss_down_pct": 100.0 * dropped_down / reached if reached else 0.0,
                       "rtt_median_ms": median(rtts) if rtts else None,
                       "burst_loss_up_pct": burst_up, "burst_window_up_packets": window_up,
                       "burst_loss_down_pct": burst_down,
                       "burst_window_down_packets": window_down,
                       "burst_ratio_up": gilbert_burst_ratio(lost_up),
                       "burst_ratio_down": gilbert_burst_ratio(lost_down)}
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.lab.relay")
    parser.add_argument("--listen", required=True, help="HOST:PORT to listen on (UDP)")
    parser.add_argument("--upstream", required=True, help="HOST:PORT to forward to")
    parser.add_argument("--spec", default="{}", help="JSON: {up: {...}, down: {...}, seed}")
    parser.add_argument("--record", required=True, help="file for the JSON record at exit")
    parser.add_argument("--tcp-upstream", help="also pass TCP on the listen port to HOST:PORT")
    args = parser.parse_args(argv)

    def addr(text: str) -> tuple[str, int]:
        host, _, port = text.rpartition(":")
        return host, int(port)

    relay = Relay(addr(args.listen), addr(args.upstream), Spec.from_json(args.spec))
    if args.tcp_upstream:
        threading.Thread(target=_tcp_pass, args=(relay.address, addr(args.tcp_upstream),
                                                 relay.stop), daemon=True).start()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: relay.stop.set())
    print(f"relay ready {relay.address[0]}:{relay.address[1]}", flush=True)
    try:
        relay.serve()
    finally:
        relay.close()
        with open(args.record, "w", encoding="utf-8") as fh:
            json.dump({"spec": json.loads(relay.spec.to_json()), "kernel_timestamps":
                       relay.kernel, "records": [asdict(r) for r in relay.records]}, fh)
    return 0


def _tcp_pass(listen: tuple[str, int], upstream: tuple[str, int],
              stop: threading.Event) -> None:
    """Unimpaired TCP pass-through (iperf3's control connection)."""
    server = socket.create_server(listen)
    server.settimeout(0.2)
    while not stop.is_set():
        try:
            conn, _ = server.accept()
        except TimeoutError:
            continue
        up = socket.create_connection(upstream)
        for a, b in ((conn, up), (up, conn)):
            threading.Thread(target=_pipe, args=(a, b), daemon=True).start()
    server.close()


def _pipe(src: socket.socket, dst: socket.socket) -> None:
    try:
        while data := src.recv(65536):
            dst.sendall(data)
    except OSError:
        pass
    finally:
        for s in (src, dst):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)


if __name__ == "__main__":
    sys.exit(main())
