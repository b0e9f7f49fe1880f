"""How long the full onboarding check measures (target: <= 15 s, not counting the reading aloud).

Real parts: a running ``agent-center serve`` on loopback (reflector, bandwidth endpoint), a
PulseAudio virtual USB headset whose microphone hears a quiet room and, when the check asks for
it, espeak-ng reading the sentence. The check is the one ``agent-kit check`` and the window run
(``session.prepare_run`` + ``runner.run_checks``, every group, the default policy). Printed: each
unit's start and end, the whole run, the time the agent spends reading aloud (the policy's
``audio.speech_s`` window) and the measuring time = whole run - reading time.

Run as root on the lab machine: ``python3 bench/onboarding_time.py [--runs N]``.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

TARGET_S = 15.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    from agent_kit.core.checks import GROUPS
    from agent_kit.run.runner import run_checks
    from agent_kit.run.session import prepare_run
    from tests.center_seed import run_center
    from tests.lab.pulse import RATE, pulse_server, read_wav, sox

    work = Path(tempfile.mkdtemp(prefix="bench-onboarding-"))
    subprocess.run(["espeak-ng", "-w", str(work / "s22.wav"), "The quick brown fox jumps over "
                    "the lazy dog, and my headset is ready for today's calls."], check=True,
                   capture_output=True, timeout=60)
    sox(str(work / "s22.wav"), "-r", str(RATE), "-b", "16", str(work / "speech.wav"), "vol", "0.5")
    sox("-n", "-r", str(RATE), "-c", "1", "-b", "16", str(work / "quiet.wav"), "synth", "12",
        "pinknoise", "vol", "0.003")
    speech, quiet = read_wav(work / "speech.wav"), read_wav(work / "quiet.wav")

    totals: list[float] = []
    measuring: list[float] = []
    with pulse_server() as server, run_center(work / "center") as center:
        server.add_speaker("headset_out", "Jabra Evolve2 40", bus="usb", form_factor="headset",
                           default=True)
        feed = server.add_microphone("headset_mic", "Jabra Evolve2 40", bus="usb",
                                     form_factor="headset", vendor_id="0b0e",
                                     product_id="24f1", default=True)
        feed.set_background(quiet)
        for n in range(1, args.runs + 1):
            prompts: list[str] = []

            def prompt(text: str, prompts: list[str] = prompts) -> None:
                prompts.append(text)
                if len(prompts) == 2:          # "now read this sentence aloud"
                    feed.play(speech)

            def refuse(reason: str) -> None:
                raise SystemExit(f"cannot prepare the run: {reason}")

            run = prepare_run(center=center.url, policy_path=None, groups=set(GROUPS),
                              reflector=None, interactive=True, on_error=refuse,  # type: ignore[arg-type]
                              prompt=prompt)
            speech_s = float(run.context.policy.setting("audio", "speech_s", 6.0))
            spans: dict[str, list[float]] = {}
            t0 = time.monotonic()

            def progress(event: str, unit: str, elapsed: float, _results: object,
                         spans: dict[str, list[float]] = spans) -> None:
                spans.setdefault(unit, []).append(elapsed)

            report = run_checks(run.units, run.context, progress=progress)
            total = time.monotonic() - t0
            reading = speech_s if len(prompts) >= 2 else 0.0
            totals.append(total)
            measuring.append(total - reading)
            print(f"run {n}: verdict {report.verdict.value}, whole run {total:.1f} s, reading "
                  f"aloud {reading:.1f} s, measuring {total - reading:.1f} s")
            for unit, (start, *end) in spans.items():
                print(f"    {unit:<10} {start:5.1f} -> {end[0] if end else float('nan'):5.1f} s")
            bad = [f"{c.id}={c.status.value}" for c in report.checks if c.status.value != "pass"]
            if bad:
                print(f"    not pass: {', '.join(bad)}")
        assert feed.error is None, feed.error
    print(f"\nmeasuring time over {len(measuring)} runs: median {statistics.median(measuring):.1f}"
          f" s, max {max(measuring):.1f} s (target <= {TARGET_S:.0f} s); whole run median "
          f"{statistics.median(totals):.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
