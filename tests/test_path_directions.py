"""Loss per direction, end to end on loopback: the real probe, the real reflector, and between
them a relay that drops chosen sequence numbers on the way out or on the way back.

The relay reads the sequence number and kind straight from the bytes (offsets 8 and 5 of the
path-test header), not through the product's packet code, and its drop lists are the truth:
forward loss must be exactly what it dropped on the way to the reflector, return loss exactly
what it dropped on the way back.
"""

from __future__ import annotations

import selectors
import socket
import struct
import threading
from collections.abc import Iterator

import pytest

from agent_kit.center.reflector import start_reflector
from probes.network.path import PathReading, measure_path

REQUEST, REPLY, COUNT_QUERY = 1, 2, 3


class DropRelay:
    """UDP relay 127.0.0.1:any -> ``upstream``; drops path-test requests whose seq is in
    ``drop_up``, replies whose seq is in ``drop_down``, and count queries if ``drop_queries``."""

    def __init__(self, upstream: tuple[str, int], drop_up: set[int], drop_down: set[int],
                 drop_queries: bool = False) -> None:
        self.drop_up, self.drop_down, self.drop_queries = drop_up, drop_down, drop_queries
        self.front = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.front.bind(("127.0.0.1", 0))
        self.back = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.back.connect(upstream)
        self.address = self.front.getsockname()
        self.client: tuple[str, int] | None = None
        self.dropped: dict[str, list[int]] = {"up": [], "down": [], "query": []}
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    @staticmethod
    def _kind_seq(data: bytes) -> tuple[int, int]:
        return data[5], struct.unpack_from("!I", data, 8)[0]

    def _serve(self) -> None:
        sel = selectors.DefaultSelector()
        sel.register(self.front, selectors.EVENT_READ)
        sel.register(self.back, selectors.EVENT_READ)
        while not self.stop.is_set():
            for key, _ in sel.select(0.1):
                if key.fileobj is self.front:
                    data, self.client = self.front.recvfrom(2048)
                    kind, seq = self._kind_seq(data)
                    if kind == REQUEST and seq in self.drop_up:
                        self.dropped["up"].append(seq)
                    elif kind == COUNT_QUERY and self.drop_queries:
                        self.dropped["query"].append(seq)
                    else:
                        self.back.send(data)
                else:
                    data = self.back.recv(2048)
                    kind, seq = self._kind_seq(data)
                    if kind == REPLY and seq in self.drop_down:
                        self.dropped["down"].append(seq)
                    elif self.client is not None:
                        self.front.sendto(data, self.client)
        sel.close()

    def close(self) -> None:
        self.stop.set()
        self.thread.join(2)
        self.front.close()
        self.back.close()


@pytest.fixture(scope="module")
def reflector() -> Iterator[tuple[str, int]]:
    with start_reflector("127.0.0.1", 0) as handle:
        yield handle.address


def through(reflector: tuple[str, int], drop_up: set[int], drop_down: set[int],
            drop_queries: bool = False) -> tuple[PathReading, DropRelay]:
    relay = DropRelay(reflector, drop_up, drop_down, drop_queries)
    try:
        reading = measure_path(*relay.address, duration_s=6.0)
    finally:
        relay.close()
    return reading, relay


def test_forward_and_return_loss_are_what_the_relay_dropped(reflector) -> None:
    up, down = {5, 6, 7, 120, 299}, {10, 11, 12, 200, 298}
    reading, relay = through(reflector, up, down)
    assert sorted(relay.dropped["up"]) == sorted(up)
    assert sorted(relay.dropped["down"]) == sorted(down)
    assert reading.sent == 300 and reading.received == 290
    assert reading.reflected == 295 and reading.lost_up == 5 and reading.lost_down == 5
    assert reading.loss_up_pct == pytest.approx(100 * 5 / 300)
    assert reading.loss_down_pct == pytest.approx(100 * 5 / 295)
    assert reading.loss_pct == pytest.approx(100 * 10 / 300)
    # every lost packet was placed by a window or the final count answer, none guessed
    assert reading.direction_filled == 0
    # three in a row lost on the way out: a bursty forward pattern; single losses back
    assert reading.burst_ratio_up > reading.burst_ratio_down >= 1.0


def test_a_lost_last_packet_is_no_100_percent_burst(reflector) -> None:
    reading, _ = through(reflector, {299}, set())
    assert reading.loss_up_pct == pytest.approx(100 / 300) and reading.loss_down_pct == 0
    # the last full 200 ms window holds 10 packets: one lost of them
    assert reading.burst_loss_up_pct <= 20.0
    assert reading.burst_loss_pct <= 20.0


def test_a_long_outage_back_is_placed_from_the_count(reflector) -> None:
    """81 replies in a row lost: the first 18 are older than any later window (the window of
    reply 181 holds 181 and the 63 below it, down to 118), so they are placed from the
    reflector's final count, and counted as placed so."""
    down = set(range(100, 181))
    reading, relay = through(reflector, set(), down)
    assert len(relay.dropped["down"]) == 81
    assert reading.reflected == 300 and reading.lost_up == 0 and reading.lost_down == 81
    assert reading.direction_filled == 118 - 100
    assert reading.burst_loss_down_pct == 100.0 and reading.burst_loss_up_pct == 0.0


def test_without_a_final_count_an_unplaceable_tail_leaves_directions_unknown(reflector) -> None:
    """The last three replies and every count query are lost: nothing says whether packets
    297-299 reached the reflector, so the reading gives round-trip loss only."""
    reading, relay = through(reflector, set(), {297, 298, 299}, drop_queries=True)
    assert len(relay.dropped["query"]) == 3
    assert reading.received == 297 and reading.loss_pct == pytest.approx(1.0)
    assert reading.reflected is None and not reading.per_direction
