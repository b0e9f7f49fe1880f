"""A real OpenID provider for the lab: npm's certified ``oidc-provider`` (v8, node 18+) run
by node with ``tests/lab/oidc_provider.mjs``: one confidential client (PKCE S256 required),
accounts with ``groups`` claims, a sign-in form of its own (login name only).

The package installs itself on first use into a cache folder in /tmp (``npm install``, the
registry), or ``python -m tests.lab.oidc install`` (scripts/install-deps.sh test). When node
or the package cannot be had, :func:`lab_unavailable` skips the test, or fails it in CI
(``CI=true``): a CI run never passes without the provider.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

PACKAGE = "oidc-provider@8.8.1"
CACHE = Path(tempfile.gettempdir()) / "agent-kit-lab" / PACKAGE.replace("@", "-")
SCRIPT = Path(__file__).with_name("oidc_provider.mjs")


class LabUnavailable(Exception):
    """node or oidc-provider cannot be set up here."""


def lab_unavailable(why: str) -> None:
    """Skip the test, or fail it in CI (where the lab must be whole)."""
    import pytest

    if os.environ.get("CI") == "true":
        pytest.fail(f"the OpenID provider lab cannot be built in CI: {why}")
    pytest.skip(f"no OpenID provider lab: {why}")


def install() -> Path:
    """The folder ``oidc-provider`` is installed in (installed now when it is not)."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        raise LabUnavailable("node and npm are needed (Debian: apt-get install nodejs npm)")
    marker = CACHE / "node_modules" / "oidc-provider" / "package.json"
    if marker.exists():
        return CACHE
    CACHE.mkdir(parents=True, exist_ok=True)
    building = Path(tempfile.mkdtemp(prefix="oidc-provider-", dir=CACHE.parent))
    try:
        done = subprocess.run([npm, "install", "--prefix", str(building), "--no-audit",
                               "--no-fund", "--no-save", PACKAGE], capture_output=True,
                              text=True, timeout=600, check=False)
        if done.returncode != 0:
            raise LabUnavailable(f"npm install {PACKAGE} failed: {done.stderr.strip()[-500:]}")
        shutil.rmtree(CACHE, ignore_errors=True)
        os.replace(building, CACHE)   # whole or not at all: a parallel run sees one or none
    except subprocess.TimeoutExpired:
        raise LabUnavailable(f"npm install {PACKAGE} took over 10 minutes") from None
    finally:
        shutil.rmtree(building, ignore_errors=True)
    return CACHE


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class OidcProvider:
    issuer: str
    client_id: str
    client_secret: str
    redirect_url: str


@contextmanager
def run_provider(redirect_url: str, accounts: Mapping[str, Mapping[str, object]],
                 client_id: str = "agent-center", client_secret: str | None = None,
                 port: int | None = None) -> Iterator[OidcProvider]:
    """The provider running, with ``accounts`` (login -> claims); stopped at the end."""
    folder = install()
    port = port or free_port()
    secret = client_secret or "lab-secret-" + os.urandom(16).hex()
    env = {**os.environ, "OIDC_PROVIDER_DIR": str(folder), "OIDC_PORT": str(port),
           "OIDC_CLIENT": json.dumps({"client_id": client_id, "client_secret": secret,
                                      "redirect_uri": redirect_url}),
           "OIDC_ACCOUNTS": json.dumps(accounts)}
    log = tempfile.TemporaryFile()  # noqa: SIM115 (read on failure, closed below)
    process = subprocess.Popen(["node", str(SCRIPT)], env=env, stdout=log,
                               stderr=subprocess.STDOUT)
    issuer = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                log.seek(0)
                raise LabUnavailable(f"the provider exited ({process.returncode}): "
                                     f"{log.read().decode(errors='replace')[-1500:]}")
            try:
                if httpx.get(issuer + "/.well-known/openid-configuration", timeout=2).is_success:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise LabUnavailable("the provider did not answer within 30 s")
            time.sleep(0.2)
        yield OidcProvider(issuer, client_id, secret, redirect_url)
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


if __name__ == "__main__":
    if sys.argv[1:] != ["install"]:
        sys.exit("usage: python -m tests.lab.oidc install")
    print(f"{PACKAGE} in {install()}")
