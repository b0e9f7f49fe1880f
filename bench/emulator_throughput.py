"""What the lab's link emulator (``tests/lab/emulator.py``) sustains on this machine, and its CPU.

Lab (root, network namespaces): one emulated link, ``iperf3 -s`` in the center namespace,
``iperf3 -c`` at home for 4 s per row: TCP with one and four streams, each direction, and UDP;
first on a link with no rate limit (what the emulator can forward at most), then with the rate
set to 300 Mbit/s and 100 Mbit/s (does the token bucket hold the set rate). The emulator's CPU is
its own process time (user + system) over the row's wall time: 1.0 is one core.

Run: ``python bench/emulator_throughput.py`` (about 1 minute); note ``uptime``'s load average
beside the figures, the machine's other work takes cores from the emulator and iperf3 alike.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.lab.emulator import EmulatedLink, LineSpec, emulated_link  # noqa: E402

PORT = 5298
ROWS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("TCP 1 stream up", ()), ("TCP 4 streams up", ("-P", "4")),
    ("TCP 1 stream down", ("-R",)), ("TCP 4 streams down", ("-R", "-P", "4")),
    ("UDP 1 stream up (-b 1G -l 1400)", ("-u", "-b", "1G", "-l", "1400")),
    ("UDP 4 streams up (-b 250M each)", ("-u", "-b", "250M", "-l", "1400", "-P", "4")),
)


def _row(link: EmulatedLink, args: tuple[str, ...]) -> tuple[float, float, float | None]:
    """Goodput in Mbit/s, emulator CPU (cores), UDP loss % (None for TCP)."""
    t0, cpu0 = time.monotonic(), link.emulator.stats()["cpu_s"]
    out = link.run(link.home, "iperf3", "-c", link.center_addr, "-p", str(PORT), "-J",
                   "-t", "4", *args, timeout=60).stdout
    wall, cpu = time.monotonic() - t0, link.emulator.stats()["cpu_s"] - cpu0
    end = json.loads(out)["end"]
    summary = end.get("sum_received") or end["sum"]
    if "-u" in args:
        # the UDP receiver's view: what arrived
        summary = end["sum"]
        return (summary["bits_per_second"] * (1 - summary["lost_percent"] / 100) / 1e6,
                cpu / wall, summary["lost_percent"])
    return summary["bits_per_second"] / 1e6, cpu / wall, None


def main() -> None:
    print(f"load average: {os.getloadavg()}")
    with emulated_link() as link:
        server = link.popen(link.center, ["iperf3", "-s", "-B", link.center_addr, "-p",
                                          str(PORT)], stdout=subprocess.DEVNULL)
        try:
            time.sleep(0.5)
            for rate in (0.0, 300.0, 100.0):
                line = LineSpec(rate_mbit=rate, queue_ms=20 if rate else None,
                                queue_packets=None if rate else 1000, burst_bytes=15000)
                link.emulator.set(down=line, up=line)
                print(f"\nrate limit: {rate or 'none'} Mbit/s")
                print(f"{'row':36} {'Mbit/s':>8} {'emu CPU':>8} {'UDP loss':>9}")
                for name, args in ROWS:
                    link.emulator.clear_record()
                    mbit, cpu, loss = _row(link, args)
                    loss_txt = "" if loss is None else f"{loss:8.1f}%"
                    print(f"{name:36} {mbit:8.1f} {cpu:8.2f} {loss_txt:>9}", flush=True)
        finally:
            server.terminate()
            server.wait(timeout=10)
    print(f"load average: {os.getloadavg()}")


if __name__ == "__main__":
    main()
