"""``agent-center serve --workers N``: N server processes, each with its own listening socket on
the same address (``SO_REUSEPORT``), its own app, intake writer and database pool.

With one shared socket (uvicorn's own ``workers``) every process races for each new connection
and keep-alive connections ended up spread very unevenly (one process measured at 0.90 of a core
while the other idled at 0.02, docs/BENCHMARKS.md "Center load"); with a socket per process the
kernel spreads new connections over them by their address hash. The parent only supervises:
SIGTERM/SIGINT stop every worker gracefully (each finishes its requests and its intake), and
if a worker dies the others are stopped and the parent exits non-zero, so a service manager
restarts the whole center.

Metrics: each worker counts its own intake; the parent makes a fresh folder for this start and
sets ``PROMETHEUS_MULTIPROC_DIR`` to it before any worker starts, so every worker (a new
interpreter, ``spawn``) finds it set before it first imports prometheus_client and writes its
counters there, and a scrape answered by any worker sums them all (``metrics.py``). The folder
is removed when the center stops.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import shutil
import signal
import socket
import sys
import tempfile
from multiprocessing.connection import wait
from typing import Any

# Not metrics.py: a worker imports this module before _worker runs, and prometheus_client must
# not be imported before the worker's environment names the metrics folder.
from agent_kit.center.settings import MULTIPROC_ENV

STOP_TIMEOUT_S = 30.0


def listening_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` that other processes may also bind."""
    family, kind, proto, _, addr = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(addr)
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def _worker(host: str, port: int, uvicorn_options: dict[str, Any], metrics_dir: str) -> None:
    # Inherited from the parent already; set here too so it holds whatever the start method,
    # and before uvicorn imports the app (and the app prometheus_client).
    os.environ[MULTIPROC_ENV] = metrics_dir
    import uvicorn

    from agent_kit.center.read_deadlines import deadline_protocol
    from agent_kit.center.settings import from_env

    sock = listening_socket(host, port)
    config = uvicorn.Config("agent_kit.center.app:worker_app", factory=True,
                            log_level="warning", access_log=False,
                            http=deadline_protocol(from_env().read_limits), **uvicorn_options)
    uvicorn.Server(config).run(sockets=[sock])


def serve_workers(host: str, port: int, workers: int, uvicorn_options: dict[str, Any]) -> int:
    """Run ``workers`` processes (settings from ``AGENT_CENTER_SETTINGS``) until a signal or a
    worker's death; the exit status."""
    # Fail early, in the parent, when the address is taken by something else.
    listening_socket(host, port).close()
    metrics_dir = tempfile.mkdtemp(prefix="agent-center-metrics-")
    os.environ[MULTIPROC_ENV] = metrics_dir  # before the first worker starts: they inherit it
    try:
        return _supervise(host, port, workers, uvicorn_options, metrics_dir)
    finally:
        os.environ.pop(MULTIPROC_ENV, None)
        shutil.rmtree(metrics_dir, ignore_errors=True)


def _supervise(host: str, port: int, workers: int, uvicorn_options: dict[str, Any],
               metrics_dir: str) -> int:
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_worker, args=(host, port, uvicorn_options, metrics_dir),
                         name=f"agent-center-worker-{i}") for i in range(workers)]
    stopping = False

    def stop(signum: int, frame: Any) -> None:
        nonlocal stopping
        stopping = True

    previous = {s: signal.signal(s, stop) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        for p in procs:
            p.start()
        while not stopping:
            done = wait([p.sentinel for p in procs], timeout=0.5)
            if done and not stopping:
                dead = [p for p in procs if not p.is_alive()]
                print(f"agent-center: worker {dead[0].name} exited with {dead[0].exitcode}; "
                      "stopping the others", file=sys.stderr, flush=True)
                break
    finally:
        if stopping:  # a signal to the process group reaches the workers too: let them finish
            wait([p.sentinel for p in procs], timeout=2.0)
        for p in procs:
            if p.is_alive():
                with contextlib.suppress(ProcessLookupError):
                    p.terminate()  # SIGTERM: uvicorn's graceful shutdown
        for p in procs:
            p.join(STOP_TIMEOUT_S)
            if p.is_alive():
                p.kill()
                p.join()
        for s, handler in previous.items():
            signal.signal(s, handler)
    return 0 if stopping else 1
