"""Lab part: the center's scored test call and UDP reflector, served in the center namespace.

``python -m tests.lab.call_center HOST HTTP_PORT UDP_PORT`` runs uvicorn with a small Starlette
app: ``GET /healthz`` as the center answers it (reflector, no bandwidth endpoint, and the test
call's offer) and the real test-call route (``agent_kit.center.test_call_route``, no per-address
budget: the lab calls it many times from one address), plus the real UDP reflector
(``agent_kit.center.reflector``). It prints ``ready`` once both listen and the scorer is loaded.
``serve_call_center(pair)`` starts it inside a ``NetnsPair`` and waits for it.
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


def _main(host: str, http_port: int, udp_port: int) -> None:
    import asyncio

    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    from agent_kit.center.reflector import start_reflector
    from agent_kit.center.test_call_route import add_test_call_route

    reflector = start_reflector(host, udp_port)
    app = Starlette()
    offer = add_test_call_route(app, warm=True)   # numba's first compile: before "ready"
    if offer is None:
        raise SystemExit("no test call here: is visqol-python installed?")

    async def healthz(_: Request) -> Response:
        return JSONResponse({"status": "ok", "version": "lab",
                             "reflector": {"host": None, "port": udp_port},
                             "speedtest_path": None, "test_call": offer.to_json()})

    app.router.routes.append(Route("/healthz", healthz))
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
def serve_call_center(pair: NetnsPair) -> Iterator[str]:
    """Run the test-call route + reflector in ``pair.center``; yields the center's base URL."""
    proc = pair.popen(pair.center, [sys.executable, "-m", "tests.lab.call_center",
                                    pair.center_addr, str(CENTER_HTTP_PORT),
                                    str(CENTER_UDP_PORT)],
                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=str(ROOT))
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 120   # the first run on a machine compiles numba's cache
        line = proc.stdout.readline()
        if line.strip() != "ready" or time.monotonic() > deadline:
            proc.kill()
            _, err = proc.communicate(timeout=5)
            raise LabError(f"call center did not start: {line!r} {err[-2000:]}")
        yield f"http://{pair.center_addr}:{CENTER_HTTP_PORT}"
    finally:
        proc.terminate()
        try:
            proc.communicate(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate(timeout=5)


if __name__ == "__main__":
    _main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
