"""Lab part: the center's bandwidth endpoint and UDP reflector, served in the center namespace.

``python -m tests.lab.bandwidth_center HOST HTTP_PORT UDP_PORT`` runs uvicorn with a small
Starlette app: ``GET /healthz`` as the center answers it (reflector and ``speedtest_path``) and
the real speedtest app (``agent_kit.center.speedtest``) mounted at ``/speedtest``, plus the real
UDP reflector (``agent_kit.center.reflector``). It prints ``ready`` once both listen.
``serve_bandwidth_center(pair)`` starts it inside a ``NetnsPair`` and waits for it.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.lab.netns import CENTER_HTTP_PORT, CENTER_UDP_PORT, LabError, NetnsPair

ROOT = Path(__file__).resolve().parents[2]
HTTP_PORT = CENTER_HTTP_PORT
UDP_PORT = CENTER_UDP_PORT


def _main(host: str, http_port: int, udp_port: int) -> None:
    import asyncio

    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Mount, Route

    from agent_kit.center.reflector import start_reflector
    from agent_kit.center.speedtest import create_speedtest_app

    reflector = start_reflector(host, udp_port)

    async def healthz(_: Request) -> Response:
        return JSONResponse({"status": "ok", "version": "lab",
                             "reflector": {"host": None, "port": udp_port},
                             "speedtest_path": "/speedtest/"})

    app = Starlette(routes=[Route("/healthz", healthz),
                            Mount("/speedtest", app=create_speedtest_app())])
    config = uvicorn.Config(app, host=host, port=http_port, log_level="warning",
                            access_log=False)
    server = uvicorn.Server(config)

    async def run() -> None:
        task = asyncio.create_task(server.serve())
        while not server.started:
            await asyncio.sleep(0.05)
        print("ready", flush=True)
        await task

    try:
        asyncio.run(run())
    finally:
        reflector.close()


@contextmanager
def serve_bandwidth_center(pair: NetnsPair) -> Iterator[str]:
    """Run the endpoint + reflector in ``pair.center``; yields the center's base URL."""
    proc = pair.popen(pair.center, [sys.executable, "-m", "tests.lab.bandwidth_center",
                                    pair.center_addr, str(HTTP_PORT), str(UDP_PORT)],
                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=str(ROOT))
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 20
        line = proc.stdout.readline()
        if line.strip() != "ready" or time.monotonic() > deadline:
            proc.kill()
            _, err = proc.communicate(timeout=5)
            raise LabError(f"bandwidth center did not start: {line!r} {err[-2000:]}")
        yield f"http://{pair.center_addr}:{HTTP_PORT}"
    finally:
        proc.terminate()
        try:
            proc.communicate(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate(timeout=5)


if __name__ == "__main__":
    _main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
