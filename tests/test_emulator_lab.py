"""The lab's link emulator (``tests/lab/emulator.py``) against measurements that do not trust it.

Each impairment is checked with a tool that measures on its own: ``ping`` for the delay, iperf3
for the rate, and a small UDP sender and receiver (here, numbering their datagrams) for loss,
bursts, reordering and queueing. The emulator's record must agree with what they saw: the
datagrams the receiver missed are exactly the ones the record says were dropped.
"""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from tests.lab.emulator import (
    DROP_GE,
    DROP_QUEUE,
    DROP_RANDOM,
    NOT_DROPPED,
    EmulatedLink,
    LineSpec,
    emulated_link,
)

pytestmark = [pytest.mark.lab, pytest.mark.timing]
UDP_PORT = 9400
IPERF_PORT = 5299
UDP = 17

# Numbered datagrams from home to the center: "seq (4 bytes) + padding", paced evenly.
SENDER = r"""
import socket, struct, sys, time
host, port = sys.argv[1], int(sys.argv[2])
count, pps, size = int(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
pad = bytes(size - 4)
t0 = time.monotonic()
for i in range(count):
    delay = t0 + i / pps - time.monotonic()
    if delay > 0:
        time.sleep(delay)
    s.sendto(struct.pack("!I", i) + pad, (host, port))
"""
# Prints the sequence numbers in the order they arrived, as JSON, once idle for 1 s.
RECEIVER = r"""
import json, socket, struct, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
s.bind((sys.argv[1], int(sys.argv[2])))
print("ready", flush=True)
s.settimeout(30)
seqs = [struct.unpack_from("!I", s.recv(65536))[0]]
s.settimeout(1.0)
try:
    while True:
        seqs.append(struct.unpack_from("!I", s.recv(65536))[0])
except socket.timeout:
    pass
print(json.dumps(seqs), flush=True)
"""


@pytest.fixture(scope="module")
def link() -> Iterator[EmulatedLink]:
    with emulated_link() as built:
        yield built


@pytest.fixture()
def emu(link: EmulatedLink) -> Iterator[EmulatedLink]:
    link.emulator.reset()
    yield link
    link.emulator.reset()


def _udp_run(link: EmulatedLink, count: int, pps: float, size: int = 200) -> list[int]:
    """Send ``count`` numbered datagrams home -> center; the sequence numbers received."""
    receiver = link.popen(link.center, [sys.executable, "-c", RECEIVER, link.center_addr,
                                        str(UDP_PORT)], stdout=subprocess.PIPE)
    try:
        assert receiver.stdout is not None
        assert receiver.stdout.readline().strip() == "ready"
        link.run(link.home, sys.executable, "-c", SENDER, link.center_addr, str(UDP_PORT),
                 str(count), str(pps), str(size), timeout=120)
        out, _ = receiver.communicate(timeout=60)
    finally:
        if receiver.poll() is None:
            receiver.kill()
            receiver.communicate()
    seqs: list[int] = json.loads(out)
    return seqs


def _udp_record(link: EmulatedLink) -> Any:
    record = link.emulator.record()
    mask = record.select("up", proto=UDP, dport=UDP_PORT)
    return record, mask


def _ping_avg_ms(link: EmulatedLink, count: int = 20) -> float:
    out = link.run(link.home, "ping", "-c", str(count), "-i", "0.05", "-q",
                   link.center_addr).stdout
    match = re.search(r"= [\d.]+/([\d.]+)/", out)
    assert match, out
    return float(match.group(1))


def _iperf3_mbit(link: EmulatedLink, *args: str) -> float:
    server = link.popen(link.center, ["iperf3", "-s", "-1", "-B", link.center_addr, "-p",
                                      str(IPERF_PORT)], stdout=subprocess.DEVNULL)
    try:
        time.sleep(0.3)
        out = link.run(link.home, "iperf3", "-c", link.center_addr, "-p", str(IPERF_PORT),
                       "-J", *args, timeout=60).stdout
    finally:
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    return float(json.loads(out)["end"]["sum_received"]["bits_per_second"]) / 1e6


