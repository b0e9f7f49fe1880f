"""How much faster than real time the echo analysis runs.

Builds the echo test's recording as the probe lays it out (0.25 s lead, the 0.5 s chirp at
-30 dBFS, 1.16 s of tail: 1.91 s at 48 kHz, 16-bit) with a 20 dB echo 60 ms late over -60 dBFS
noise, then times ``probes.audio.echo.analyze_echo`` on it. Prints the median of repeated runs
(CPU time of this process). Usage: python bench/echo_analysis.py [--repeat N]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from probes.audio.echo import (  # noqa: E402
    LEAD_S,
    MAX_DELAY_S,
    SAMPLE_RATE,
    TAIL_S,
    WINDOW_AFTER_S,
    analyze_echo,
    chirp,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()
    probe = chirp()
    lead = int(LEAD_S * SAMPLE_RATE)
    played = np.zeros(lead + probe.size + int((MAX_DELAY_S + WINDOW_AFTER_S + TAIL_S)
                                              * SAMPLE_RATE))
    played[lead:lead + probe.size] = probe
    delay = int(0.060 * SAMPLE_RATE)
    y = np.zeros(played.size)
    y[delay:] = 0.1 * played[:-delay]
    y += np.random.default_rng(1).normal(0, 1e-3, y.size)
    recorded = (np.clip(y, -1, 1 - 1 / 32768) * 32768).astype(np.int16)
    times = []
    for _ in range(args.repeat):
        t0 = time.process_time()
        reading = analyze_echo(played, recorded, SAMPLE_RATE, probe_start=lead,
                               probe_len=probe.size, max_lag=int(MAX_DELAY_S * SAMPLE_RATE))
        times.append(time.process_time() - t0)
    seconds = recorded.size / SAMPLE_RATE
    median = statistics.median(times)
    print(f"{platform.processor() or platform.machine()}, numpy {np.__version__}")
    print(f"recording {seconds:.2f} s; analyze_echo median {1000 * median:.1f} ms CPU "
          f"({seconds / median:.0f}x real time); read ERL {reading.erl_db:.2f} dB, "
          f"lag {reading.lag_samples} samples")


if __name__ == "__main__":
    main()
