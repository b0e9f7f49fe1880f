"""What ``audio.room_sounds`` needs to hear voices, and what its analysis costs.

1. Detection: babble (four espeak-ng voices, tests/lab/room_signals.py) and a single far talker,
   at levels from -40 to -70 dBFS, over a quiet room (-70 dBFS pink) or a fan-like hiss
   (-50 dBFS pink), cut into windows of 1, 1.5, 2 and 3 s at 20 offsets each through the loop:
   the share of windows called voices (the probe's own decision, before any policy level),
   and the median voices level read. The guided quiet phase is 3 s (the policy's quiet_s);
   the monitor's unprompted capture about 4.3 s.
2. Cost: ``probes.audio.room_sounds.analyze_room`` on a 3 s and a 4.5 s window, median of
   repeated runs, as a multiple of real time.

Offline (no sound server: the pipe source passes samples unchanged, tests/test_room_sounds_lab.py
covers the real capture). Usage: python bench/room_sounds.py [--offsets N] [--repeat N]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from probes.audio.room_sounds import analyze_room  # noqa: E402
from tests.lab.room_signals import LOOP_S, RATE, RoomSignals  # noqa: E402

LEVELS = (-40, -45, -50, -55, -60, -65, -70)
WINDOWS_S = (1.0, 1.5, 2.0, 3.0)


def detection(sig: RoomSignals, offsets: int) -> None:
    voice_sources = {"babble": sig.babble - sig.floor, "talker": sig.talker - sig.floor}
    backgrounds = {"quiet room (-70 dBFS)": sig.floor,
                   "fan hiss (-50 dBFS pink)": sig.hiss}
    for bg_name, bg in backgrounds.items():
        for src_name, src in voice_sources.items():
            src_db = 10 * np.log10(np.mean(src * src))
            print(f"\n{src_name} over a {bg_name}: share of windows called voices "
                  f"(median voices level read, dBFS)")
            print("level dBFS | " + " | ".join(f"{w:g} s" for w in WINDOWS_S))
            for level in LEVELS:
                x = src * 10 ** ((level - src_db) / 20) + bg
                cells = []
                for w in WINDOWS_S:
                    n = int(w * RATE)
                    hits, read = 0, []
                    for k in range(offsets):
                        start = int(k * (LOOP_S - w) / offsets * RATE)
                        room = analyze_room(x[start:start + n], RATE)
                        if room is not None and room.voices:
                            hits += 1
                            if room.voices_dbfs is not None:
                                read.append(room.voices_dbfs)
                    med = f" ({statistics.median(read):.1f})" if read else ""
                    cells.append(f"{hits}/{offsets}{med}")
                print(f"{level:>10} | " + " | ".join(cells))


def cost(sig: RoomSignals, repeat: int) -> None:
    print("\ncost of analyze_room (median of", repeat, "runs):")
    for seconds in (3.0, 4.5):
        x = sig.babble[: int(seconds * RATE)] + sig.fan[: int(seconds * RATE)]
        analyze_room(x, RATE)
        times = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            analyze_room(x, RATE)
            times.append(time.perf_counter() - t0)
        med = statistics.median(times)
        print(f"  {seconds:g} s window: {med * 1000:.2f} ms, {seconds / med:.0f}x real time")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--offsets", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()
    print(f"python {platform.python_version()}, numpy {np.__version__}, {platform.machine()}")
    with tempfile.TemporaryDirectory() as d:
        sig = RoomSignals(Path(d))
    detection(sig, args.offsets)
    cost(sig, args.repeat)


if __name__ == "__main__":
    main()