def test_ping_round_trip_is_the_two_one_way_delays(emu: EmulatedLink) -> None:
    base = _ping_avg_ms(emu, 10)        # the perfect link: the machine's own cost
    emu.emulator.set(down=LineSpec(delay_ms=12), up=LineSpec(delay_ms=18))
    emu.emulator.clear_record()
    rtt = _ping_avg_ms(emu)
    # what the emulator adds beyond the set delay is its wake-up latency (~0.1 ms each way)
    assert 30 <= rtt <= 30 + base + 1.5, (rtt, base)
    record = emu.emulator.record()
    icmp = record.proto == 1
    applied = record.delay_ms[icmp]
    assert set(np.round(applied[record.direction[icmp] == 0], 6)) == {12.0}
    assert set(np.round(applied[record.direction[icmp] == 1], 6)) == {18.0}
    late = (record.departure[icmp] - record.arrival[icmp]) * 1000 - applied
    assert np.all(late >= 0) and np.median(late) < 1.0, late


def test_runtime_changes_apply_without_rebuilding_and_reset_restores(emu: EmulatedLink) -> None:
    emu.emulator.set(up=LineSpec(delay_ms=40))
    assert 40 <= _ping_avg_ms(emu, 5) < 43
    emu.emulator.reset()
    assert _ping_avg_ms(emu, 5) < 3
    assert len(emu.emulator.record().arrival) == 10   # the record restarted at the reset


@pytest.mark.parametrize(("direction", "rate_mbit"), [("down", 20.0), ("up", 5.0)])
def test_iperf3_goodput_matches_the_set_rate(emu: EmulatedLink, direction: str,
                                             rate_mbit: float) -> None:
    line = LineSpec(rate_mbit=rate_mbit, delay_ms=10, queue_ms=60)
    emu.emulator.set(down=line, up=line)
    got = _iperf3_mbit(emu, "-t", "3", *(["-R"] if direction == "down" else []))
    # rate counts IP bytes; TCP's payload is 1448 of each 1500-byte packet (timestamps on)
    ceiling = rate_mbit * 1448 / 1500
    assert 0.88 * ceiling <= got <= 1.01 * ceiling, (got, ceiling)
    record = emu.emulator.record()
    sent = (record.select(direction, proto=6) & (record.dropped == NOT_DROPPED)
            & np.isfinite(record.departure))
    dep = record.departure[sent]
    span = dep.max() - dep.min()
    # the record's own rate: never above the set rate beyond one burst
    assert record.size[sent].sum() <= rate_mbit * 1e6 / 8 * span + 3028 + 1500


def test_random_loss_matches_the_record_and_the_receiver(emu: EmulatedLink) -> None:
    count = 6000
    emu.emulator.set(up=LineSpec(loss_pct=5.0, seed=7))
    seqs = _udp_run(emu, count, pps=3000)
    record, mask = _udp_record(emu)
    assert mask.sum() == count
    dropped = np.flatnonzero(record.dropped[mask] != NOT_DROPPED)
    assert set(record.dropped[mask][dropped]) == {DROP_RANDOM}
    # the receiver missed exactly what the record dropped
    assert sorted(set(range(count)) - set(seqs)) == dropped.tolist()
    assert len(seqs) == count - len(dropped)
    sigma = math.sqrt(count * 0.05 * 0.95)
    assert abs(len(dropped) - count * 0.05) < 4 * sigma


def _bursts(lost: Any) -> list[int]:
    """Lengths of the runs of consecutive losses."""
    runs, current = [], 0
    for bit in lost:
        if bit:
            current += 1
        elif current:
            runs.append(current)
            current = 0
    if current:
        runs.append(current)
    return runs


