"""Wire format of the path test (TWAMP-light style, RFC 5357 appendix I), shared by both ends.

All fields are big-endian. Every packet starts with the same 36-byte header::

    offset size field
     0     4    magic            b"AKPT"
     4     1    version          1
     5     1    kind             1 = request, 2 = reply, 3 = count query, 4 = count answer
     6     2    flags            bit 0 (FLAG_COUNT): per-session counts asked for / present
     8     4    seq              sender sequence number, 0, 1, 2, ...
    12     8    sender_tx_ns     sender send time, ns (sender's clock)
    20     8    reflector_rx_ns  reflector receive time, ns (0 in a request)
    28     8    reflector_tx_ns  reflector send time, ns (0 in a request)
    36     ...  zero padding up to the packet size, or the count block (below)

A request is padded to the size of a voice packet: 12-byte RTP header + codec payload
(G.711 at 20 ms: 160 bytes, 172 bytes in all). The reflector answers with a reply of exactly
the request's size (never larger: it cannot amplify). Timestamps are nanoseconds of
CLOCK_REALTIME; only differences taken on one clock are used (RTT, and per direction the
RFC 3550 transit differences), so the two ends need no clock sync.

Loss per direction (the count block): like the stateful Session-Reflector of STAMP (RFC 8762
sections 4.2.2 and 4.3: it "maintains the test state", so the sender can tell forward loss from
return loss), the reflector keeps a small state per test session and returns it in each reply.
A request with FLAG_COUNT set, at least ``COUNTED_PACKET_BYTES`` long, carries a random
``session_id`` (u32) at offset 36; a reply with FLAG_COUNT set carries::

    36     4    session_id       copied from the request
    40     4    reflected        distinct sequence numbers of this session the reflector has
                                 answered, this packet included (STAMP's stateful count)
    44     4    highest_seq      the highest sequence number of the session answered so far
    48     8    window           bit i set: sequence number highest_seq - i was answered (0..63)
    56     ...  zero padding

so the sender knows forward loss (sent - reflected) and return loss (reflected - echoes back)
and, from the windows, which packet was lost on which way. After the stream the sender may ask
again with a count query (kind 3, same layout as a request, not counted): the reflector answers
with a count answer (kind 4) carrying the session's counts as they stand, so losses at the end
of the stream are placed too. The session is the sender's (address, port, session_id).

Compatibility, both ways, with the version-1 format that had no counts (``reserved`` = 0 where
``flags`` now is, zero padding):

- An old agent against a new reflector: its requests have flags 0, so the reflector keeps no
  state for them and answers byte for byte as before (flags 0, zero padding).
- A new agent against an old reflector: the old reflector checks magic, version and kind only,
  so it answers the request as before, with flags 0 and zero padding. The agent sees no
  FLAG_COUNT in the replies, sends no count query (kind 3, which an old reflector ignores),
  and reports the round-trip loss only (``PathReading.reflected`` None).
- A new reflector whose session table is full answers without counts too (flags 0): the agent
  falls back the same way.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

MAGIC = b"AKPT"
VERSION = 1
KIND_REQUEST = 1
KIND_REPLY = 2
KIND_COUNT_QUERY = 3
KIND_COUNT_ANSWER = 4
FLAG_COUNT = 0x0001
RTP_HEADER_BYTES = 12
HEADER = struct.Struct("!4sBBHIQQQ")
COUNTS = struct.Struct("!IIIQ")          # session_id, reflected, highest_seq, window
MIN_PACKET_BYTES = HEADER.size          # 36
COUNTED_PACKET_BYTES = HEADER.size + COUNTS.size   # 56: room for the count block
MAX_PACKET_BYTES = 1472                 # one Ethernet frame: 1500 - IPv4 20 - UDP 8
WINDOW_BITS = 64
_ANSWER_OF = {KIND_REQUEST: KIND_REPLY, KIND_COUNT_QUERY: KIND_COUNT_ANSWER}


@dataclass(frozen=True)
class SessionCounts:
    """The reflector's state of one session, as a reply carries it."""

    session_id: int
    reflected: int       # distinct sequence numbers answered so far
    highest_seq: int     # the highest sequence number answered so far
    window: int          # bit i: highest_seq - i answered (i < WINDOW_BITS)

    def answered(self, seq: int) -> bool | None:
        """Whether ``seq`` had been answered when this was sent; None outside the window."""
        if seq > self.highest_seq:
            return False
        back = self.highest_seq - seq
        if back >= WINDOW_BITS:
            return None
        return bool(self.window >> back & 1)


@dataclass(frozen=True)
class PathPacket:
    kind: int
    seq: int
    sender_tx_ns: int
    reflector_rx_ns: int = 0
    reflector_tx_ns: int = 0
    flags: int = 0
    session_id: int = 0                 # requests and count queries with FLAG_COUNT
    counts: SessionCounts | None = None  # replies and count answers with FLAG_COUNT


