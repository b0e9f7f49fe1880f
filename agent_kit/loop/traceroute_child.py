"""The monitor's traceroute (``network.hops``): when to run it, and in a child process.

The path unit's traceroute (``probes.network.traceroute``) opens raw sockets with scapy, which
brings
about 30 MB of modules and buffers into the process for good (Python does not unload them) and
costs 0.05-0.3 s of CPU per trace. In ``agent-kit check`` that is nothing; in the monitor, which
runs a path burst every minute for a whole shift, it would break the budget of issue 7 (80 MB
resident, 1 % of one core). So the monitor switches the in-process traceroute off
(``[path] traceroute = false`` in its own copy of the policy) and traces the hops itself:

- at the full check (the first of a shift), and
- when a path burst degrades (``network.rtt``/``jitter``/``loss``/``mos`` not ``pass``): at the
  first degraded burst, then at most every ``HOPS_DEGRADED_EVERY_S`` while it stays degraded,
  so IT sees where the trouble starts while it is there;

each time in a short-lived child process (this module's ``child_main``), so scapy's memory goes
back to the OS when the trace ends. Between traces the last trace stays the current one: each
burst is judged with it (``agent_kit.evaluate.path.evaluate_path``, as in ``agent-kit check``).
Without raw-socket privileges no child is started: the cheap pre-check
(``raw_socket_problem``) already gives the ``unknown`` reason.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import asdict
from typing import Any

from agent_kit.core.checks import NETWORK_JITTER, NETWORK_LOSS, NETWORK_MOS, NETWORK_RTT
from probes.network.traceroute import (
    HopReading,
    TracerouteReading,
    measure_hops,
    raw_socket_problem,
)

HOPS_DEGRADED_EVERY_S = 600.0   # while the path stays degraded, trace again every 10 minutes
PATH_CHECKS = (NETWORK_RTT.id, NETWORK_JITTER.id, NETWORK_LOSS.id, NETWORK_MOS.id)
CHILD_ARG = "--agent-kit-trace-hops"   # the frozen binary's entry hands this to child_main
# the child's start-up (Python, then scapy's layers) on top of the traceroute's own budget
CHILD_SLACK_S = 15.0


def trace_hops(host: str, port: int, budget_s: float) -> TracerouteReading:
    """``measure_hops`` to the reflector, run in a child process (never raises)."""
    problem = raw_socket_problem()
    if problem:   # the probe's own answer, without starting a process or importing scapy
        return measure_hops(host, port, budget_s=budget_s)
    target = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    try:
        proc = subprocess.run([*child_command(), host, str(port), repr(float(budget_s))],
                              capture_output=True, text=True, timeout=budget_s + CHILD_SLACK_S,
                              stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return _failed(target, f"the traceroute process failed: {exc}")
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["no message"])[-1][:300]
        return _failed(target, f"the traceroute process exited with {proc.returncode}: {tail}")
    try:
        return reading_from_json(json.loads(proc.stdout))
    except (ValueError, TypeError, KeyError) as exc:
        return _failed(target, f"the traceroute process gave an unreadable answer: {exc}")


def child_command() -> list[str]:
    """How to start the child: the frozen binary with ``CHILD_ARG``, else this Python."""
    if getattr(sys, "frozen", False):
        return [sys.executable, CHILD_ARG]
    return [sys.executable, "-c",
            "from agent_kit.loop.traceroute_child import child_main; child_main()"]


def child_main(argv: list[str] | None = None) -> None:
    """The child: ``HOST PORT BUDGET_S`` -> one JSON ``TracerouteReading`` on stdout."""
    host, port, budget = argv if argv is not None else sys.argv[1:4]
    reading = measure_hops(host, int(port), budget_s=float(budget))
    sys.stdout.write(json.dumps(asdict(reading)))
    sys.stdout.flush()


def reading_from_json(data: dict[str, Any]) -> TracerouteReading:
    hops = tuple(HopReading(**hop) for hop in data["hops"])
    return TracerouteReading(**{**data, "hops": hops})


def path_degraded(statuses: dict[str, str]) -> bool:
    """A burst whose path checks did not all pass (``unknown`` alone is not degradation)."""
    return any(statuses.get(cid) in ("warn", "fail") for cid in PATH_CHECKS)


def _failed(target: str, problem: str) -> TracerouteReading:
    return TracerouteReading(target=target, hops=(), reached=False, duration_s=0.0,
                             problem=problem)
