"""Lab part: latency under load on the link emulator, and its truth from the emulator's record.

``run_bandwidth_check`` runs ``agent-kit check --only bandwidth`` at home against the center's
endpoint and reflector (``tests/lab/bandwidth_center.py``) over an ``EmulatedLink``;
``queue_delay_truth`` reads, from the emulator's record of the same run, how long the path
probe's own packets waited in the emulator's queues while each direction was loaded: the RTT
increase a perfect probe would report. Nothing here imports from ``probes/`` or ``agent_kit/``.

The truth of one loaded leg, at the percentile the product reports (``PERCENTILE``): the leg
runs from its first to its last full-size TCP packet in the loaded direction, its first
``warmup_s`` (the product's own, from the check's details) left out as the product leaves it
out (the download leg ends where the upload's load starts); over the probe's requests (home
-> reflector) and replies (reflector -> home) in that window, the percentile of each one's
wait, added (a request's and its reply's waits add up to the round trip's increase; the
queue of the unloaded direction holds only ACKs, so its term is small). A packet's wait is
what it spent in the emulator beyond the line's one-way delay: its queue delay plus however
late the emulator actually sent it (departure minus the scheduled time; about 0.1 ms when the
emulator runs at real-time priority, more on a machine that delays it: the probe had that
wait too). Idle, the queues are empty: the truth's idle term is the same percentile of the idle
probe's waits, about 0.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from tests.lab.emulator import NOT_DROPPED, EmulatedLink, LineSpec, Record
from tests.lab.netns import CENTER_UDP_PORT as UDP_PORT

PERCENTILE = 90
TCP, UDP = 6, 17
FULL_SIZE = 1000      # bytes: a load packet, not an ACK


@dataclass(frozen=True)
class BloatLine:
    """A line of the latency-under-load matrix: down/up rate, one-way delay, queue depth."""

    name: str
    down_mbit: float
    up_mbit: float
    delay_ms: float
    queue_ms: float

    def specs(self) -> tuple[LineSpec, LineSpec]:
        """The emulator's lines (down, up): the delay split evenly, tail drop at the queue."""
        half = self.delay_ms / 2
        return (LineSpec(rate_mbit=self.down_mbit, delay_ms=half, queue_ms=self.queue_ms,
                         queue_packets=None, burst_bytes=3028),
                LineSpec(rate_mbit=self.up_mbit, delay_ms=half, queue_ms=self.queue_ms,
                         queue_packets=None, burst_bytes=3028))


# The slow lines with a 100 ms and a 200 ms queue, and a fast line with a small queue.
LINES = (
    BloatLine("2/0.5 @ 40 ms, 100 ms queue", 2, 0.5, 40, 100),
    BloatLine("2/0.5 @ 40 ms, 200 ms queue", 2, 0.5, 40, 200),
    BloatLine("4/1.5 @ 30 ms, 100 ms queue", 4, 1.5, 30, 100),
    BloatLine("4/1.5 @ 30 ms, 200 ms queue", 4, 1.5, 30, 200),
    BloatLine("50/10 @ 15 ms, 20 ms queue", 50, 10, 15, 20),
)


def wait_until_quiet(link: EmulatedLink, quiet_s: float = 1.0, limit_s: float = 20.0) -> None:
    """Wait until no packet has crossed the emulator for ``quiet_s``: a finished check's
    closed upload sockets still send what they had queued, for seconds on a slow line, and
    would load the next run's idle and download phases."""
    deadline = time.monotonic() + limit_s
    last = link.emulator.stats()["packets"]
    quiet_since = time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.2)
        now = link.emulator.stats()["packets"]
        if now != last:
            last, quiet_since = now, time.monotonic()
        elif time.monotonic() - quiet_since >= quiet_s:
            return


def run_bandwidth_check(link: EmulatedLink, url: str, *extra: str,
                        timeout: float = 90) -> dict[str, Any]:
    """``agent-kit check --only bandwidth`` at home; the checks by id."""
    proc = link.run(link.home, sys.executable, "-m", "agent_kit.face.cli", "check", "--only",
                    "bandwidth", "--center", url, "--json", "--lang", "en", *extra,
                    check=False, timeout=timeout)
    assert proc.returncode in (0, 1), proc.stderr
    return {c["id"]: c for c in json.loads(proc.stdout)["checks"]}