def test_gilbert_elliott_losses_come_in_bursts_of_the_set_length(emu: EmulatedLink) -> None:
    count, p, r = 10000, 0.01, 0.25     # loss p / (p + r) = 3.8 %, mean burst 1 / r = 4
    emu.emulator.set(up=LineSpec(ge_p=p, ge_r=r, seed=3))
    seqs = _udp_run(emu, count, pps=5000)
    record, mask = _udp_record(emu)
    assert mask.sum() == count
    lost = record.dropped[mask] != NOT_DROPPED
    assert set(record.dropped[mask][lost]) == {DROP_GE}
    received = np.zeros(count, dtype=bool)
    received[seqs] = True
    assert np.array_equal(~received, lost)     # the receiver and the record agree packet by packet
    runs = _bursts(~received)
    assert len(runs) > 50
    assert 3.0 <= float(np.mean(runs)) <= 5.0, runs
    assert 0.025 <= lost.mean() <= 0.055
    # random loss alone would give bursts of ~1: these are the chain's
    assert np.mean(np.array(runs) >= 3) > 0.35


@pytest.mark.parametrize("reorder", [False, True], ids=["fifo", "reordering"])
def test_jitter_reorders_only_when_asked(emu: EmulatedLink, reorder: bool) -> None:
    count = 2000
    emu.emulator.set(up=LineSpec(delay_ms=5, jitter_ms=20, reorder=reorder, seed=5))
    seqs = _udp_run(emu, count, pps=1000)
    assert sorted(seqs) == list(range(count))
    out_of_order = sum(1 for a, b in zip(seqs, seqs[1:], strict=False) if b < a)
    record, mask = _udp_record(emu)
    extra = record.delay_ms[mask] - 5
    if reorder:
        # U(0, 20 ms) at 1 ms spacing: a packet overtakes its predecessor about 45 % of the time
        assert out_of_order > count * 0.2
        assert extra.min() >= 0 and extra.max() <= 20
        assert abs(extra.mean() - 10) < 1.0
    else:
        assert out_of_order == 0
        assert extra.min() >= 0      # held back behind the packet ahead, never sent early
        departures = record.departure[mask]
        assert np.all(np.diff(departures) >= 0)


def test_a_queue_limit_in_ms_drops_at_the_tail_and_bounds_the_wait(emu: EmulatedLink) -> None:
    # 4 Mbit/s of 500-byte datagrams into a 2 Mbit/s line with a 50 ms queue
    count = 2000
    emu.emulator.set(up=LineSpec(rate_mbit=2, queue_ms=50, queue_packets=None))
    seqs = _udp_run(emu, count, pps=1000, size=472)   # 500 IP bytes
    record, mask = _udp_record(emu)
    assert mask.sum() == count
    kept = record.dropped[mask] == NOT_DROPPED
    assert set(record.dropped[mask][~kept]) == {DROP_QUEUE}
    assert len(seqs) == kept.sum()
    assert 0.4 < (~kept).mean() < 0.6          # half of an offered load twice the rate
    waits = record.queue_delay_ms[mask][kept]
    assert waits.max() <= 50
    assert waits[len(waits) // 2:].mean() > 45   # the queue stays full once filled
    # the wait as it happened (delivery - arrival): the limit plus the emulator's wake-up
    # latency. It runs SCHED_FIFO, but this machine is a VM: the hypervisor takes its vCPUs
    # away now and then (vmstat "st" 2-8 % under load), which delays a few packets by ms.
    seen = (record.departure[mask][kept] - record.arrival[mask][kept]) * 1000
    late = seen - waits
    assert np.median(late) < 0.5 and np.percentile(late, 90) < 4, np.percentile(late, [50, 90])
    assert seen.max() < 50 + 40


def test_a_queue_limit_in_packets_caps_the_depth(emu: EmulatedLink) -> None:
    count = 1500
    emu.emulator.set(up=LineSpec(rate_mbit=2, queue_packets=20, queue_ms=None))
    seqs = _udp_run(emu, count, pps=1000, size=472)
    record, mask = _udp_record(emu)
    kept = record.dropped[mask] == NOT_DROPPED
    assert record.queue_packets[mask][kept].max() <= 19    # found at most 19 ahead
    assert record.queue_packets[mask][~kept].min() >= 20
    assert set(record.dropped[mask][~kept]) == {DROP_QUEUE}
    assert len(seqs) == kept.sum()
    # 20 packets of 500 bytes at 2 Mbit/s: 40 ms at most
    assert record.queue_delay_ms[mask][kept].max() <= 40 + 0.1
