"""Wire format of the path test (TWAMP-light style, RFC 5357 appendix I), shared by both ends.

All fields are big-endian. Request and reply have the same 36-byte header::

    offset size field
     0     4    magic            b"AKPT"
     4     1    version          1
     5     1    kind             1 = request (agent -> reflector), 2 = reply
     6     2    reserved         0
     8     4    seq              sender sequence number, 0, 1, 2, ...
    12     8    sender_tx_ns     sender send time, ns (sender's clock)
    20     8    reflector_rx_ns  reflector receive time, ns (0 in a request)
    28     8    reflector_tx_ns  reflector send time, ns (0 in a request)
    36     ...  zero padding up to the packet size

A request is padded to the size of a voice packet: 12-byte RTP header + codec payload
(G.711 at 20 ms: 160 bytes, 172 bytes in all). The reflector answers with a reply of exactly
the request's size (never larger: it cannot amplify) whose padding is zeros. Timestamps are
nanoseconds of CLOCK_REALTIME; only differences taken on one clock are used (RTT, and per
direction the RFC 3550 transit differences), so the two ends need no clock sync.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

MAGIC = b"AKPT"
VERSION = 1
KIND_REQUEST = 1
KIND_REPLY = 2
RTP_HEADER_BYTES = 12
HEADER = struct.Struct("!4sBBHIQQQ")
MIN_PACKET_BYTES = HEADER.size          # 36
MAX_PACKET_BYTES = 1472                 # one Ethernet frame: 1500 - IPv4 20 - UDP 8


@dataclass(frozen=True)
class PathPacket:
    kind: int
    seq: int
    sender_tx_ns: int
    reflector_rx_ns: int = 0
    reflector_tx_ns: int = 0


def packet_size(payload_bytes: int) -> int:
    """Bytes on the wire (UDP payload) for a codec payload: RTP header + payload."""
    size = RTP_HEADER_BYTES + payload_bytes
    if not MIN_PACKET_BYTES <= size <= MAX_PACKET_BYTES:
        raise ValueError(f"payload of {payload_bytes} bytes gives a {size}-byte packet; it must "
                         f"be {MIN_PACKET_BYTES - RTP_HEADER_BYTES}.."
                         f"{MAX_PACKET_BYTES - RTP_HEADER_BYTES} bytes")
    return size


def encode(packet: PathPacket, size: int) -> bytes:
    """The packet, zero-padded to ``size`` bytes."""
    if not MIN_PACKET_BYTES <= size <= MAX_PACKET_BYTES:
        raise ValueError(f"packet size {size} outside {MIN_PACKET_BYTES}..{MAX_PACKET_BYTES}")
    header = HEADER.pack(MAGIC, VERSION, packet.kind, 0, packet.seq & 0xFFFFFFFF,
                         packet.sender_tx_ns, packet.reflector_rx_ns, packet.reflector_tx_ns)
    return header + bytes(size - HEADER.size)


def decode(data: bytes, kind: int) -> PathPacket | None:
    """The packet in ``data`` if it is a well-formed packet of ``kind``; None otherwise."""
    if not MIN_PACKET_BYTES <= len(data) <= MAX_PACKET_BYTES:
        return None
    magic, version, got_kind, _reserved, seq, s_tx, r_rx, r_tx = HEADER.unpack_from(data)
    if magic != MAGIC or version != VERSION or got_kind != kind:
        return None
    return PathPacket(got_kind, seq, s_tx, r_rx, r_tx)


def reply_to(request: bytes, reflector_rx_ns: int, reflector_tx_ns: int) -> bytes | None:
    """The reflector's answer to ``request`` (same size), or None if it is not a request."""
    parsed = decode(request, KIND_REQUEST)
    if parsed is None:
        return None
    return encode(PathPacket(KIND_REPLY, parsed.seq, parsed.sender_tx_ns, reflector_rx_ns,
                             reflector_tx_ns), len(request))
