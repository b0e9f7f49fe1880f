"""``agent-kit monitor`` as a command: start the shift loop in a lean process, say why it stops.

The loop itself is ``agent_kit.loop.monitor``; this module is its face: options, one readable
line on stdout each time the gate opens or closes (and why), the one-line reasons on stderr
and the exit codes (0 stopped by a signal, 1 stopped by the center, 2 cannot start). The loop's
log shows only its warnings, as plain lines, unless ``--verbose`` asks for all of it. It imports
neither typer nor pydantic, so the process the CLI re-execs into stays lean.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING

from agent_kit.core.i18n import _
from agent_kit.core.process_replacement import REPLACES_IN_PLACE, replace_process
from agent_kit.link.state_folder import state_dir
from agent_kit.loop.malloc_tuning import limit_malloc_arenas
from agent_kit.loop.monitor import (
    MonitorError,
    StateFolderUnwritable,
    open_monitor,
    state_folder_message,
)
from agent_kit.loop.single_instance import SingleInstance

if TYPE_CHECKING:
    from agent_kit.loop.hysteresis import GateState

# The lean process: ``httpx/__init__`` imports its own command-line client (click + rich, about
# 6 MB) whenever those are installed, as they are here for typer; the monitor never uses it, so
# that import is blocked (httpx then falls back to a stub ``main``).
STATE_RETRY_S = 15.0   # how often a monitor that cannot write its state folder tries again
LEAN_START = ("import sys; sys.modules['httpx._main'] = None; "
              "from agent_kit.face.monitor_command import main; main()")


def run_monitor_command(*, interval_s: float | None, policy_path: str | None,
                        groups: set[str] | None, lang: str | None = None,
                        verbose: bool = False) -> int:
    """``agent-kit monitor``: 0 when stopped by a signal, 1 when the center stopped it
    (retired, refused), 2 when it cannot start (one line on stderr).

    From source on POSIX the CLI process *becomes* a lean one (``exec``, same pid, so service
    managers and signals are unaffected): the command-line layer (typer, which loads pydantic)
    would otherwise stay resident for the whole shift, about 10 MB for nothing (see also
    ``LEAN_START``).
    """
    import sys

    argv = _lean_argv(interval_s, policy_path, groups, lang, verbose)
    # Only where the process is replaced in place: on Windows a lean child would run beside a
    # CLI process still holding typer, the opposite of the point. Frozen, there is no ``-c``.
    if REPLACES_IN_PLACE and not getattr(sys, "frozen", False):
        replace_process([sys.executable, "-c", LEAN_START, *argv])
    return _run_monitor(interval_s=interval_s, policy_path=policy_path, groups=groups,
                        verbose=verbose)


def _lean_argv(interval_s: float | None, policy_path: str | None, groups: set[str] | None,
               lang: str | None, verbose: bool = False) -> list[str]:
    argv: list[str] = ["--verbose"] if verbose else []
    if interval_s is not None:
        argv += ["--interval", repr(float(interval_s))]
    if policy_path is not None:
        argv += ["--policy", policy_path]
    if groups is not None:
        argv += ["--only", ",".join(sorted(groups))]
    if lang is not None:
        argv += ["--lang", lang]
    return argv


def main(argv: Sequence[str] | None = None) -> None:
    """The lean entry point the CLI execs into (options already validated by the CLI)."""
    import argparse
    import sys

    parser = argparse.ArgumentParser(prog="agent-kit monitor")
    parser.add_argument("--interval", type=float, default=None)
    parser.add_argument("--policy", default=None)
    parser.add_argument("--only", default=None)
    parser.add_argument("--lang", default=None)
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)
    from agent_kit.core.i18n import set_language

    set_language(args.lang)
    groups = set(args.only.split(",")) if args.only else None
    sys.exit(_run_monitor(interval_s=args.interval, policy_path=args.policy, groups=groups,
                          verbose=args.verbose))


def gate_line(state: GateState) -> str:
    """What the console says when the gate changes: ready, or not and why (the reasons carry
    each check's fix)."""
    if state.open:
        return _("Ready to take calls.")
    return _("Not ready to take calls: {reasons}").format(
        reasons=" | ".join(state.reasons) or _("see agent-kit status"))


def _print_gate(state: GateState) -> None:
    """The gate line, after the local time: wrapped on a terminal, one line in a log."""
    import sys
    import time

    from agent_kit.face.text_wrap import lines_for

    stamp = time.strftime("%H:%M:%S") + "  "
    lines = lines_for(sys.stdout, gate_line(state), first=stamp, rest=" " * len(stamp))
    print("\n".join(lines), flush=True)


def _configure_logging(verbose: bool) -> None:
    """The loop's log on stderr: everything, timestamped, with ``--verbose`` (IT, services);
    otherwise only what goes wrong, as plain ``agent-kit: ...`` lines."""
    import sys

    if verbose:
        logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                            format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    else:
        logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                            format="agent-kit: %(message)s")
    # one line per request for a whole shift is noise; failures are logged by the courier
    logging.getLogger("httpx").setLevel(logging.WARNING)


def _run_monitor(*, interval_s: float | None, policy_path: str | None,
                 groups: set[str] | None, verbose: bool = False) -> int:
    import signal
    import sys

    # one BLAS thread: the loop's small FFTs gain nothing from a thread pool, which costs
    # memory and wake-ups (set before anything imports numpy)
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")
    _configure_logging(verbose)
    limit_malloc_arenas()
    if interval_s is not None and not 1.0 <= interval_s <= 3600.0:  # before any network call
        print("agent-kit: " + _("--interval must be between 1 and 3600 seconds"),
              file=sys.stderr)
        return 2
    stop = threading.Event()

    def on_signal(_signo: int, _frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    lock: SingleInstance | None = None
    said: str | None = None
    while True:
        # A state folder that cannot be written (read-only, full) is said once and tried again
        # until it can: exiting would leave the workstation unmonitored for good (the service
        # does not restart an exit 2), and the cause is often passing (a remount, a full disk).
        try:
            lock = SingleInstance(state_dir())
            if not lock.acquire():
                print("agent-kit: " + _("another agent-kit monitor is already running for "
                                        "{folder}").format(folder=state_dir()), file=sys.stderr)
                return 2
            monitor = open_monitor(interval_s=interval_s, policy_path=policy_path,
                                   groups=groups, on_gate=_print_gate)
            break
        except StateFolderUnwritable as exc:
            if lock is not None:
                lock.release()
            if str(exc) != said:
                print(f"agent-kit: {exc}", file=sys.stderr, flush=True)
                said = str(exc)
        except OSError as exc:   # the lock file itself cannot be made
            if said is None:
                said = state_folder_message(state_dir(), exc)
                print(f"agent-kit: {said}", file=sys.stderr, flush=True)
        except MonitorError as exc:
            print(f"agent-kit: {exc}", file=sys.stderr)
            return 2
        if stop.wait(min(STATE_RETRY_S, interval_s or STATE_RETRY_S)):
            return 0
    if said is not None:
        print("agent-kit: " + _("the state folder can be written again"), file=sys.stderr,
              flush=True)
    print(_("Monitoring this computer for the shift (as {agent}). The first full check takes "
            "under a minute: you can take calls once it passes.").format(
                agent=monitor.deps.enrollment.agent_id), flush=True)
    try:
        stopped = monitor.run(stop)
    finally:
        monitor.deps.spool.close()
        monitor.deps.client.close()
    if stopped:
        print("agent-kit: " + _("the monitor stopped: see agent-kit status"), file=sys.stderr)
        return 1
    return 0
