"""What the lab link emulator's record says a line delivered to a bandwidth check: the ground
truth of tests/test_bandwidth_lines_lab.py and bench/line_matrix.py, one definition for both.

Per direction: the TCP payload of the bandwidth endpoint's connections plus the latency probe's
UDP packets (counted at TCP's payload share of an IP byte, since they share the line), over the
middle half of that direction's load. The load's span is the bins it filled (each
``BIN_S`` long and holding at least ``BIN_PACKETS`` full-size packets at the line's rate;
filled: a quarter of the fullest), so stray packets before and after the phase (a previous
run's closed sockets still sending what their buffers held) move no boundary; its middle half is
past slow start and before the streams are ended. (The median of 0.5 s bins read 3.51 for a
3.86 Mbit/s uplink once: with a 1.7 s load, the slow-start bin was one of three.)

The rate the emulator enforces counts IP bytes; with MTU 1500 TCP's ceiling is rate * 1448 /
1500 (52 bytes of IPv4, TCP and timestamp headers per segment). Nothing from the product is
imported here: this is the reference.
"""

from __future__ import annotations

import math

import numpy as np

from tests.lab.emulator import Record

TCP_HEADERS = 52                     # IPv4 20 + TCP 20 + timestamps 12
TCP_PAYLOAD_PER_IP_BYTE = 1448 / 1500
BIN_S = 0.5
BIN_PACKETS = 40
MIN_LOAD_PACKETS = 50


def delivered_mbit_s(rec: Record, rates: dict[str, float], http_port: int,
                     udp_port: int) -> dict[str, float]:
    """Mbit/s delivered per direction (``"down"``, ``"up"``; ``rates`` in Mbit/s, the line's),
    NaN for a direction whose load was too small or too short to judge (under
    ``MIN_LOAD_PACKETS`` full-size packets, or spanning less than three bins)."""
    out: dict[str, float] = {}
    for name, port_of_center in (("down", rec.sport), ("up", rec.dport)):
        ok = rec.select(name) & (rec.dropped == 0) & ~np.isnan(rec.departure)
        payload = np.maximum(rec.size.astype(float) - TCP_HEADERS, 0.0)
        data = ok & (rec.proto == 6) & (port_of_center == http_port) & (payload > 0)
        probe = ok & (rec.proto == 17) & (port_of_center == udp_port)
        times = rec.departure[data & (payload > 1000)]
        bin_s = max(BIN_S, BIN_PACKETS * 1500 * 8 / (rates[name] * 1e6))
        if len(times) < MIN_LOAD_PACKETS or times.max() - times.min() < 3 * bin_s:
            out[name] = math.nan
            continue
        edges = np.arange(float(times.min()), float(times.max()) + bin_s, bin_s)
        counts = np.histogram(times, edges)[0]
        filled = np.flatnonzero(counts >= 0.25 * counts.max())
        start, stop = edges[filled[0]], edges[filled[-1] + 1]
        inside = times[(times >= start) & (times <= stop)]
        lo, hi = (float(v) for v in np.quantile(inside, [0.25, 0.75]))
        span = (rec.departure >= lo) & (rec.departure < hi)
        carried = (payload[data & span].sum()
                   + rec.size[probe & span].astype(float).sum() * TCP_PAYLOAD_PER_IP_BYTE)
        out[name] = float(carried) * 8 / max(1e-9, hi - lo) / 1e6
    return out
