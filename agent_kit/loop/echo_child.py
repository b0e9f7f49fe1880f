"""The monitor's echo test in a child process.

The echo test (``probes.audio.echo.measure_echo``) plays and records through one full-duplex
PortAudio stream. PortAudio's ALSA back-end maps every plugin the ALSA configuration defines
while it opens a device (about 14 MB on a Debian desktop, docs/BENCHMARKS.md "Monitor cost"),
and a process keeps them mapped for good. ``agent-kit check`` does not mind; the monitor, which
records the microphone without PortAudio (``probes.audio.pulse_capture``) to stay inside its
memory budget, would carry them for the rest of the shift after its first echo test. So the
monitor measures the echo in a short-lived child (this module's ``child_main``), like its
traceroute (``agent_kit.loop.traceroute_child``): the child plays, records, analyses and prints
one JSON ``EchoReading`` of numbers; the samples never leave the child's memory.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from dataclasses import asdict, fields

from probes.audio.echo import PROBE_DBFS, PROBE_S, EchoReading, recording_s

CHILD_ARG = "--agent-kit-measure-echo"   # the frozen binary's entry hands this to child_main
# Python's start-up and PortAudio's device listing, on top of the recordings themselves
# (up to two tries, each with the stream's stall margin: probes.audio.echo_io)
CHILD_SLACK_S = 20.0


def measure_echo_in_child(*, level_dbfs: float = PROBE_DBFS, seconds: float = PROBE_S,
                          on_level: Callable[[float], None] | None = None) -> EchoReading:
    """``measure_echo`` run in a child process (never raises). ``on_level`` is not fed: the
    monitor shows no meter."""
    del on_level
    try:
        proc = subprocess.run([*child_command(), repr(float(level_dbfs)), repr(float(seconds))],
                              capture_output=True, text=True, stdin=subprocess.DEVNULL,
                              timeout=2 * recording_s(seconds) + CHILD_SLACK_S)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return _failed(f"the echo test's process failed: {exc}")
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["no message"])[-1][:300]
        return _failed(f"the echo test's process exited with {proc.returncode}: {tail}")
    try:
        return reading_from_json(json.loads(proc.stdout))
    except (ValueError, TypeError) as exc:
        return _failed(f"the echo test's process gave an unreadable answer: {exc}")


def child_command() -> list[str]:
    """How to start the child: the frozen binary with ``CHILD_ARG``, else this Python."""
    if getattr(sys, "frozen", False):
        return [sys.executable, CHILD_ARG]
    return [sys.executable, "-c", "from agent_kit.loop.echo_child import child_main; child_main()"]


def child_main(argv: list[str] | None = None) -> None:
    """The child: ``LEVEL_DBFS SECONDS`` -> one JSON ``EchoReading`` (numbers) on stdout."""
    from probes.audio.echo import measure_echo

    level, seconds = argv if argv is not None else sys.argv[1:3]
    reading = measure_echo(level_dbfs=float(level), seconds=float(seconds))
    sys.stdout.write(json.dumps(asdict(reading)))
    sys.stdout.flush()


def reading_from_json(data: object) -> EchoReading:
    """The child's answer; only ``EchoReading``'s own fields are taken."""
    if not isinstance(data, dict):
        raise TypeError("not a JSON object")
    names = {f.name for f in fields(EchoReading)}
    return EchoReading(**{k: v for k, v in data.items() if k in names})


def _failed(problem: str) -> EchoReading:
    from probes.audio.echo import SAMPLE_RATE

    return EchoReading(device=None, sample_rate=SAMPLE_RATE, problem=problem)