@dataclass(frozen=True)
class LegTruth:
    """What the emulator's queues added to the probe's round trips during one loaded leg."""

    increase_ms: float | None    # request + reply queue delay, at PERCENTILE
    up_ms: float | None
    down_ms: float | None
    probes: int                  # probe requests in the window


@dataclass(frozen=True)
class BloatTruth:
    download: LegTruth
    upload: LegTruth
    idle_ms: float | None

    @property
    def increase_ms(self) -> float | None:
        """The worse leg's increase over idle, as the product reports it."""
        legs = [leg.increase_ms for leg in (self.download, self.upload)
                if leg.increase_ms is not None]
        if not legs:
            return None
        return max(0.0, max(legs) - (self.idle_ms or 0.0))


def wait_ms(record: Record) -> Any:
    """Each packet's time in the emulator beyond the line's one-way delay (ms): the queue
    delay it found plus how late it actually left (NaN for a dropped or unsent packet)."""
    late = (record.departure - record.arrival) * 1000 - record.delay_ms
    return record.queue_delay_ms + late


def _pct(values: Any) -> float | None:
    return float(np.percentile(values, PERCENTILE)) if len(values) else None


def _load_start(record: Record, loaded: str, after: float | None = None) -> float | None:
    """When the load of direction ``loaded`` began (its first full-size TCP segment), counting
    only from ``after`` on: a full-size segment before it (a previous run's upload still
    draining) is not this run's load."""
    load = record.select(loaded, proto=TCP) & (record.size >= FULL_SIZE)
    if after is not None:
        load &= record.arrival > after
    return float(record.arrival[load].min()) if load.any() else None


def _leg(record: Record, waits: Any, loaded: str, warmup_s: float,
         until: float | None, not_before: float | None = None) -> LegTruth:
    load = record.select(loaded, proto=TCP) & (record.size >= FULL_SIZE)
    if until is not None:
        load &= record.arrival < until
    if not load.any():
        return LegTruth(None, None, None, 0)
    start, end = record.arrival[load].min() + warmup_s, record.arrival[load].max()
    if not_before is not None:
        start = max(start, not_before)
    delivered = (record.dropped == NOT_DROPPED) & ~np.isnan(record.departure)
    window = (record.arrival >= start) & (record.arrival <= end) & delivered
    requests = record.select("up", proto=UDP, dport=UDP_PORT) & window
    replies = record.select("down", proto=UDP, sport=UDP_PORT) & window
    up, down = _pct(waits[requests]), _pct(waits[replies])
    increase = None if up is None or down is None else up + down
    return LegTruth(increase, up, down, int(requests.sum()))


def queue_delay_truth(record: Record, checks: dict[str, Any]) -> BloatTruth:
    """The latency-under-load truth of one check run (see the module doc)."""
    down_warm = float(checks["bandwidth.down"]["details"].get("warmup_s", 0.0))
    up_warm = float(checks["bandwidth.up"]["details"].get("warmup_s", 0.0))
    # the download leg ends where the upload's load begins (the download's last packets may
    # still drain from its queue then)
    waits = wait_ms(record)
    download = _leg(record, waits, "down", down_warm,
                    _load_start(record, "up", after=_load_start(record, "down")))
    # and the upload leg starts where the download's last full-size segment crossed (a
    # download still draining its streams would load the replies' queue in the upload leg)
    down_load = record.select("down", proto=TCP) & (record.size >= FULL_SIZE)
    up_start = _load_start(record, "up", after=_load_start(record, "down"))
    if up_start is not None:
        down_load &= record.arrival < up_start + 5.0
    last_down = float(record.arrival[down_load].max()) if down_load.any() else None
    upload = _leg(record, waits, "up", up_warm, None, not_before=last_down)
    first_load = record.select("down", proto=TCP) & (record.size >= FULL_SIZE)
    idle_ms = None
    if first_load.any():
        before = (record.arrival < record.arrival[first_load].min()) & ~np.isnan(waits)
        idle_up = record.select("up", proto=UDP, dport=UDP_PORT) & before
        idle_down = record.select("down", proto=UDP, sport=UDP_PORT) & before
        up, down = _pct(waits[idle_up]), _pct(waits[idle_down])
        if up is not None and down is not None:
            idle_ms = up + down
    return BloatTruth(download, upload, idle_ms)
