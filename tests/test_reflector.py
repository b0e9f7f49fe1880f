"""The center's UDP reflector on loopback: answers path packets, ignores everything else,
never answers with more bytes than it got, and rate-limits each source."""

from __future__ import annotations

import os
import socket
import time

import pytest

from agent_kit.center.reflector import TokenBuckets, main, start_reflector
from probes.network.path import measure_path
from probes.network.path_packet import (
    HEADER,
    KIND_REPLY,
    KIND_REQUEST,
    MAGIC,
    PathPacket,
    decode,
    encode,
)


@pytest.fixture()
def reflector():
    handle = start_reflector("127.0.0.1", 0, max_pps_per_source=1000)
    yield handle
    handle.close()


def client() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(0.3)
    return sock


def exchange(sock, address, data: bytes) -> bytes | None:
    sock.sendto(data, address)
    try:
        return sock.recv(4096)
    except TimeoutError:
        return None


def test_echoes_request_with_timestamps_same_size(reflector):
    with client() as sock:
        for size in (36, 172, 1472):
            req = encode(PathPacket(KIND_REQUEST, 7, 123456789), size)
            before = time.time_ns()
            data = exchange(sock, reflector.address, req)
            assert data is not None and len(data) == size
            reply = decode(data, KIND_REPLY)
            assert reply is not None and reply.seq == 7 and reply.sender_tx_ns == 123456789
            assert before - 10**9 < reply.reflector_rx_ns <= reply.reflector_tx_ns
            assert data[HEADER.size:] == bytes(size - HEADER.size)


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


@pytest.mark.parametrize("data", HOSTILE, ids=range(len(HOSTILE)))
def test_malformed_and_hostile_packets_get_no_answer(reflector, data):
    with client() as sock:
        assert exchange(sock, reflector.address, data) is None
        # ... and the reflector keeps serving
        good = encode(PathPacket(KIND_REQUEST, 1, 1), 172)
        assert exchange(sock, reflector.address, good) is not None


def test_reply_is_never_larger_than_request(reflector):
    rng = __import__("random").Random(3)
    with client() as sock:
        sock.settimeout(0.02)
        for _ in range(200):
            size = rng.choice([0, 1, 20, 35, 36, 37, 100, 172, 1000, 1472, 1473, 2000])
            body = bytearray(os.urandom(size))
            if size >= 36 and rng.random() < 0.7:   # most of them well-formed headers
                body[:HEADER.size] = HEADER.pack(MAGIC, 1, KIND_REQUEST, 0,
                                                 rng.randrange(2**32), rng.randrange(2**64),
                                                 rng.randrange(2**64), rng.randrange(2**64))
            reply = exchange(sock, reflector.address, bytes(body))
            if reply is not None:
                assert len(reply) <= len(body)
    assert reflector.stats.answered > 30


def test_rate_limit_per_source():
    with start_reflector("127.0.0.1", 0, max_pps_per_source=20) as handle, client() as sock:
        sock.settimeout(0.01)
        for seq in range(200):   # a burst far above 20 packets/s
            sock.sendto(encode(PathPacket(KIND_REQUEST, seq, 1), 172), handle.address)
        time.sleep(0.3)
        answers = 0
        try:
            while True:
                sock.recv(2048)
                answers += 1
        except TimeoutError:
            pass
        # the bucket holds one second's worth (20) plus what refills during the burst
        assert 15 <= answers <= 30, answers
        assert handle.stats.rate_limited >= 170
        with client() as other:   # another source has its own bucket
            assert exchange(other, handle.address,
                            encode(PathPacket(KIND_REQUEST, 1, 1), 172)) is not None


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
        sock.settimeout(0.3)
        assert exchange(sock, reflector.address, encode(PathPacket(KIND_REQUEST, 1, 1),
                                                        172)) is None


def test_measure_path_against_reflector(reflector):
    reading = measure_path(*reflector.address, duration_s=1.0)
    assert reading.sent == 50 and reading.received == 50 and reading.loss_pct == 0
    assert reading.problem is None
    assert 0 < reading.rtt_median_ms < 20
    assert len(reading.rtt_ms_samples) == 50


def test_measure_path_without_reflector_says_why():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    reading = measure_path("127.0.0.1", port, duration_s=0.2, reply_wait_s=0.2)
    assert reading.received == 0 and reading.rtt_median_ms is None
    assert "no answer" in reading.problem


def test_main_rejects_bad_port(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--port", "70000"])
    assert exc.value.code == 2


def test_main_reports_busy_port(capsys):
    with start_reflector("127.0.0.1", 0) as handle:
        assert main(["--host", "127.0.0.1", "--port", str(handle.address[1])]) == 2
    assert "cannot listen" in capsys.readouterr().err
