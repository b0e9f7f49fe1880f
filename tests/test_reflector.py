"""The center's UDP reflector on loopback: answers path packets, ignores everything else,
never answers with more bytes than it got, rate-limits each source, and keeps a bounded count
per session that the path probe turns into loss per direction."""

from __future__ import annotations

import os
import socket
import struct
import threading
import time

import pytest

from agent_kit.center.reflector import ReflectorSessions, TokenBuckets, main, start_reflector
from probes.network.path import measure_path
from probes.network.path_packet import (
    COUNTED_PACKET_BYTES,
    FLAG_COUNT,
    HEADER,
    KIND_COUNT_ANSWER,
    KIND_COUNT_QUERY,
    KIND_REPLY,
    KIND_REQUEST,
    MAGIC,
    PathPacket,
    SessionCounts,
    decode,
    encode,
)

ANSWER_WAIT_S = 2.0     # how long a test waits for an answer it expects (never a measurement)
SILENCE_WAIT_S = 0.3    # how long it listens to confirm that no answer comes


@pytest.fixture()
def reflector():
    handle = start_reflector("127.0.0.1", 0, max_pps_per_source=1000)
    yield handle
    handle.close()


def client(address: str = "127.0.0.1") -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((address, 0))
    sock.settimeout(0.3)
    return sock


def exchange(sock, address, data: bytes, wait_s: float = ANSWER_WAIT_S) -> bytes | None:
    sock.settimeout(wait_s)
    sock.sendto(data, address)
    try:
        return sock.recv(4096)
    except TimeoutError:
        return None


def silent(sock, address, data: bytes) -> bool:
    """True when ``data`` gets no answer."""
    return exchange(sock, address, data, SILENCE_WAIT_S) is None


def settled(handle, datagrams: int) -> None:
    """Wait until the reflector has handled ``datagrams`` datagrams (answered, ignored or
    rate-limited), so that a test moving its clock on does not race the reflector's thread."""
    deadline = time.monotonic() + ANSWER_WAIT_S
    while True:
        stats = handle.stats
        if stats.answered + stats.ignored + stats.rate_limited >= datagrams:
            return
        assert time.monotonic() < deadline, f"the reflector handled only {stats}"
        time.sleep(0.01)


def test_echoes_request_with_timestamps_same_size(reflector):
    with client() as sock:
        for size in (36, 172, 1472):
            req = encode(PathPacket(KIND_REQUEST, 7, 123456789), size)
            before = time.time_ns()
            data = exchange(sock, reflector.address, req)
            after = time.time_ns()
            assert data is not None and len(data) == size
            reply = decode(data, KIND_REPLY)
            assert reply is not None and reply.seq == 7 and reply.sender_tx_ns == 123456789
            # stamped on the same clock, in causal order: sent, received there, sent back, got
            assert before <= reply.reflector_rx_ns <= reply.reflector_tx_ns <= after
            assert data[HEADER.size:] == bytes(size - HEADER.size)


# The version-1 wire format as agents and reflectors before per-session counts spoke it,
# written out here (not taken from the product) so the compatibility tests hold it fixed.
V1_HEADER = struct.Struct("!4sBBHIQQQ")


def v1_request(seq: int, tx: int, size: int) -> bytes:
    return V1_HEADER.pack(b"AKPT", 1, 1, 0, seq, tx, 0, 0) + bytes(size - V1_HEADER.size)


def test_an_old_agent_gets_the_old_reply_byte_for_byte(reflector):
    """A version-1 request (reserved 0, zero padding) gets a version-1 reply: flags 0, zero
    padding, and no session is kept for it."""
    with client() as sock:
        data = exchange(sock, reflector.address, v1_request(3, 42, 172))
    assert data is not None and len(data) == 172
    magic, version, kind, reserved, seq, s_tx, r_rx, r_tx = V1_HEADER.unpack_from(data)
    assert (magic, version, kind, reserved, seq, s_tx) == (b"AKPT", 1, 2, 0, 3, 42)
    assert 0 < r_rx <= r_tx
    assert data[V1_HEADER.size:] == bytes(172 - V1_HEADER.size)
    assert reflector.stats.sessions == 0


