"""Hop by hop toward the center: TTL-limited probes to the reflector, with scapy (optional).

Every probe is a real path-test request (``probes.network.path_packet``) sent to the center's UDP
reflector with a limited IP TTL (IPv6 hop limit). A router where the TTL runs out answers with
ICMP "time exceeded" from its own address (RFC 792 / RFC 4443), so the probe with TTL n names
hop n and its round-trip time; the reflector itself echoes the probes that reach it. Using the
reflector's own port means the probes pass wherever the path test passes (a center that only
lets the reflector's UDP port in still answers), like tcptraceroute does for TCP services.

Each probe carries its own UDP source port, so every answer (the quoted header inside an ICMP
error, or the reflector's echo) names exactly one probe. Two phases within ``budget_s``
(3 s by default):

1. discovery: one probe for every TTL from 1 to ``max_hops`` at once; the lowest TTL the
   reflector answers is the hop count of the path;
2. ``probes_per_hop - 1`` more rounds over TTL 1..hop count, spread over the rest of the budget.

Five probes per hop by default: within the burst of six ICMP errors a Linux router sends to one
host before its rate limit (``net.ipv4.icmp_ratelimit``: then one per second), so a router's own
rate limit does not look like loss on its hop.

On Linux a classic BPF filter on scapy's receive socket (``answer_filter``) lets only ICMP and
UDP from the reflector's address reach Python, so scapy does not dissect every packet the
machine receives during the trace.

Raw sockets need privileges: root or CAP_NET_RAW on Linux, root (or BPF access) on macOS,
Npcap on Windows. Without them, or without scapy, the reading says so (``problem``,
``needs_privileges``); nothing here raises for that. scapy imports slowly (about 0.3 s of its
layers), so it is imported inside ``measure_hops`` only.
Nothing here judges the hops: ``probes.network.hop_segments`` says which segment each hop is
in, ``agent_kit.evaluate.hops`` where loss or delay starts.
"""

from __future__ import annotations

import contextlib
import os
import random
import socket
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from probes.network import rtp_stats
from probes.network.path_packet import KIND_REQUEST, PathPacket, encode

CAP_NET_RAW = 13                 # linux/capability.h
PROBE_BYTES = 48                 # UDP payload: the path packet header + 12 bytes of padding
_PORT_SPAN = 4096                # source ports per run, from a random base


@dataclass(frozen=True)
class HopReading:
    """What the probes with one TTL saw. ``address`` is the one that answered most often."""

    ttl: int
    address: str | None          # None: no answer (a silent router, "* * *")
    sent: int
    received: int
    rtt_median_ms: float | None
    rtt_p95_ms: float | None
    is_target: bool = False      # the answers came from the reflector itself

    @property
    def loss_pct(self) -> float:
        return rtp_stats.loss_pct(self.sent, self.received)


@dataclass(frozen=True)
class TracerouteReading:
    target: str                          # "host:port" of the reflector
    hops: tuple[HopReading, ...]         # TTL 1, 2, ... up to the reflector (or the last tried)
    reached: bool                        # the reflector answered
    duration_s: float
    problem: str | None = None           # why it could not run, or nothing answered
    needs_privileges: bool = False       # the problem is missing raw-socket rights


def measure_hops(host: str, port: int, *, max_hops: int = 20, probes_per_hop: int = 5,
                 budget_s: float = 3.0, check_privileges: bool = True) -> TracerouteReading:
    """Trace the path to the reflector at ``host:port`` within about ``budget_s`` seconds.

    Never raises for missing privileges, missing scapy or network errors (they come back as
    ``problem``); bad arguments raise ValueError. ``check_privileges=False`` skips the cheap
    pre-check and lets the socket itself fail (tests use it).
    """
    if not 1 <= max_hops <= 64 or probes_per_hop < 1 or budget_s <= 0:
        raise ValueError("max_hops must be 1..64, probes_per_hop >= 1, budget_s > 0")
    target = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    start = time.monotonic()
    try:
        family, _, _, _, sockaddr = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)[0]
    except (OSError, UnicodeError) as exc:
        return _failed(target, start, f"cannot resolve the reflector {target}: {exc}")
    if check_privileges:
        problem = raw_socket_problem()
        if problem:
            return _failed(target, start, problem, privileges=True)
    try:
        session = _Scapy(family, str(sockaddr[0]), port)
    except ImportError as exc:   # named, so a frozen build missing a module shows which
        return _failed(target, start, f"scapy is not installed (pip install scapy): {exc}")
    except PermissionError as exc:
        return _failed(target, start, _permission_problem(exc), privileges=True)
    except Exception as exc:  # noqa: BLE001 - scapy's back-ends raise many kinds (no Npcap...)
        return _failed(target, start, f"cannot open a raw socket: {exc}",
                       privileges=isinstance(exc, OSError) or "pcap" in str(exc).lower())
    try:
        return _trace(session, target, start, max_hops, probes_per_hop, budget_s)
    except Exception as exc:  # noqa: BLE001 - a traceroute must never break the check
        return _failed(target, start, f"traceroute failed: {exc}")
    finally:
        session.close()


