"""Bandwidth: our probe vs stock speedtest-cli vs iperf3, on the same tbf-limited links.

Builds the namespace lab (tests/lab/netns.py), serves the center's speedtest endpoint and UDP
reflector in the center namespace (tests/lab/bandwidth_center.py) plus ``iperf3 -s``, and for
each link rate (tbf on both veth ends) runs from the home namespace:

- ours: ``probes.bandwidth.measure.measure_bandwidth`` (4 streams, warm-up excluded, adaptive, <= 8 s),
  latency under load included;
- stock speedtest-cli 2.1.3: its own ``download()``/``upload()`` against the same endpoint, with
  speedtest.net's usual configuration supplied (it cannot fetch it offline);
- iperf3 TCP, 4 streams, 5 s each way (``-R`` for download), receiver figure.

Prints a table: Mbit/s down/up and wall time of each, with the tbf rate as ground truth.
Usage (root): ``python bench/bandwidth_compare.py [RATE_MBIT ...]`` (default 20 100 500, and
"0" for the bare veth without tbf).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.lab.bandwidth_center import UDP_PORT, serve_bandwidth_center  # noqa: E402
from tests.lab.netns import NetnsPair, netns_pair  # noqa: E402

OURS = """
import json, sys
from probes.bandwidth.measure import measure_bandwidth
r = measure_bandwidth(sys.argv[1], reflector=(sys.argv[2], int(sys.argv[3])))
print(json.dumps({"down": r.download.mbit_s, "up": r.upload.mbit_s,
                  "bloat": r.latency_increase_ms}))
"""
STOCK = """
import json, sys
from probes.bandwidth.speedtest_compat import measure_stock
down, up = measure_stock(sys.argv[1])
print(json.dumps({"down": down, "up": up}))
"""


def _timed(pair: NetnsPair, *args: str) -> tuple[dict[str, float], float]:
    t0 = time.monotonic()
    proc = pair.run(pair.home, *args, timeout=120, check=False)
    wall = time.monotonic() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{args[:3]} failed: {proc.stderr[-800:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1]), wall


def _iperf(pair: NetnsPair, reverse: bool) -> tuple[float, float]:
    t0 = time.monotonic()
    proc = pair.run(pair.home, "iperf3", "-c", pair.center_addr, "-t", "5", "-P", "4", "-J",
                    *(["-R"] if reverse else []), timeout=60)
    wall = time.monotonic() - t0
    end = json.loads(proc.stdout)["end"]
    return end["sum_received"]["bits_per_second"] / 1e6, wall


def main(rates: list[float]) -> None:
    rows = []
    with netns_pair() as pair, serve_bandwidth_center(pair) as url:
        iperf = pair.popen(pair.center, ["iperf3", "-s", "-B", pair.center_addr],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            time.sleep(0.5)
            for rate in rates:
                if rate > 0:
                    pair.shape(pair.center, rate, burst_kbit=max(64, int(rate * 4)),
                               latency_ms=20)
                    pair.shape(pair.home, rate, burst_kbit=max(64, int(rate * 4)),
                               latency_ms=20)
                else:
                    pair.unshape(pair.center)
                    pair.unshape(pair.home)
                endpoint = f"{url}/speedtest/"
                ours, ours_s = _timed(pair, sys.executable, "-c", OURS, endpoint,
                                      pair.center_addr, str(UDP_PORT))
                stock, stock_s = _timed(pair, sys.executable, "-c", STOCK, endpoint)
                i_down, i_down_s = _iperf(pair, reverse=True)
                i_up, i_up_s = _iperf(pair, reverse=False)
                rows.append((rate, ours, ours_s, stock, stock_s, i_down, i_up,
                             i_down_s + i_up_s))
                print(f"  done {rate or 'veth'} Mbit/s", file=sys.stderr, flush=True)
        finally:
            iperf.terminate()
            iperf.wait(timeout=5)
    print("| tbf rate (Mbit/s) | ours down / up | ours wall | +latency under load | "
          "speedtest-cli down / up | speedtest-cli wall | iperf3 -P4 down / up | iperf3 wall |")
    print("|---|---|---|---|---|---|---|---|")
    for rate, ours, ours_s, stock, stock_s, i_down, i_up, i_s in rows:
        label = f"{rate:g}" if rate > 0 else "none (bare veth)"
        bloat = "n/a" if ours["bloat"] is None else f"{ours['bloat']:.1f} ms"
        print(f"| {label} | {ours['down']:.1f} / {ours['up']:.1f} | {ours_s:.1f} s | {bloat} | "
              f"{stock['down']:.1f} / {stock['up']:.1f} | {stock_s:.1f} s | "
              f"{i_down:.1f} / {i_up:.1f} | {i_s:.1f} s |")


if __name__ == "__main__":
    main([float(a) for a in sys.argv[1:]] or [20.0, 100.0, 500.0, 0.0])