class OldReflector:
    """A reflector as it was before per-session counts: echoes version-1 requests (any
    reserved value, any padding) with reserved 0 and zero padding, stateless."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.address = self.sock.getsockname()
        self.stop = threading.Event()
        self.kinds: list[int] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                data, addr = self.sock.recvfrom(2048)
            except TimeoutError:
                continue
            if len(data) < V1_HEADER.size:
                continue
            magic, version, kind, _res, seq, s_tx, _rx, _tx = V1_HEADER.unpack_from(data)
            self.kinds.append(kind)
            if magic != b"AKPT" or version != 1 or kind != 1:
                continue
            now = time.time_ns()
            self.sock.sendto(V1_HEADER.pack(magic, 1, 2, 0, seq, s_tx, now, now)
                             + bytes(len(data) - V1_HEADER.size), addr)

    def close(self) -> None:
        self.stop.set()
        self.thread.join(2)
        self.sock.close()


def test_a_new_agent_against_an_old_reflector_reports_round_trip_loss_only():
    old = OldReflector()
    try:
        reading = measure_path(*old.address, duration_s=0.4)
    finally:
        old.close()
    assert reading.sent == 20 and reading.received == 20 and reading.loss_pct == 0
    assert reading.reflected is None and not reading.per_direction
    assert reading.loss_up_pct is None and reading.loss_down_pct is None
    assert set(old.kinds) == {KIND_REQUEST}   # no count query was sent to it


def counted_request(seq: int, session_id: int, size: int = 172,
                    kind: int = KIND_REQUEST) -> bytes:
    return encode(PathPacket(kind, seq, 1000 + seq, flags=FLAG_COUNT, session_id=session_id),
                  size)


def test_replies_carry_the_session_count_and_window(reflector):
    with client() as sock:
        counts = []
        for seq in (0, 1, 3, 3, 6):            # 2, 4 and 5 never sent; 3 twice
            data = exchange(sock, reflector.address, counted_request(seq, 77))
            reply = decode(data, KIND_REPLY)
            assert reply is not None and reply.flags & FLAG_COUNT and len(data) == 172
            counts.append(reply.counts)
        assert [c.reflected for c in counts] == [1, 2, 3, 3, 4]   # a duplicate counts once
        assert [c.highest_seq for c in counts] == [0, 1, 3, 3, 6]
        last = counts[-1]
        assert last.session_id == 77
        assert [last.answered(s) for s in range(7)] == [True, True, False, True, False, False,
                                                        True]
        # a count query is answered with the counts as they stand and is not counted itself
        data = exchange(sock, reflector.address, counted_request(99, 77, kind=KIND_COUNT_QUERY))
        answer = decode(data, KIND_COUNT_ANSWER)
        assert answer is not None and answer.seq == 99 and answer.counts == last
        # another session id from the same port is another session
        other = decode(exchange(sock, reflector.address, counted_request(5, 78)), KIND_REPLY)
        assert other.counts.reflected == 1 and other.counts.session_id == 78
    assert reflector.stats.sessions == 2


def test_a_count_query_for_an_unknown_session_has_no_counts(reflector):
    with client() as sock:
        data = exchange(sock, reflector.address, counted_request(0, 5, kind=KIND_COUNT_QUERY))
    answer = decode(data, KIND_COUNT_ANSWER)
    assert answer is not None and answer.counts is None and not answer.flags & FLAG_COUNT


def test_too_short_for_counts_is_answered_without_them(reflector):
    req = HEADER.pack(MAGIC, 1, KIND_REQUEST, FLAG_COUNT, 1, 1, 0, 0) + bytes(8)   # 44 bytes
    with client() as sock:
        data = exchange(sock, reflector.address, req)
    assert data is not None and len(data) == 44
    reply = decode(data, KIND_REPLY)
    assert reply is not None and reply.counts is None
    assert COUNTED_PACKET_BYTES == 56


HOSTILE = [
    b"",
    b"x",
    b"AKPT",
    os.urandom(172),
    MAGIC + bytes(168),                                                     # version 0
    HEADER.pack(MAGIC, 2, KIND_REQUEST, 0, 1, 1, 0, 0) + bytes(136),        # future version
    HEADER.pack(MAGIC, 1, KIND_REPLY, 0, 1, 1, 5, 6) + bytes(136),          # a reply: no loop
    HEADER.pack(MAGIC, 1, 9, 0, 1, 1, 0, 0) + bytes(136),                   # unknown kind
    HEADER.pack(MAGIC, 1, KIND_REQUEST, 0, 1, 1, 0, 0)[:35],                # truncated header
    HEADER.pack(MAGIC, 1, KIND_REQUEST, 0, 1, 1, 0, 0) + bytes(1437),       # 1473 bytes
    HEADER.pack(MAGIC, 1, KIND_REQUEST, 0, 1, 1, 0, 0) + bytes(8000),       # oversized
]


HOSTILE_COUNTED = [
    HEADER.pack(MAGIC, 1, KIND_COUNT_ANSWER, FLAG_COUNT, 1, 1, 0, 0) + bytes(136),  # an answer
    HEADER.pack(MAGIC, 2, KIND_COUNT_QUERY, FLAG_COUNT, 1, 1, 0, 0) + bytes(136),   # version 2
    b"AKPT" + bytes(40),              # 44 bytes with the magic: never read as STAMP
]


@pytest.mark.parametrize("data", HOSTILE + HOSTILE_COUNTED,
                         ids=range(len(HOSTILE) + len(HOSTILE_COUNTED)))
def test_malformed_and_hostile_packets_get_no_answer(reflector, data):
    with client() as sock:
        assert silent(sock, reflector.address, data)
        # ... and the reflector keeps serving
        good = encode(PathPacket(KIND_REQUEST, 1, 1), 172)
        assert exchange(sock, reflector.address, good) is not None


def test_reply_is_never_larger_than_request(reflector):
    """Random datagrams, most with a well-formed request header: each one that should be
    answered is answered with exactly its own size, and nothing else comes back."""
    rng = __import__("random").Random(3)
    expected = 0
    with client() as sock:
        for _ in range(200):
            size = rng.choice([0, 1, 20, 35, 36, 37, 100, 172, 1000, 1472, 1473, 2000])
            body = bytearray(os.urandom(size))
            if size >= 36 and rng.random() < 0.7:   # most of them well-formed headers
                body[:HEADER.size] = HEADER.pack(MAGIC, 1, KIND_REQUEST, rng.randrange(2**16),
                                                 rng.randrange(2**32), rng.randrange(2**64),
                                                 rng.randrange(2**64), rng.randrange(2**64))
            valid = 36 <= size <= 1472 and body[:6] == MAGIC + b"\x01\x01"
            if valid:
                expected += 1
                reply = exchange(sock, reflector.address, bytes(body))
                assert reply is not None and len(reply) == len(body)
            else:
                sock.sendto(bytes(body), reflector.address)
        assert silent(sock, reflector.address, b"x")   # nothing left over: no extra answers
    assert expected > 30 and reflector.stats.answered == expected


def test_rate_limit_per_source():
    """With the clock standing still the bucket holds one second's worth (20 packets) and
    nothing refills: of a burst of 200, exactly 20 are answered."""
    frozen = [1000.0]
    with start_reflector("127.0.0.1", 0, max_pps_per_source=20,
                         clock=lambda: frozen[0]) as handle, client() as sock:
        for seq in range(200):   # a burst far above 20 packets/s
            sock.sendto(encode(PathPacket(KIND_REQUEST, seq, 1), 172), handle.address)
        answers = 0
        sock.settimeout(ANSWER_WAIT_S)
        while answers < 20:
            sock.recv(2048)
            answers += 1
        settled(handle, 200)
        assert silent(sock, handle.address, b"x")
        assert answers == 20 and handle.stats.rate_limited == 180
        # another source address (all of 127/8 is loopback) has its own bucket
        with client("127.0.0.2") as other:
            assert exchange(other, handle.address,
                            encode(PathPacket(KIND_REQUEST, 1, 1), 172)) is not None
        frozen[0] += 0.5          # half a second later: 10 more
        for seq in range(20):
            sock.sendto(encode(PathPacket(KIND_REQUEST, seq, 1), 172), handle.address)
        for _ in range(10):
            sock.recv(2048)
        settled(handle, 200 + 1 + 1 + 20)     # + the "x" + the other source's request
        assert silent(sock, handle.address, b"x") and handle.stats.rate_limited == 190


def test_rate_limited_packets_are_not_counted():
    frozen = [5.0]
    with start_reflector("127.0.0.1", 0, max_pps_per_source=5,
                         clock=lambda: frozen[0]) as handle, client() as sock:
        for seq in range(8):
            sock.sendto(counted_request(seq, 9), handle.address)
        sock.settimeout(ANSWER_WAIT_S)
        replies = [decode(sock.recv(2048), KIND_REPLY) for _ in range(5)]
        settled(handle, 8)       # all eight handled before the clock moves on
        frozen[0] += 1.0
        data = exchange(sock, handle.address, counted_request(50, 9, kind=KIND_COUNT_QUERY))
    assert [r.counts.reflected for r in replies] == [1, 2, 3, 4, 5]
    assert decode(data, KIND_COUNT_ANSWER).counts.reflected == 5


def test_session_table_is_bounded_and_forgets_idle_sessions():
    now = [0.0]
    table = ReflectorSessions(max_sessions=10, max_per_source=3, idle_s=10.0,
                              clock=lambda: now[0])
    # one source: three sessions, the fourth gets no state
    assert all(table.answered(("path", "a", p, 1), "a", 1, 0) for p in range(3))
    assert table.answered(("path", "a", 99, 1), "a", 1, 0) is None
    # the table: ten sessions in all, from many sources
    for i in range(7):
        assert table.answered(("path", f"b{i}", 1, 1), f"b{i}", 1, 0) is not None
    assert len(table) == 10
    assert table.answered(("path", "c", 1, 1), "c", 1, 0) is None
    assert table.next_seq(("stamp", "c", 1, 0), "c", 0) is None
    # a live session keeps counting; idle ones go after idle_s
    now[0] = 9.0
    assert table.answered(("path", "a", 0, 1), "a", 1, 1).reflected == 2
    now[0] = 15.0
    assert table.answered(("path", "c", 1, 1), "c", 1, 0) is not None
    assert len(table) == 2          # a:0 (seen at 9 s) and c
    assert table.peek(("path", "b0", 1, 1)) is None
    now[0] = 30.0
    assert table.peek(("path", "a", 0, 1)) is None


def test_session_window_follows_gaps_wider_than_it():
    table = ReflectorSessions()
    counts = None
    for seq in (0, 1, 100, 99, 2):   # 2 arrives older than the window: counted, not placed
        counts = table.answered("k", "s", 1, seq)
    assert counts == SessionCounts(1, 5, 100, 0b11)
    assert counts.answered(100) and counts.answered(99) and not counts.answered(98)
    assert counts.answered(2) is None and counts.answered(101) is False


def test_token_bucket_refills_at_rate():
    now = [0.0]
    buckets = TokenBuckets(rate=10, burst=10, clock=lambda: now[0])
    assert sum(buckets.allow("a") for _ in range(50)) == 10
    now[0] += 0.5
    assert sum(buckets.allow("a") for _ in range(50)) == 5
    assert buckets.allow("b")


def test_token_bucket_table_is_bounded():
    now = [0.0]
    buckets = TokenBuckets(rate=10, burst=10, clock=lambda: now[0], max_sources=100)
    assert all(buckets.allow(f"10.0.0.{i}") for i in range(100))
    assert not buckets.allow("10.0.1.1")      # full of active sources
    now[0] += 60
    assert buckets.allow("10.0.1.1")          # idle ones forgotten
    assert len(buckets) <= 100


def test_low_source_port_ignored(reflector):
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.bind(("127.0.0.1", 1000))   # a privileged port (the tests run as root)
    except PermissionError:
        pytest.fail("tests run as root (LAB.md); cannot bind a port below 1024")
    with sock:
        assert silent(sock, reflector.address, encode(PathPacket(KIND_REQUEST, 1, 1), 172))
        assert silent(sock, reflector.address, bytes(44))     # STAMP alike


def test_measure_path_against_reflector(reflector):
    reading = measure_path(*reflector.address, duration_s=1.0)
    assert reading.sent == 50 and reading.received == 50 and reading.loss_pct == 0
    assert reading.problem is None
    assert 0 < reading.rtt_min_ms <= reading.rtt_median_ms <= reading.rtt_p95_ms
    assert len(reading.rtt_ms_samples) == 50
    # the reflector counted the session: nothing lost either way
    assert reading.reflected == 50 and reading.loss_up_pct == 0 and reading.loss_down_pct == 0
    assert reading.per_direction and reading.direction_filled == 0


def test_measure_path_without_reflector_says_why():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    reading = measure_path("127.0.0.1", port, duration_s=0.2, reply_wait_s=0.2)
    assert reading.received == 0 and reading.rtt_median_ms is None
    assert "no answer" in reading.problem
    assert reading.reflected is None   # nothing came back to count with


def test_main_rejects_bad_port(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--port", "70000"])
    assert exc.value.code == 2


def test_main_reports_busy_port(capsys):
    with start_reflector("127.0.0.1", 0) as handle:
        assert main(["--host", "127.0.0.1", "--port", str(handle.address[1])]) == 2
    assert "cannot listen" in capsys.readouterr().err
