"""The center's UDP reflector run alone (``python -m agent_kit.center.reflector``) inside a lab
namespace, as an edge site runs it: started, waited for, stopped."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


@contextlib.contextmanager
def standalone_reflector(ns_prefix: Sequence[str], host: str,
                         port: int) -> Iterator[subprocess.Popen[str]]:
    """The reflector on ``host:port`` behind ``ns_prefix`` (``pair.exec_args(ns)``: the
    ``ip netns exec NS`` part); yields once it says it is listening, stops it afterwards."""
    refl = subprocess.Popen([*ns_prefix, sys.executable, "-m", "agent_kit.center.reflector",
                             "--host", host, "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert refl.stdout is not None and refl.stderr is not None
        line = refl.stdout.readline()
        assert "listening" in line, (line, refl.stderr.read() if refl.poll() else "")
        yield refl
    finally:
        refl.terminate()
        refl.wait(10)
        if refl.stdout:
            refl.stdout.close()
        if refl.stderr:
            refl.stderr.close()
