"""What the traceroute (network.hops) costs: wall time, CPU, and the kernel filter's effect.

Builds the routed lab chain (``tests/lab/chain.py``: home -> router -> isp -> center, a real
reflector in the center) and runs ``probes.network.traceroute.measure_hops`` from home a few times:
on a quiet path, then with a UDP flood from the ISP namespace to home (iperf3 -u, not from the
reflector's host) with and without the BPF filter that keeps only ICMP and the reflector's UDP
from scapy's receive socket. Prints wall time, CPU seconds of the probe process, and the hops.
Needs root, iperf3 and nftables (the test dependencies).

    python bench/traceroute_cost.py [--runs 3] [--flood-mbit 200]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.lab.chain import CENTER_ADDR, HOME_ADDR, chain  # noqa: E402
from tests.lab.reflector import standalone_reflector  # noqa: E402

PORT = 8751
PROBE = """
import json, resource, sys, time
t0 = time.perf_counter()
import probes.network.traceroute as tr
from scapy.config import conf
from scapy.layers.inet import IP, UDP
from scapy.layers.inet6 import IPv6
from scapy.supersocket import L3RawSocket
imported = time.perf_counter() - t0
if sys.argv[2] == "off":
    tr._attach_answer_filter = lambda *a: None
def cpu():
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime
c0, t0 = cpu(), time.perf_counter()
r = tr.measure_hops(sys.argv[1], 8751)
print(json.dumps({"import_s": imported, "wall_s": time.perf_counter() - t0,
                  "cpu_s": cpu() - c0, "hops": [(h.address, h.received, h.sent) for h in r.hops]}))
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--flood-mbit", type=float, default=200.0)
    args = parser.parse_args()
    print(f"machine: {platform.node()} {platform.machine()}, {platform.system()} "
          f"{platform.release()}, python {platform.python_version()}, "
          f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    with chain() as c, standalone_reflector(c.exec_args("center"), CENTER_ADDR, PORT):
        server = None
        try:
            for label, flood, filt in (("quiet path", False, "on"),
                                       ("flood, filter on", True, "on"),
                                       ("flood, filter off", True, "off")):
                if flood and server is None:
                    server = c.popen("home", ["iperf3", "-s", "-B", HOME_ADDR, "-1"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                    time.sleep(0.5)
                    client = c.popen("isp", ["iperf3", "-u", "-c", HOME_ADDR, "-b",
                                             f"{args.flood_mbit}M", "-l", "200",
                                             "-t", str(8 * 3 * args.runs)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                    time.sleep(1.0)
                runs = [_run(c, CENTER_ADDR, filt) for _ in range(args.runs)]
                walls = [r["wall_s"] for r in runs]
                cpus = [r["cpu_s"] for r in runs]
                imports = [r["import_s"] for r in runs]
                print(f"{label:18s} wall median {statistics.median(walls):.2f} s "
                      f"(max {max(walls):.2f}), CPU of the trace median "
                      f"{statistics.median(cpus):.3f} s, scapy import median "
                      f"{statistics.median(imports):.2f} s; last run's hops (address, "
                      f"answered, sent): {runs[-1]['hops']}")
            if server is not None:
                client.terminate()
                client.wait(10)
        finally:
            if server is not None and server.poll() is None:
                server.terminate()
                server.wait(10)
    return 0


def _run(c: object, target: str, filt: str) -> dict[str, object]:
    out = subprocess.run(c.python("home", "-c", PROBE, target, filt),  # type: ignore[attr-defined]
                         capture_output=True, text=True, cwd=ROOT, timeout=60)
    if out.returncode != 0:
        raise SystemExit(out.stderr)
    return json.loads(out.stdout)  # type: ignore[no-any-return]


if __name__ == "__main__":
    sys.exit(main())
