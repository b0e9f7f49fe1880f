"""Test helper: a real SMTP server (aiosmtpd) on loopback, plain, with STARTTLS and login, or
TLS from the first byte, with a throwaway CA whose certificate the center is told to trust
(``ca_file``). It keeps every message it accepted; a script of answers to DATA (``"451 ..."``)
makes it refuse the first ones, as a busy or failing relay does."""

from __future__ import annotations

import contextlib
import datetime as dt
import email
import email.policy
import ipaddress
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.center_seed import free_port


@dataclass
class Mailbox:
    """The server's handler: what it accepted, and the answers it still has to give."""

    script: list[str] = field(default_factory=list)
    messages: list[EmailMessage] = field(default_factory=list)
    refused: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: N802 - aiosmtpd's
        with self.lock:
            if self.script:
                self.refused += 1
                return self.script.pop(0)
            message = email.message_from_bytes(envelope.content, policy=email.policy.default)
            assert isinstance(message, EmailMessage)
            self.messages.append(message)
        return "250 2.0.0 OK"


@dataclass(frozen=True)
class SmtpServer:
    host: str
    port: int
    mailbox: Mailbox
    ca_file: str | None


@dataclass(frozen=True)
class Tls:
    ca_file: Path
    context: ssl.SSLContext


def make_tls(folder: Path) -> Tls:
    """A CA and a certificate for 127.0.0.1 / localhost signed by it; the server's context."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "agent-kit test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - dt.timedelta(minutes=5))
          .not_valid_after(now + dt.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True,
                                       crl_sign=True, content_commitment=False,
                                       key_encipherment=False, data_encipherment=False,
                                       key_agreement=False, encipher_only=False,
                                       decipher_only=False), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
            .issuer_name(ca_name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([
                x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]),
                critical=False)
            .sign(ca_key, hashes.SHA256()))
    folder.mkdir(parents=True, exist_ok=True)
    ca_file, cert_file, key_file = folder / "ca.pem", folder / "smtp.pem", folder / "smtp.key"
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)
    return Tls(ca_file, context)


def _authenticator(username: str, password: str):
    def check(server, session, envelope, mechanism, auth_data) -> AuthResult:
        ok = isinstance(auth_data, LoginPassword) and auth_data.login == username.encode() \
            and auth_data.password == password.encode()
        return AuthResult(success=ok, handled=False)
    return check


@contextlib.contextmanager
def smtp_server(mode: str = "plain", folder: Path | None = None, script: list[str] | None = None,
                login: tuple[str, str] | None = None, port: int | None = None
                ) -> Iterator[SmtpServer]:
    """``mode``: ``plain`` (no TLS), ``starttls`` (TLS required before MAIL and before a login),
    ``ssl`` (TLS from the first byte); ``login``: the only (username, password) it accepts,
    and then it refuses mail without it."""
    mailbox = Mailbox(script=list(script or []))
    tls = make_tls(folder) if mode != "plain" and folder is not None else None
    if mode != "plain" and tls is None:
        raise ValueError("TLS modes need a folder for the certificates")
    kwargs: dict[str, object] = {}
    if mode == "starttls":
        assert tls is not None
        kwargs.update(tls_context=tls.context, require_starttls=True)
    elif mode == "ssl":
        assert tls is not None
        kwargs.update(ssl_context=tls.context, server_hostname="127.0.0.1")
    if login is not None:
        # aiosmtpd counts only STARTTLS as TLS for its login rule; a TLS-first session is TLS
        kwargs.update(authenticator=_authenticator(*login), auth_required=True,
                      auth_require_tls=mode == "starttls")
    port = port or free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port, **kwargs)
    controller.start()
    try:
        yield SmtpServer("127.0.0.1", port, mailbox, str(tls.ca_file) if tls else None)
    finally:
        controller.stop()
