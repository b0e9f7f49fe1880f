"""Size and start-up of the frozen desktop agent (targets: one-file <= 60 MB, --version <= 0.5 s).

    python bench/frozen_size_startup.py [--runs 15] [--fresh]

Builds both modes with installer/build.py (or reuses the cached build of the same sources),
then prints the size of what ships and the wall time of ``agent-kit --version`` (median and
spread of N runs after one warm-up run, so the page cache is warm as on a second start), plus
the same command from source for comparison.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _builder():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("agent_kit_installer_build",
                                                  ROOT / "installer" / "build.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def time_command(cmd: list[str], runs: int) -> list[float]:
    subprocess.run(cmd, capture_output=True, check=True)          # warm-up
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(cmd, capture_output=True, check=True)
        times.append(time.perf_counter() - started)
    return times


def describe(times: list[float]) -> str:
    return (f"median {statistics.median(times) * 1000:.0f} ms "
            f"(min {min(times) * 1000:.0f}, max {max(times) * 1000:.0f}, n={len(times)})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--fresh", action="store_true", help="rebuild even if cached")
    args = parser.parse_args()
    builder = _builder()
    print(f"agent-kit frozen build, Python {sys.version.split()[0]}, {sys.platform}")
    for mode in builder.MODES:
        result = builder.cached_build(mode, fresh=args.fresh)
        how = "reused from cache" if result.reused else f"built in {result.build_s:.0f} s"
        size_mb = builder.artifact_size(result) / 1e6
        print(f"{mode:8s} size {size_mb:6.1f} MB  ({how}: {result.artifact})")
        times = time_command([str(result.executable), "--version"], args.runs)
        print(f"{mode:8s} --version {describe(times)}")
    times = time_command([sys.executable, "-m", "agent_kit.face.cli", "--version"], args.runs)
    print(f"source   --version {describe(times)}  (python -m agent_kit.face.cli)")


if __name__ == "__main__":
    main()
