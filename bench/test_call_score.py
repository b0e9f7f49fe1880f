"""The scored test call on the lab link emulator: E-model beside ViSQOL, and the cost of a score.

Builds the link emulator (``tests/lab/emulator.py``) with the real test-call route and
reflector in the center namespace (``tests/lab/call_center.py``) and, per condition and codec,
runs the product's test-call unit at home (``tests/lab/call_client.py``) ``--runs`` times.
Conditions (both directions alike, 5 ms one way): clean, 1 %, 3 %, 8 % random loss, 20, 60
and 150 ms jitter (U(0, J) extra one-way delay, FIFO; 150 ms is beyond the 60 ms buffer). Prints, per condition and codec, the median
over the runs of the E-model MOS (G.107, what ``network.mos`` computes from the same stream)
and the ViSQOL MOS-LQO per direction, packets lost and late, and the center's CPU seconds for
one direction's score (its answer's ``cpu_s`` over two).

Then, in this process (no network), the CPU of one score alone: the clip through the codec
with 3 % of its packets concealed, scored by ViSQOL (``time.process_time``: numba's kernels
run in threads of their own), ``--cpu-repeats`` times, median and max; and the codec alone
(``reference_mos_lqo``). ``--cpu-only`` prints that part alone (no lab, no root).

Usage (root): ``python bench/test_call_score.py [--runs 3] [--codecs G.711,Opus]``. About 12 s
per run, condition and codec: 3 runs of the 6 conditions and 2 codecs about 7 minutes.
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

CONDITIONS = (("clean", 0.0, 0.0), ("loss 1 %", 1.0, 0.0), ("loss 3 %", 3.0, 0.0),
              ("loss 8 %", 8.0, 0.0), ("jitter 20 ms", 0.0, 20.0), ("jitter 60 ms", 0.0, 60.0),
              ("jitter 150 ms", 0.0, 150.0))


def _cpu_of_one_score(repeats: int) -> list[str]:
    import numpy as np

    from agent_kit.center.call_score import CallScorer

    scorer = CallScorer()
    lines = []
    rng = np.random.default_rng(3)
    for name, codec in scorer._codecs.items():   # noqa: SLF001 - the bench looks inside
        start = time.process_time()
        reference = scorer.reference_mos_lqo(name)
        first = time.process_time() - start
        cpu = []
        for _ in range(repeats):
            played = tuple(bool(rng.random() >= 0.03) for _ in range(scorer.packets))
            start = time.process_time()
            scorer.mos_lqo(codec.play(played), name)
            cpu.append(time.process_time() - start)
        lines.append(f"| {name} | {reference:.3f} | {first:.2f} | {statistics.median(cpu):.2f} "
                     f"| {max(cpu):.2f} |")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--codecs", default="G.711,Opus")
    parser.add_argument("--cpu-repeats", type=int, default=5)
    parser.add_argument("--cpu-only", action="store_true")
    args = parser.parse_args()
    if args.cpu_only:
        print("\n".join(_cpu_of_one_score(args.cpu_repeats)))
        return 0

    from tests.lab.call_center import serve_call_center
    from tests.lab.emulator import LineSpec, emulated_link

    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                            capture_output=True, text=True).stdout.strip()
    load = open("/proc/loadavg").read().split()[:3]   # noqa: SIM115
    print(f"# scored test call, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, commit "
          f"{commit}, {platform.processor() or platform.machine()}, load {' '.join(load)}")
    rows = []
    with emulated_link() as link, serve_call_center(link) as url:
        for label, loss, jitter in CONDITIONS:
            for codec in args.codecs.split(","):
                got: dict[str, list[float]] = {}
                for run in range(args.runs):
                    link.emulator.reset()
                    spec = {"delay_ms": 5, "loss_pct": loss, "jitter_ms": jitter}
                    link.emulator.set(down=LineSpec(**spec, seed=10 + run),
                                      up=LineSpec(**spec, seed=1010 + run))
                    proc = link.run(link.home, sys.executable, "-m", "tests.lab.call_client",
                                    url, codec, check=False, timeout=120)
                    if proc.returncode != 0:
                        print(proc.stderr, file=sys.stderr)
                        continue
                    result = json.loads(proc.stdout.strip().splitlines()[-1])
                    d = result.get("details") or {}
                    if result["status"] == "unknown":
                        print(f"{label} {codec}: unknown: {result['message']}", file=sys.stderr)
                        continue
                    for way in ("up", "down"):
                        for key in ("emodel_mos", "mos_lqo", "lost", "late"):
                            got.setdefault(f"{way}_{key}", []).append(d[way][key])
                    got.setdefault("reference", []).append(d["reference_mos_lqo"])
                    got.setdefault("cpu", []).append(d["center_cpu_s"] / 2)
                if not got:
                    continue
                m = {k: statistics.median(v) for k, v in got.items()}
                rows.append(
                    f"| {label} | {codec} | {m['up_emodel_mos']:.2f} / {m['down_emodel_mos']:.2f}"
                    f" | {m['up_mos_lqo']:.2f} / {m['down_mos_lqo']:.2f} | {m['reference']:.2f}"
                    f" | {m['up_lost']:.0f}+{m['up_late']:.0f} / {m['down_lost']:.0f}+"
                    f"{m['down_late']:.0f} | {m['cpu']:.2f} | {len(got['cpu'])} |")
                print(rows[-1], flush=True)
    print()
    print("| condition | codec | E-model MOS up / down | ViSQOL MOS-LQO up / down | codec alone "
          "| lost+late up / down | center CPU s per score | runs |")
    print("|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    print()
    print("| codec | codec alone (MOS-LQO) | first score CPU s (model warm-up) "
          "| one score CPU s, median | max |")
    print("|---|---|---|---|---|")
    print("\n".join(_cpu_of_one_score(args.cpu_repeats)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