def _trace(session: _Scapy, target: str, start: float, max_hops: int, probes_per_hop: int,
           budget_s: float) -> TracerouteReading:
    # Phase 1: every TTL at once; wait at most a third of the budget for silent hops.
    found = session.probe(list(range(1, max_hops + 1)), inter=0.0, wait=budget_s / 3)
    target_ttls = [ttl for ttl, (addr, _rtt) in found if addr == session.dst]
    if target_ttls:
        hop_count = min(target_ttls)
    else:   # up to one past the last router that answered
        answered = [ttl for ttl, (addr, _rtt) in found if addr is not None]
        hop_count = min(max_hops, max(answered) + 1) if answered else 0
    results = [(ttl, hit) for ttl, hit in found if ttl <= hop_count]
    # Phase 2: the other rounds over TTL 1..hop_count, spread over what is left of the budget,
    # keeping a quarter of it (at least 0.3 s) to collect the last answers.
    rounds = probes_per_hop - 1
    if hop_count and rounds:
        left = budget_s - (time.monotonic() - start)
        wait = max(0.3, left / 4)
        spread = max(0.0, left - wait)
        count = rounds * hop_count
        ttls = [ttl for _ in range(rounds) for ttl in range(1, hop_count + 1)]
        results += session.probe(ttls, inter=spread / count, wait=wait)
    # A lost discovery probe can make the reflector look one hop further away than it is:
    # the lowest TTL it answered in any round is its hop; later TTLs are the same host again.
    target_ttls = [ttl for ttl, (addr, _rtt) in results if addr == session.dst]
    reached = bool(target_ttls)
    hop_count = min(target_ttls, default=hop_count)
    hops = tuple(_hop(ttl, [hit for t, hit in results if t == ttl], session.dst)
                 for ttl in range(1, hop_count + 1))
    problem = None if hop_count else f"no router and not the reflector {target} answered"
    return TracerouteReading(target=target, hops=hops, reached=reached,
                             duration_s=time.monotonic() - start, problem=problem)


def _hop(ttl: int, hits: Sequence[tuple[str | None, float | None]], dst: str) -> HopReading:
    rtts = [rtt for addr, rtt in hits if addr is not None and rtt is not None]
    addresses = Counter(addr for addr, _rtt in hits if addr is not None)
    address = addresses.most_common(1)[0][0] if addresses else None
    return HopReading(
        ttl=ttl, address=address, sent=len(hits), received=len(rtts),
        rtt_median_ms=rtp_stats.percentile(rtts, 50) if rtts else None,
        rtt_p95_ms=rtp_stats.percentile(rtts, 95) if rtts else None,
        is_target=address == dst)


def _failed(target: str, start: float, problem: str, *,
            privileges: bool = False) -> TracerouteReading:
    return TracerouteReading(target=target, hops=(), reached=False,
                             duration_s=time.monotonic() - start, problem=problem,
                             needs_privileges=privileges)


# Classic BPF (linux/filter.h): the receive socket sees every packet of the machine, and scapy
# dissects each one in Python; the kernel keeps only ICMP errors and UDP from the reflector.
_SKF_NET_OFF = -0x100000 & 0xFFFFFFFF      # offsets from the network header, any link type
_LD_B, _LD_W, _JEQ, _RET = 0x30, 0x20, 0x15, 0x06
_SO_ATTACH_FILTER = 26


def answer_filter(dst: str, v6: bool) -> list[tuple[int, int, int, int]]:
    """BPF program: accept ICMP (ICMPv6) and UDP whose source is ``dst``; drop the rest."""
    icmp, proto_at, src_at = (58, 6, 8) if v6 else (1, 9, 12)
    words = [int.from_bytes(socket.inet_pton(socket.AF_INET6 if v6 else socket.AF_INET,
                                             dst)[i:i + 4], "big")
             for i in range(0, 16 if v6 else 4, 4)]
    reject = 3 + 2 * len(words)            # index of "ret 0"; "accept" follows it
    prog = [(_LD_B, 0, 0, _SKF_NET_OFF + proto_at),
            (_JEQ, reject - 1, 0, icmp),   # ICMP: to "accept" (jumps count from the next)
            (_JEQ, 0, reject - 3, 17)]     # UDP: compare the source; anything else: "reject"
    for n, word in enumerate(words):
        here = 3 + 2 * n
        prog.append((_LD_W, 0, 0, _SKF_NET_OFF + src_at + 4 * n))
        last = n == len(words) - 1
        prog.append((_JEQ, 1 if last else 0, reject - here - 2, word))
    prog += [(_RET, 0, 0, 0), (_RET, 0, 0, 0x40000)]
    return prog


