"""Latency under load on the link emulator: ten ``agent-kit check --only bandwidth`` runs per line
against the emulator's queue-delay truth.

Lab (root, network namespaces): one emulated link (``tests/lab/emulator.py``), the center's
speedtest endpoint and UDP reflector served in the center namespace
(``tests/lab/bandwidth_center.py``), the check run at home as an agent runs it. Per line of
``tests.lab.bufferbloat_lab.LINES`` and per run: the reported increase (loaded minus idle RTT,
at the same percentile) and grade, and the truth of the same run from the emulator's record
(``queue_delay_truth``: how long the probe's own packets waited in the emulator beyond the
line's delay, in its queues and for its scheduler, while the line was loaded). A row passes when the reading is within 20 % or 5 ms of the truth.

Run: ``python bench/loaded_latency_matrix.py [RUNS]`` (default 10; about 15 s per run); note
``uptime``'s load average beside the figures.
"""

from __future__ import annotations

import os
import sys
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.lab.bandwidth_center import serve_bandwidth_center  # noqa: E402
from tests.lab.bufferbloat_lab import (  # noqa: E402
    LINES,
    BloatTruth,
    queue_delay_truth,
    run_bandwidth_check,
    wait_until_quiet,
)
from tests.lab.emulator import emulated_link  # noqa: E402


def _within(reading: float, truth: float) -> bool:
    return abs(reading - truth) <= max(5.0, 0.2 * truth)


def _legs(bloat: dict[str, Any], truth: BloatTruth) -> str:
    """Each leg's reading (loaded - idle) and truth, for the table."""
    details = bloat.get("details", {})
    idle = details.get("idle_rtt_ms")
    out = []
    for key, leg in (("loaded_rtt_down_ms", truth.download), ("loaded_rtt_up_ms", truth.upload)):
        loaded = details.get(key)
        reading = "-" if loaded is None or idle is None else f"{loaded - idle:.1f}"
        true = "-" if leg.increase_ms is None else f"{leg.increase_ms - (truth.idle_ms or 0):.1f}"
        out.append(f"{reading}/{true}")
    return ", ".join(out)


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    print(f"load average at start: {os.getloadavg()}")
    with emulated_link() as link, serve_bandwidth_center(link) as url:
        for line in LINES:
            down, up = line.specs()
            link.emulator.set(down=down, up=up)
            print(f"\n{line.name}: {line.down_mbit}/{line.up_mbit} Mbit/s")
            print(f"{'run':>3} {'reading ms':>10} {'grade':>5} {'truth ms':>9} "
                  f"{'dir':>8} {'down Mbit/s':>11} {'up Mbit/s':>9} ok  "
                  "legs: reading/truth ms down, up")
            grades: Counter[str] = Counter()
            ok = 0
            for run in range(1, runs + 1):
                wait_until_quiet(link)
                link.emulator.clear_record()
                checks = run_bandwidth_check(link, url)
                truth = queue_delay_truth(link.emulator.record(), checks)
                bloat = checks["bandwidth.bufferbloat"]
                value = bloat.get("value")
                grade = bloat.get("details", {}).get("grade", "-")
                grades[grade] += 1
                good = (value is not None and truth.increase_ms is not None
                        and _within(float(value), truth.increase_ms))
                ok += good
                truth_txt = "-" if truth.increase_ms is None else f"{truth.increase_ms:.1f}"
                print(f"{run:>3} {value if value is not None else '-':>10} {grade:>5} "
                      f"{truth_txt:>9} {bloat.get('details', {}).get('worst_direction', '-'):>8} "
                      f"{checks['bandwidth.down'].get('value')!s:>11} "
                      f"{checks['bandwidth.up'].get('value')!s:>9} {'yes' if good else 'NO ':3} "
                      f"{_legs(bloat, truth)}", flush=True)
            top, count = grades.most_common(1)[0]
            print(f"  grades {dict(grades)} (most common {top}: {count}/{runs}); "
                  f"within 20 % or 5 ms of the truth: {ok}/{runs}")
    print(f"\nload average at end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
