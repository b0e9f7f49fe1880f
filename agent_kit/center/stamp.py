"""STAMP (RFC 8762) Session-Reflector packets, unauthenticated mode: so that a standard STAMP
session-sender (a router's, a monitoring system's) can measure the path to the center too.

Session-sender test packet (RFC 8762 section 4.2.1; bytes 14-15 are MBZ there and
the SSID of RFC 8972 section 3), 44 bytes::

     0  4  Sequence Number
     4  8  Timestamp                  (NTP 64-bit, or PTPv2 truncated when Z = 1)
    12  2  Error Estimate             S | Z | Scale (6 bits) | Multiplier (8 bits), RFC 4656
    14  2  SSID / MBZ
    16 28  MBZ

Session-reflector test packet (section 4.3.1), 44 bytes as well, so the answer is
never larger than the question::

     0  4  Sequence Number            stateful: the reflector's own count per session, 0, 1,
                                      ...; stateless: the sender's (section 4.3.1)
     4  8  Timestamp                  when the reflector sent this answer
    12  2  Error Estimate             the reflector's (S = 0: no external sync claimed)
    14  2  SSID / MBZ                 copied
    16  8  Receive Timestamp          when the reflector received the test packet
    24  4  Session-Sender Sequence Number   copied
    28  8  Session-Sender Timestamp         copied
    36  2  Session-Sender Error Estimate    copied
    38  2  MBZ
    40  1  Session-Sender TTL         TTL / hop limit of the received packet (0: unknown)
    41  3  MBZ

The reflector answers in the timestamp format the sender used (its Z flag), keeps a count per
session (source address, port, SSID) in the bounded session table
(``agent_kit.center.reflector_sessions``: stateful mode, so the sender can tell forward loss
from return loss) and answers statelessly when the table has no room. Only the 44-byte base
packet is answered: authenticated mode (112 bytes) and RFC 8972 TLVs are not supported.

Telling path-test packets and STAMP apart: a path-test packet starts with b"AKPT"; anything
that does is handled as a path-test packet (or dropped when malformed), never as STAMP. A
STAMP packet starts with its sequence number, so one with sequence number 0x414B5054
(1 095 454 804, i.e. b"AKPT": more than 250 days of a 50 packets/s session) would not be
answered; every other 44-byte datagram is read as STAMP.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

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


def parse_test(data: bytes) -> StampTest | None:
    """The session-sender test packet in ``data``, or None if it cannot be one (not 44 bytes,
    or a path-test packet's magic)."""
    if len(data) != STAMP_PACKET_BYTES or data[:4] == b"AKPT":
        return None
    seq, timestamp, error, ssid = _SENDER.unpack_from(data)
    return StampTest(seq, timestamp, error, ssid)


def timestamp(ns: int, ptp: bool) -> int:
    """``ns`` (Unix epoch, ns) as a 64-bit STAMP timestamp: NTP (seconds since 1900 and a
    32-bit binary fraction, RFC 5905) or, with ``ptp``, PTPv2 truncated (seconds since 1970
    and nanoseconds, 32 bits each; RFC 8762 section 4.2.1)."""
    seconds, rest_ns = divmod(ns, 1_000_000_000)
    if ptp:
        return (seconds & 0xFFFFFFFF) << 32 | rest_ns
    fraction = (rest_ns << 32) // 1_000_000_000
    return ((seconds + _NTP_UNIX_OFFSET_S) & 0xFFFFFFFF) << 32 | fraction


def reflect(test: StampTest, reflector_seq: int, rx_ns: int, tx_ns: int,
            sender_ttl: int | None) -> bytes:
    """The 44-byte session-reflector test packet answering ``test`` (RFC 8762 4.3.1)."""
    ptp = test.ptp_format
    error = (_Z_FLAG if ptp else 0) | _ERROR_SCALE << 8 | _ERROR_MULTIPLIER
    ttl = sender_ttl if sender_ttl is not None and 0 <= sender_ttl <= 255 else 0
    return _REFLECTOR.pack(reflector_seq & 0xFFFFFFFF, timestamp(tx_ns, ptp), error, test.ssid,
                           timestamp(rx_ns, ptp), test.seq, test.timestamp,
                           test.error_estimate, 0, ttl)
