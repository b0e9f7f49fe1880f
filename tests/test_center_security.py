"""The center's own credentials on a real ``agent-center serve``: TLS when given a certificate
(and the session cookie then Secure), and the admin token made on first start, printed once,
stored only hashed."""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.center_seed import free_port

pytestmark = pytest.mark.lab


def _self_signed(folder: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


@contextmanager
def _serve(data_dir: Path, args: list[str], env: dict[str, str], url: str,
           verify: ssl.SSLContext | bool = True) -> Iterator[tuple[subprocess.Popen[bytes], Path]]:
    log = data_dir.parent / f"{data_dir.name}-{time.monotonic_ns()}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-c", "from agent_kit.center.cli import main; "
                                 "main()", "serve", "--data-dir", str(data_dir), "--host",
                                 "127.0.0.1", "--udp-port", "0", *args], env=env, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
        try:
            deadline = time.monotonic() + 30
            while True:
                assert proc.poll() is None, log.read_text()
                try:
                    if httpx.get(f"{url}/healthz", verify=verify, timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.2)
            yield proc, log
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=15)


def test_tls_serves_https_and_the_cookie_is_secure(tmp_path):
    cert, key = _self_signed(tmp_path)
    port = free_port()
    url = f"https://127.0.0.1:{port}"
    trust = ssl.create_default_context(cafile=str(cert))
    admin_token = "adm_tls-test-token-0123456789abcdef"
    env = {**os.environ, "AGENT_CENTER_ADMIN_TOKEN": admin_token}
    with _serve(tmp_path / "data", ["--port", str(port), "--tls-cert", str(cert),
                                    "--tls-key", str(key)], env, url, trust):
        login = httpx.post(f"{url}/api/v1/session", json={"token": admin_token},
                           verify=trust)
        assert login.status_code < 300
        cookie = login.headers["set-cookie"].lower()
        assert "secure" in cookie and "httponly" in cookie and "samesite=strict" in cookie
        # plain HTTP on the TLS port gets no API answer
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            assert b'"status"' not in sock.recv(4096)
        # an untrusted certificate is refused by a verifying client
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{url}/healthz", timeout=5)


def test_admin_token_is_printed_once_and_stored_hashed(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "AGENT_CENTER_ADMIN_TOKEN"}
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    data = tmp_path / "data"
    with _serve(data, ["--port", str(port)], env, url) as (_, log):
        time.sleep(0.5)
        found = re.findall(r"adm_[A-Za-z0-9_-]{20,}", log.read_text())
    assert len(found) == 1, "the first start prints the admin token once"
    token = found[0]
    with _serve(data, ["--port", str(port)], env, url) as (_, log2):
        assert httpx.get(f"{url}/api/v1/agents",
                         headers={"Authorization": f"Bearer {token}"}).status_code == 200
        assert httpx.get(f"{url}/api/v1/agents",
                         headers={"Authorization": "Bearer adm_wrong"}).status_code == 401
        assert "adm_" not in log2.read_text(), "a second start prints nothing"
    stored = b"".join(p.read_bytes() for p in data.rglob("*") if p.is_file())
    assert token.encode() not in stored, "the database holds only the token's hash"
