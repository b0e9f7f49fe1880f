"""What each module the monitor loads adds to its resident size (``/proc/self/smaps_rollup``).

Imports, in one fresh process and in the order a shift loads them, the monitor loop and then
each unit's modules, printing the RSS after each step and its growth. Only what the import
itself maps and allocates counts (no measurement runs). Linux only.

    OPENBLAS_NUM_THREADS=1 python bench/monitor_imports.py [--capture]

``--capture`` also records 1 s through the call-input backend at the end (needs a sound server).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# (label, modules) in the order a monitor imports them
STEPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("core: checks catalogue, policy, i18n, results", ("agent_kit.core.checks",
                                                      "agent_kit.core.policy",
                                                      "agent_kit.core.i18n",
                                                      "agent_kit.core.results")),
    ("babel (numbers, dates)", ("babel", "babel.numbers", "babel.dates")),
    ("ssl", ("ssl",)),
    ("httpx", ("httpx",)),
    ("sqlite3 (the spool)", ("sqlite3",)),
    ("psutil", ("psutil",)),
    ("the loop (agent_kit.face.monitor_command)", ("agent_kit.face.monitor_command",)),
    ("system/link/vpn units", ("probes.system", "agent_kit.evaluate.system",
                               "agent_kit.evaluate.link", "probes.network.vpn",
                               "agent_kit.evaluate.vpn")),
    ("headset unit (devices, evaluate.audio)", ("probes.audio.devices",
                                                "agent_kit.evaluate.audio")),
    ("room unit: capture module", ("agent_kit.run.microphone_step", "probes.audio.capture")),
    ("numpy", ("numpy",)),
    ("audio analysis (dsp, room_sounds, voice_band)", ("probes.audio.dsp",
                                                       "probes.audio.room_sounds",
                                                       "probes.audio.voice_band")),
    ("webrtcvad", ("webrtcvad",)),
    ("capture backend", ()),
    ("path unit", ("probes.network.path", "agent_kit.evaluate.path")),
    ("test call unit", ("agent_kit.evaluate.test_call", "agent_kit.link.test_call")),
    ("bandwidth unit", ("probes.bandwidth.measure", "agent_kit.evaluate.bandwidth")),
)
WATCH = ("sounddevice", "pasimple", "scipy", "typer", "pydantic", "click", "rich", "scapy",
         "ssl", "sqlite3", "httpx", "numpy")


def rss_mb() -> float:
    for line in Path("/proc/self/smaps_rollup").read_text().splitlines():
        if line.startswith("Rss:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no Rss line in smaps_rollup")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--capture", action="store_true")
    args = parser.parse_args()
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    sys.modules["httpx._main"] = None  # type: ignore[assignment] # as the monitor starts
    start = last = rss_mb()
    print(f"{'step':48s} {'rss MB':>7s} {'+MB':>6s}")
    print(f"{'python itself':48s} {start:7.1f}")
    for label, modules in STEPS:
        if label == "capture backend":
            from probes.audio import capture

            try:
                device, name = capture.call_input_device()
                label = f"capture backend ({type(device).__name__}: {name})"
                if args.capture:
                    capture.record(1.0, device=device)
                    label += ", 1 s recorded"
            except Exception as exc:  # noqa: BLE001 - no input at all: say so, go on
                label = f"capture backend (none: {exc})"[:48]
        for name in modules:
            importlib.import_module(name)
        now = rss_mb()
        print(f"{label:48s} {now:7.1f} {now - last:+6.1f}")
        last = now
    loaded = [name for name in WATCH if name in sys.modules]
    print(f"total {last:.1f} MB; loaded of {', '.join(WATCH)}: {', '.join(loaded)}")


if __name__ == "__main__":
    main()