def packet_size(payload_bytes: int) -> int:
    """Bytes on the wire (UDP payload) for a codec payload: RTP header + payload."""
    size = RTP_HEADER_BYTES + payload_bytes
    if not MIN_PACKET_BYTES <= size <= MAX_PACKET_BYTES:
        raise ValueError(f"payload of {payload_bytes} bytes gives a {size}-byte packet; it must "
                         f"be {MIN_PACKET_BYTES - RTP_HEADER_BYTES}.."
                         f"{MAX_PACKET_BYTES - RTP_HEADER_BYTES} bytes")
    return size


def encode(packet: PathPacket, size: int) -> bytes:
    """The packet, zero-padded to ``size`` bytes; FLAG_COUNT needs COUNTED_PACKET_BYTES."""
    if not MIN_PACKET_BYTES <= size <= MAX_PACKET_BYTES:
        raise ValueError(f"packet size {size} outside {MIN_PACKET_BYTES}..{MAX_PACKET_BYTES}")
    header = HEADER.pack(MAGIC, VERSION, packet.kind, packet.flags & 0xFFFF,
                         packet.seq & 0xFFFFFFFF, packet.sender_tx_ns, packet.reflector_rx_ns,
                         packet.reflector_tx_ns)
    if not packet.flags & FLAG_COUNT:
        return header + bytes(size - HEADER.size)
    if size < COUNTED_PACKET_BYTES:
        raise ValueError(f"a packet with counts needs {COUNTED_PACKET_BYTES} bytes, not {size}")
    c = packet.counts
    block = COUNTS.pack(packet.session_id & 0xFFFFFFFF, 0, 0, 0) if c is None else COUNTS.pack(
        c.session_id & 0xFFFFFFFF, c.reflected & 0xFFFFFFFF, c.highest_seq & 0xFFFFFFFF,
        c.window & 0xFFFFFFFFFFFFFFFF)
    return header + block + bytes(size - COUNTED_PACKET_BYTES)


def decode(data: bytes, kind: int) -> PathPacket | None:
    """The packet in ``data`` if it is a well-formed packet of ``kind``; None otherwise.

    The count block is read only where FLAG_COUNT is set and the packet has room for it;
    a request's session id is read from it, a reply's counts too."""
    if not MIN_PACKET_BYTES <= len(data) <= MAX_PACKET_BYTES:
        return None
    magic, version, got_kind, flags, seq, s_tx, r_rx, r_tx = HEADER.unpack_from(data)
    if magic != MAGIC or version != VERSION or got_kind != kind:
        return None
    if not flags & FLAG_COUNT or len(data) < COUNTED_PACKET_BYTES:
        return PathPacket(got_kind, seq, s_tx, r_rx, r_tx, flags & ~FLAG_COUNT)
    session_id, reflected, highest, window = COUNTS.unpack_from(data, HEADER.size)
    counts = None if kind in _ANSWER_OF else SessionCounts(session_id, reflected, highest,
                                                           window)
    return PathPacket(got_kind, seq, s_tx, r_rx, r_tx, flags, session_id, counts)


def is_path_packet(data: bytes) -> bool:
    """True for anything that claims to be a path-test packet (starts with the magic), even
    malformed: such a datagram is answered as a path-test packet or not at all, never as
    another protocol (the reflector also speaks STAMP, ``agent_kit.center.reflector``)."""
    return data[:4] == MAGIC


def answer_to(request: bytes, reflector_rx_ns: int, reflector_tx_ns: int,
              counts: SessionCounts | None = None) -> bytes | None:
    """The reflector's answer to a request or count query (same size), or None if ``request``
    is neither. ``counts`` (the session's state after this packet) go in when given and the
    request asked for them; otherwise the answer is the plain version-1 reply."""
    parsed = decode(request, KIND_REQUEST) or decode(request, KIND_COUNT_QUERY)
    if parsed is None:
        return None
    kind = _ANSWER_OF[parsed.kind]
    if counts is None or not parsed.flags & FLAG_COUNT:
        return encode(PathPacket(kind, parsed.seq, parsed.sender_tx_ns, reflector_rx_ns,
                                 reflector_tx_ns), len(request))
    return encode(PathPacket(kind, parsed.seq, parsed.sender_tx_ns, reflector_rx_ns,
                             reflector_tx_ns, FLAG_COUNT, parsed.session_id, counts),
                  len(request))


def reply_to(request: bytes, reflector_rx_ns: int, reflector_tx_ns: int) -> bytes | None:
    """The stateless answer to a request (same size), or None if it is not a request: what
    a reflector without session state (or an old one) sends."""
    if decode(request, KIND_REQUEST) is None:
        return None
    return answer_to(request, reflector_rx_ns, reflector_tx_ns)
