"""The reflector answers a standard STAMP session-sender (RFC 8762, unauthenticated mode).

The client is independent of the product: scapy's STAMP layer (``scapy.contrib.stamp``, RFC
8762 / RFC 8972) builds the 44-byte session-sender test packet and reads the session-reflector
packet; the PTPv2 timestamps are read with ``struct`` from the RFC's figure. Only the reflector
under test (``start_reflector``) comes from the product.
"""

from __future__ import annotations

import socket
import struct
import time
from collections.abc import Iterator

import pytest

from agent_kit.center.reflector import start_reflector

stamp = pytest.importorskip("scapy.contrib.stamp")

NTP_UNIX_OFFSET_S = 2_208_988_800      # RFC 5905: 1900-01-01 to 1970-01-01
WAIT_S = 2.0


@pytest.fixture()
def reflector() -> Iterator[object]:
    with start_reflector("127.0.0.1", 0) as handle:
        yield handle


def sender(seq: int, *, ssid: int = 0, ptp: bool = False, ts: float | None = None) -> bytes:
    """A session-sender test packet (RFC 8762 4.2.1; SSID of RFC 8972 in bytes 14-15)."""
    error = stamp.ErrorEstimate(S=0, Z=1 if ptp else 0, scale=10, multiplier=3)
    ntp = (time.time() if ts is None else ts) + NTP_UNIX_OFFSET_S
    packet = stamp.STAMPSessionSenderTestUnauthenticated(seq=seq, ts=0 if ptp else ntp,
                                                         err_estimate=error, ssid=ssid)
    data = bytes(packet)
    if ptp:
        # PTPv2 truncated (RFC 8762 4.2.1): 32-bit seconds and 32-bit nanoseconds since 1970
        now = time.time_ns()
        data = data[:4] + struct.pack("!II", now // 10**9, now % 10**9) + data[12:]
    assert len(data) == 44
    return data


def ask(sock: socket.socket, address, data: bytes) -> bytes | None:
    sock.sendto(data, address)
    try:
        return sock.recv(2048)
    except TimeoutError:
        return None


@pytest.fixture()
def sock() -> Iterator[socket.socket]:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        s.settimeout(WAIT_S)
        yield s


def test_a_stamp_sender_gets_a_session_reflector_packet(reflector, sock) -> None:
    sent_at = time.time()
    request = sender(41, ssid=0)
    data = ask(sock, reflector.address, request)
    got_at = time.time()
    assert data is not None and len(data) == 44          # symmetric: never larger
    reply = stamp.STAMPSessionReflectorTestUnauthenticated(data)
    # the sender's fields come back as they were sent (RFC 8762 4.3.1)
    req = stamp.STAMPSessionSenderTestUnauthenticated(request)
    assert reply.seq_sender == 41
    assert data[28:36] == request[4:12]                   # Session-Sender Timestamp, bit for bit
    assert data[36:38] == request[12:14]                  # Session-Sender Error Estimate
    assert reply.ssid == req.ssid == 0
    # stateful: the reflector's own sequence number starts at 0 for the session
    assert reply.seq == 0
    # receive and transmit timestamps in NTP format (the sender's Z = 0), in causal order
    assert reply.err_estimate.Z == 0 and reply.err_estimate.multiplier != 0
    rx = float(reply.ts_rx) - NTP_UNIX_OFFSET_S
    tx = float(reply.ts) - NTP_UNIX_OFFSET_S
    assert sent_at - 1e-3 <= rx <= tx <= got_at + 1e-3
    # Session-Sender TTL: what the packet arrived with (Linux loopback: the default 64)
    assert reply.ttl_sender == 64
    assert data[38:40] == b"\0\0" and data[41:44] == b"\0\0\0"   # MBZ


def test_the_reflector_counts_each_stamp_session(reflector, sock) -> None:
    """Stateful mode: the reflector's sequence numbers run 0, 1, 2 per session, whatever the
    sender's, so the sender can tell forward loss from return loss; another SSID (RFC 8972)
    is another session."""
    seqs = []
    for s in (10, 11, 15):             # the sender skipped 12-14 (or they were lost)
        data = ask(sock, reflector.address, sender(s, ssid=7))
        seqs.append((stamp.STAMPSessionReflectorTestUnauthenticated(data).seq,
                     stamp.STAMPSessionReflectorTestUnauthenticated(data).seq_sender))
    assert seqs == [(0, 10), (1, 11), (2, 15)]
    other = stamp.STAMPSessionReflectorTestUnauthenticated(
        ask(sock, reflector.address, sender(99, ssid=8)))
    assert (other.seq, other.ssid, other.seq_sender) == (0, 8, 99)
    # the reflector counts a reply once it is sent, so the count may trail the reply's arrival
    # by a moment
    deadline = time.monotonic() + 2.0
    while reflector.stats.stamp_answered < 4 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert reflector.stats.stamp_answered == 4


def test_ptp_timestamps_when_the_sender_uses_them(reflector, sock) -> None:
    before = time.time_ns()
    data = ask(sock, reflector.address, sender(1, ptp=True))
    after = time.time_ns()
    assert data is not None
    error, = struct.unpack_from("!H", data, 12)
    assert error & 0x4000                                  # Z = 1: PTPv2 truncated
    tx_s, tx_ns, = struct.unpack_from("!II", data, 4)
    rx_s, rx_ns, = struct.unpack_from("!II", data, 16)
    rx, tx = rx_s * 10**9 + rx_ns, tx_s * 10**9 + tx_ns
    assert before <= rx <= tx <= after
    assert tx_ns < 10**9 and rx_ns < 10**9


def test_stamp_and_path_test_packets_are_told_apart(reflector, sock) -> None:
    # A STAMP packet whose sequence number spells b"AKPT" is a path-test packet to the
    # reflector (and a malformed one): no answer, never a STAMP answer.
    akpt_seq = struct.unpack("!I", b"AKPT")[0]
    sock.settimeout(0.3)
    assert ask(sock, reflector.address, sender(akpt_seq)) is None
    # Other sizes are not STAMP unauthenticated packets: no answer.
    for size in (43, 45, 112):
        assert ask(sock, reflector.address, bytes(size)) is None
    sock.settimeout(WAIT_S)
    # ... and a real path test runs alongside STAMP on the same port
    from probes.network.path import measure_path

    reading = measure_path(*reflector.address, duration_s=0.4)
    assert reading.received == reading.sent == 20 and reading.reflected == 20
    assert ask(sock, reflector.address, sender(5)) is not None
