"""The center's own secrets at rest: sealed in the database with a key kept outside it.

Two secrets of the center give workstations away to whoever reads them: the center key (every
workstation's HMAC secret is derived from it, :mod:`agent_kit.center.credentials`) and the
Ed25519 private key that signs login clearances (:mod:`agent_kit.center.clearance`). They stay
in the database, so that every ``agent-center serve`` sharing one PostgreSQL uses the same ones,
but sealed: AES-256-GCM (NIST SP 800-38D) with a random 96-bit nonce and the secret's name as
associated data (a sealed value cannot be moved under another name). A copy of the database (a
backup, a dump, a stolen file) without the key gives neither secret away.

The key (32 random bytes, written as 64 hexadecimal characters) comes from:

1. the environment variable ``AGENT_CENTER_SECRETS_KEY``: the way for several hosts sharing one
   PostgreSQL (a secret store, a systemd credential), every one of them given the same value;
2. else the file ``secrets.key`` in the data dir (0600), made on the first start when there is
   none: one command still runs a center. Other hosts on the same database get a copy of it.

A stored value is ``sealed:v1:<key id>:<base64url(nonce || ciphertext || tag)>``; the key id
(12 hex characters of an HMAC of the key, which gives nothing of the key away) lets a process
started with another key refuse in one line saying so, instead of making new secrets: it never
silently replaces a secret, which would lock every enrolled workstation out.

An older center kept both secrets in plain in the same rows; the first start of this version
seals them in place (compare-and-swap, so several processes starting together agree) and
workstations keep working: their secrets derive from the same center key as before.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

log = logging.getLogger("agent_kit.center")

ENV_KEY = "AGENT_CENTER_SECRETS_KEY"
KEY_FILE_NAME = "secrets.key"
SEALED_PREFIX = "sealed:v1:"
KEY_BYTES = 32
NONCE_BYTES = 12


class SecretsKeyError(Exception):
    """The center's secrets cannot be opened; ``str()`` is the one line the operator sees."""


class SecretRows(Protocol):
    """What sealing needs of the store (``agent_kit.center.store.Store``)."""

    def secret(self, name: str, make: Callable[[], str], now: float) -> str: ...

    def replace_secret(self, name: str, old: str, new: str) -> bool: ...

    def get_secret(self, name: str) -> str | None: ...


def key_file_path(data_dir: Path) -> Path:
    return data_dir / KEY_FILE_NAME


@dataclass(frozen=True)
class SecretsKey:
    """The key that seals the center's secrets, and where it came from (for messages)."""

    key: bytes = field(repr=False)
    source: str
    made_now: Path | None = None    # the key file this start created, if it did

    @property
    def key_id(self) -> str:
        return hmac.new(self.key, b"agent-center secrets key id", hashlib.sha256).hexdigest()[:12]

    def seal(self, name: str, plain: str) -> str:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        nonce = secrets.token_bytes(NONCE_BYTES)
        sealed = AESGCM(self.key).encrypt(nonce, plain.encode("utf-8"), name.encode("utf-8"))
        text = base64.urlsafe_b64encode(nonce + sealed).decode("ascii").rstrip("=")
        return f"{SEALED_PREFIX}{self.key_id}:{text}"

    def unseal(self, name: str, stored: str) -> str:
        """The plain secret; SecretsKeyError when it was sealed with another key or damaged."""
        from cryptography.exceptions import InvalidTag
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        key_id, _, text = stored.removeprefix(SEALED_PREFIX).partition(":")
        if key_id != self.key_id:
            raise SecretsKeyError(
                f"the center's secrets in the database are sealed with the key {key_id}, this "
                f"process has the key {self.key_id} ({self.source}): every center process on "
                f"this database needs the same key: copy {KEY_FILE_NAME} from the data dir of "
                f"the host that made it, or set {ENV_KEY} to its value (docs/operations.md)")
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
            plain = AESGCM(self.key).decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:],
                                             name.encode("utf-8"))
        except (ValueError, InvalidTag):
            raise SecretsKeyError(f"the sealed center secret {name!r} in the database is "
                                  "damaged: restore the database from a backup") from None
        return plain.decode("utf-8")


def parse_key(text: str, source: str) -> bytes:
    value = text.strip()
    try:
        key = bytes.fromhex(value)
    except ValueError:
        key = b""
    if len(key) != KEY_BYTES:
        raise SecretsKeyError(f"{source} must hold 64 hexadecimal characters (32 random bytes, "
                              "e.g. from: openssl rand -hex 32)")
    return key


def load_secrets_key(data_dir: Path) -> SecretsKey:
    """``$AGENT_CENTER_SECRETS_KEY``, else the data dir's key file, made (0600) if missing."""
    if env := os.environ.get(ENV_KEY):
        return SecretsKey(parse_key(env, ENV_KEY), ENV_KEY)
    path = key_file_path(data_dir)
    try:
        return SecretsKey(parse_key(path.read_text("ascii"), str(path)), str(path))
    except FileNotFoundError:
        pass
    except (OSError, UnicodeDecodeError) as exc:
        raise SecretsKeyError(f"cannot read the secrets key {path}: {exc}") from None
    made = _make_key_file(path)
    return SecretsKey(parse_key(path.read_text("ascii"), str(path)), str(path),
                      made_now=path if made else None)


def _make_key_file(path: Path) -> bool:
    """Write a new random key to ``path`` (0600), whole or not at all; False when another
    process made it first (then its key is the one)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as fh:
            fh.write(secrets.token_hex(KEY_BYTES) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.link(tmp, path)    # fails if it exists: the first writer's key wins
        except FileExistsError:
            return False
        return True
    finally:
        tmp.unlink(missing_ok=True)


@dataclass
class OpenedSecrets:
    """What :func:`open_secret` did, for the start-up log lines."""

    sealed: list[str] = field(default_factory=list)    # plain ones of an older center, sealed


def open_secret(store: SecretRows, key: SecretsKey, name: str, make: Callable[[], str],
                now: float, opened: OpenedSecrets) -> str:
    """The named center secret in plain (kept in memory only): made and sealed on a new center,
    sealed in place when an older center left it in plain, unsealed otherwise."""
    stored = store.secret(name, lambda: key.seal(name, make()), now)  # first writer wins
    if not stored.startswith(SEALED_PREFIX):    # an older center's plain value
        if store.replace_secret(name, stored, key.seal(name, stored)):
            opened.sealed.append(name)
        found = store.get_secret(name)   # sealed by this process or by another one meanwhile
        if found is None:
            raise SecretsKeyError(f"the center secret {name!r} vanished from the database")
        stored = found
    return key.unseal(name, stored)


def log_opened(key: SecretsKey, opened: OpenedSecrets) -> None:
    """One line per thing an operator must know: a key file made, old secrets sealed."""
    if key.made_now is not None:
        log.warning("agent-center: made the secrets key %s (key %s): back it up apart from the "
                    "database; every center process on this database needs the same key "
                    "(docs/operations.md)", key.made_now, key.key_id)
    if opened.sealed:
        log.warning("agent-center: sealed %s of an older center in the database with the key "
                    "%s (%s); enrolled workstations keep working", " and ".join(opened.sealed),
                    key.key_id, key.source)


def discard_unused_key_file(key: SecretsKey) -> None:
    """Remove a key file this start made when it turned out not to be the database's key: the
    operator then copies the right one in, with no wrong file in the way."""
    if key.made_now is not None:
        key.made_now.unlink(missing_ok=True)
