"""Our path probe vs ``iperf3 -u`` vs the relay's ground truth, on the same impaired path.

Lab (root, network namespaces; see tests/lab/): in the center namespace the reflector
(127.0.0.1:8751), ``iperf3 -s`` (127.0.0.1:5201) and, per setting, TWO impairment relays
(``tests/lab/relay.py``) on 192.0.2.2 with the same spec and the same seed: one forwards to the
reflector, the other to iperf3 (its UDP impaired, its TCP control connection passed through
unimpaired). At home, AT THE SAME TIME, our probe (``probes.network.path.measure_path``, 6 s, 172-byte
packets every 20 ms) to the first relay and ``iperf3 -c 192.0.2.2 -u -b 68800 -l 172 -t 6``
(the same packet size and rate) to the second. The same seed gives packet i of each flow the
same loss and delay draw (iperf3's flow is one datagram longer: its UDP handshake). Only the
upstream direction (home -> center) is impaired, because iperf3 measures that direction only
(its server computes jitter and loss) and its UDP handshake must not be lost on the way back.

Each tool is compared with the truth of its own packets, from its relay's record (the relay's
own code, independent of the product): RFC 3550 jitter (J at the end of the stream, what
iperf3 reports and what our check judges; and the steady mean |D| our details add) of the hold
times the relay applied, and the packets it dropped.

Run: ``python bench/path_vs_iperf3.py`` (about 1 minute).
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.lab.netns import CENTER_ADDR, netns_pair  # noqa: E402
from tests.lab.reflector import standalone_reflector  # noqa: E402
from tests.lab.relay import Impairment, Spec, truth  # noqa: E402

DURATION_S = 6
SETTINGS = {
    "clean": Impairment(),
    "uniform 0-24 ms": Impairment(delay_ms=10, jitter_ms=24),
    "exponential mean 15 ms": Impairment(delay_ms=5, jitter_ms=15, distribution="exponential"),
    "uniform 0-110 ms": Impairment(delay_ms=10, jitter_ms=110),
    "2 % loss": Impairment(delay_ms=5, loss_pct=2.0),
    "5 % loss + uniform 0-18 ms": Impairment(delay_ms=5, jitter_ms=18, loss_pct=5.0),
}

PROBE = """
import json, sys
from dataclasses import asdict
from probes.network.path import measure_path
r = measure_path(sys.argv[1], int(sys.argv[2]), duration_s=float(sys.argv[3]))
d = asdict(r); d.pop("rtt_ms_samples"); print(json.dumps(d))
"""


def _relay(pair, imp: Impairment, seed: int, port: int, upstream: str, record: Path,
           tcp: str | None = None) -> subprocess.Popen[str]:
    args = [sys.executable, "-m", "tests.lab.relay", "--listen", f"{CENTER_ADDR}:{port}",
            "--upstream", upstream, "--spec", Spec(up=imp, seed=seed).to_json(),
            "--record", str(record)]
    if tcp:
        args += ["--tcp-upstream", tcp]
    proc = pair.popen(pair.center, args, stdout=subprocess.PIPE, cwd=ROOT)
    line = proc.stdout.readline()
    if "relay ready" not in line:
        raise SystemExit(f"relay did not start: {line!r}")
    return proc


def _stop(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGTERM)
    proc.wait(20)
    proc.stdout.close()


def run_setting(pair, imp: Impairment, seed: int, port: int, tmp: Path) -> dict:
    """Both tools at once, each through its own relay with the same spec and seed."""
    ours_rec, iperf_rec = tmp / f"ours{port}.json", tmp / f"iperf{port}.json"
    ours_relay = _relay(pair, imp, seed, port, "127.0.0.1:8751", ours_rec)
    iperf_relay = _relay(pair, imp, seed, port + 1, "127.0.0.1:5201", iperf_rec,
                         tcp="127.0.0.1:5201")
    try:
        ours = pair.popen(pair.home, [sys.executable, "-c", PROBE, CENTER_ADDR, str(port),
                                      str(DURATION_S)], stdout=subprocess.PIPE, cwd=ROOT)
        iperf = pair.popen(pair.home, ["iperf3", "-c", CENTER_ADDR, "-p", str(port + 1), "-u",
                                       "-b", "68800", "-l", "172", "-t", str(DURATION_S),
                                       "--json"], stdout=subprocess.PIPE)
        ours_out, _ = ours.communicate(timeout=60)
        iperf_out, _ = iperf.communicate(timeout=60)
    finally:
        _stop(ours_relay)
        _stop(iperf_relay)
    reading = json.loads(ours_out)
    ip = json.loads(iperf_out)
    if "error" in ip:
        raise SystemExit(f"iperf3: {ip['error']}")
    summ = ip["end"]["sum"]
    t_ours = truth(json.loads(ours_rec.read_text())["records"])
    t_iperf = truth(json.loads(iperf_rec.read_text())["records"])
    return {
        "ours_jitter_mean": reading["jitter_up_steady_ms"],
        "ours_jitter_final": reading["jitter_up_ms"],
        "ours_loss": reading["loss_pct"], "ours_sent": reading["sent"],
        "truth_ours_jitter_mean": t_ours["up"]["jitter_mean_abs_d_ms"],
        "truth_ours_jitter_final": t_ours["up"]["jitter_rfc3550_ms"],
        "truth_ours_loss": t_ours["path"]["loss_pct"],
        "iperf_jitter": summ["jitter_ms"], "iperf_loss": summ["lost_percent"],
        "iperf_packets": summ["packets"],
        "truth_iperf_jitter_mean": t_iperf["up"]["jitter_mean_abs_d_ms"],
        "truth_iperf_jitter_final": t_iperf["up"]["jitter_rfc3550_ms"],
        "truth_iperf_loss": t_iperf["up"]["loss_pct"],
        "truth_iperf_packets": t_iperf["up"]["packets"],
        "expected_jitter": imp.expected_jitter_ms(),
    }


def main() -> int:
    print(f"path probe vs iperf3 -u vs relay truth; {DURATION_S} s per tool at the same time, "
          "50 packets/s, 172 bytes; upstream impaired")
    rows = []
    with netns_pair() as pair, tempfile.TemporaryDirectory() as tmpdir, \
            standalone_reflector(pair.exec_args(pair.center), "127.0.0.1", 8751):
        server = pair.popen(pair.center, ["iperf3", "-s", "-B", "127.0.0.1", "-p", "5201"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            time.sleep(0.5)
            for i, (name, imp) in enumerate(SETTINGS.items()):
                rows.append((name, run_setting(pair, imp, 100 + i, 9200 + 2 * i,
                                               Path(tmpdir))))
        finally:
            server.terminate()
            server.wait(10)
    head = ("| setting | jitter truth (ours, mean abs D / final J) | ours mean abs D / final J "
            "| jitter truth (iperf3's packets, final J) | iperf3 | loss truth ours | ours "
            "| loss truth iperf3 | iperf3 |")
    print(head)
    print("|" + "---|" * 9)
    for name, r in rows:
        print(f"| {name} | {r['truth_ours_jitter_mean']:.2f} / {r['truth_ours_jitter_final']:.2f}"
              f" | {r['ours_jitter_mean']:.2f} / {r['ours_jitter_final']:.2f}"
              f" | {r['truth_iperf_jitter_final']:.2f} | {r['iperf_jitter']:.2f}"
              f" | {r['truth_ours_loss']:.2f} % | {r['ours_loss']:.2f} %"
              f" | {r['truth_iperf_loss']:.2f} % | {r['iperf_loss']:.2f} % |")
    print("jitter in ms (RFC 3550); truth = the relay's record of the hold times it applied "
          "and the packets it dropped, per tool's own packets")
    print(json.dumps({name: r for name, r in rows}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
