"""Lab part: a throwaway PostgreSQL cluster (LAB.md). postgres refuses to run as root, so the
cluster belongs to the ``postgres`` user; it listens on loopback on a free port."""

from __future__ import annotations

import glob
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.lab.netns import LabError


def _bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not found:
        raise LabError(f"PostgreSQL's {name} is missing (apt-get install postgresql)")
    return found[-1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _as_postgres(*args: str) -> None:
    proc = subprocess.run(["runuser", "-u", "postgres", "--", *args], capture_output=True,
                          text=True, timeout=120)
    if proc.returncode != 0:
        raise LabError(f"{' '.join(args)}: {proc.stderr.strip() or proc.stdout.strip()}")


@contextmanager
def postgres_cluster() -> Iterator[str]:
    """Start a cluster; yields its URL; always stops and removes it."""
    base = Path(tempfile.mkdtemp(prefix="ak-pg-"))
    shutil.chown(base, "postgres")
    data, port = base / "data", _free_port()
    _as_postgres(_bin("initdb"), "-D", str(data), "-A", "trust", "-U", "postgres")
    _as_postgres(_bin("pg_ctl"), "-D", str(data), "-l", str(base / "log"), "-w", "-o",
                 f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=on", "start")
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(["runuser", "-u", "postgres", "--", _bin("pg_ctl"), "-D", str(data),
                        "-m", "immediate", "stop"], capture_output=True, timeout=60)
        shutil.rmtree(base, ignore_errors=True)