def _attach_answer_filter(sock: socket.socket, dst: str, v6: bool) -> None:
    import ctypes
    import struct

    prog = answer_filter(dst, v6)
    code = ctypes.create_string_buffer(b"".join(struct.pack("HBBI", *i) for i in prog))
    try:
        sock.setsockopt(socket.SOL_SOCKET, _SO_ATTACH_FILTER,
                        struct.pack("HL", len(prog), ctypes.addressof(code)))
    except OSError:
        return      # without it scapy still matches the answers, it only works harder
    # What arrived between opening the socket and attaching the filter is still queued.
    with contextlib.suppress(OSError):
        for _ in range(100000):
            sock.recv(65536, socket.MSG_DONTWAIT)


# Raw sockets, per OS, chosen once: who may open them, how scapy's layer-3 socket is opened,
# and what a refusal tells the user.
if sys.platform.startswith("linux"):
    def raw_socket_problem() -> str | None:
        """Why this process cannot open raw sockets, or None if it (probably) can.

        Cheap and import-free: the effective capability set (``CapEff`` in /proc/self/status)
        must hold CAP_NET_RAW (root has it unless it was dropped).
        """
        try:
            with open("/proc/self/status", encoding="ascii") as status:
                for line in status:
                    if line.startswith("CapEff:"):
                        if int(line.split()[1], 16) >> CAP_NET_RAW & 1:
                            return None
                        break
        except (OSError, ValueError):
            pass
        return ("raw sockets need root or the CAP_NET_RAW capability "
                "(e.g. setcap cap_net_raw+ep on the agent)")

    def _open_l3_socket(dst: str, v6: bool) -> Any:
        # The kernel routes and resolves neighbours (VPN tunnels included); scapy's own
        # layer-2 socket would ARP by itself and pick the interface from its own table.
        from scapy.supersocket import L3RawSocket, L3RawSocket6

        sock = L3RawSocket6() if v6 else L3RawSocket()
        _attach_answer_filter(sock.ins, dst, v6)
        return sock

    def _permission_problem(exc: PermissionError) -> str:
        return f"raw sockets need root or CAP_NET_RAW: {exc}"

elif sys.platform == "win32":
    def raw_socket_problem() -> str | None:
        """None: on Windows Npcap decides, which only scapy can tell (when the socket opens)."""
        return None

    def _open_l3_socket(dst: str, v6: bool) -> Any:
        from scapy.config import conf

        if not conf.use_pcap:
            # scapy's fallback (plain Windows raw sockets) cannot see the ICMP answers
            raise PermissionError("Npcap is not installed (https://npcap.com)")
        return conf.L3socket6() if v6 else conf.L3socket()

    def _permission_problem(exc: PermissionError) -> str:
        return str(exc)   # already in plain words (no Npcap, or its admin-only mode)

else:
    def raw_socket_problem() -> str | None:
        """Why this process cannot open raw sockets, or None if it (probably) can: on macOS
        and the BSDs the process must be root (or have BPF access)."""
        return "raw sockets need root" if os.geteuid() != 0 else None

    def _open_l3_socket(dst: str, v6: bool) -> Any:
        from scapy.config import conf

        return conf.L3socket6() if v6 else conf.L3socket()

    def _permission_problem(exc: PermissionError) -> str:
        return f"raw sockets need root or CAP_NET_RAW: {exc}"


class _Scapy:
    """One raw socket (scapy) for the run; ``probe`` sends TTL-limited reflector requests."""

    def __init__(self, family: int, dst: str, port: int) -> None:
        import logging

        logging.getLogger("scapy.runtime").setLevel(logging.ERROR)   # no warnings on stderr
        from scapy.layers.inet import IP, UDP
        from scapy.layers.inet6 import IPv6

        self.dst, self.port, self.v6 = dst, port, family == socket.AF_INET6
        self._ip: Any = IPv6 if self.v6 else IP
        self._udp: Any = UDP
        self._next_port = random.randrange(20000, 60000 - _PORT_SPAN)
        self._last_port = self._next_port + _PORT_SPAN
        self._sock: Any = _open_l3_socket(dst, self.v6)

    def probe(self, ttls: Sequence[int], *, inter: float, wait: float,
              ) -> list[tuple[int, tuple[str | None, float | None]]]:
        """Send one probe per entry of ``ttls``; per probe (ttl, (answering address, RTT ms))."""
        packets = []
        for seq, ttl in enumerate(ttls):
            if self._next_port >= self._last_port:
                raise RuntimeError("too many probes for one run")
            sport, self._next_port = self._next_port, self._next_port + 1
            ip = self._ip(dst=self.dst, hlim=ttl) if self.v6 else self._ip(dst=self.dst, ttl=ttl)
            payload = encode(PathPacket(KIND_REQUEST, seq, time.time_ns()), PROBE_BYTES)
            packets.append(ip / self._udp(sport=sport, dport=self.port) / payload)
        answered, _unanswered = self._sock.sr(packets, inter=inter, timeout=wait, verbose=0)
        by_port: dict[int, tuple[str | None, float | None]] = {}
        for sent, got in answered:
            by_port[int(sent.sport)] = (str(got.src), (float(got.time) - float(sent.sent_time))
                                        * 1000.0)
        return [(ttl, by_port.get(int(p.sport), (None, None)))
                for ttl, p in zip(ttls, packets, strict=True)]

    def close(self) -> None:
        self._sock.close()
