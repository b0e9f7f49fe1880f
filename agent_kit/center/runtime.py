"""The live parts of one center process, built once by the app factory: database, store,
intake writer, metrics, clearance signer, admin credential, policy, alerting."""

from __future__ import annotations

import logging
import os
import secrets
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from agent_kit.center import credentials
from agent_kit.center.alert_config import AlertConfig, load_alert_config
from agent_kit.center.clearance import SECRET_NAME, ClearanceSigner, new_private_pem
from agent_kit.center.data_dir import secure_center_files
from agent_kit.center.database import Database
from agent_kit.center.intake import IntakeWriter
from agent_kit.center.metrics import CenterMetrics
from agent_kit.center.sealed_secrets import (
    OpenedSecrets,
    SecretsKeyError,
    discard_unused_key_file,
    key_file_path,
    load_secrets_key,
    log_opened,
    open_secret,
)
from agent_kit.center.settings import CenterSettings
from agent_kit.center.store import Store
from agent_kit.center.throttle import SourceBudgets
from agent_kit.center.policy_versions import PolicyBook, seed_from_serve

log = logging.getLogger("agent_kit.center")

ADMIN_HASH = "admin_token_sha256"
CENTER_KEY = "center_key_hex"
AUTH_CACHE_S = 30.0  # a retirement reaches other processes within this
SWEEP_MARGIN_S = 600.0  # retirements looked back over, beyond the last sweep
ADMIN_TOKEN_MIN_CHARS = 32
ADMIN_TOKEN_MAX_CHARS = 200   # the longest bearer token auth.py reads
USED_SIGNATURE_SWEEP_S = 60.0  # how often this process forgets expired used signatures


class AdminTokenRefused(ValueError):
    """``AGENT_CENTER_ADMIN_TOKEN`` is too short (or too long) to be the admin credential."""


def env_admin_token() -> str | None:
    """``AGENT_CENTER_ADMIN_TOKEN`` when set; raises :class:`AdminTokenRefused` unless it has
    32 to 200 characters (a short one can be guessed, and the dashboard's login is public)."""
    token = os.environ.get("AGENT_CENTER_ADMIN_TOKEN")
    if not token:
        return None
    if not ADMIN_TOKEN_MIN_CHARS <= len(token) <= ADMIN_TOKEN_MAX_CHARS:
        raise AdminTokenRefused(
            f"AGENT_CENTER_ADMIN_TOKEN has {len(token)} characters; it needs "
            f"{ADMIN_TOKEN_MIN_CHARS} to {ADMIN_TOKEN_MAX_CHARS} (e.g. python3 -c "
            "'import secrets; print(secrets.token_urlsafe(32))')")
    return token


def ensure_admin_token(store: Store, now: float) -> str | None:
    """Make the admin token on first start (returned once, to be printed); None if one exists or
    ``AGENT_CENTER_ADMIN_TOKEN`` provides it."""
    if env_admin_token():
        return None
    if store.get_secret(ADMIN_HASH) is not None:
        return None
    token = credentials.new_token("adm", 32)
    store.set_secret(ADMIN_HASH, credentials.token_hash(token), now)
    return token


def reset_admin_token(store: Store, now: float) -> str:
    token = credentials.new_token("adm", 32)
    store.set_secret(ADMIN_HASH, credentials.token_hash(token), now)
    return token


def open_center_secrets(store: Store, data_dir: Path,
                        now: float) -> tuple[bytes, ClearanceSigner]:
    """The center key and the clearance signer, sealed in the database with the secrets key
    (:mod:`agent_kit.center.sealed_secrets`): made on a new center, sealed in place on one an
    older version left in plain."""
    key = load_secrets_key(data_dir)
    opened = OpenedSecrets()
    try:
        center_key = bytes.fromhex(open_secret(store, key, CENTER_KEY,
                                               lambda: secrets.token_hex(32), now, opened))
        signer = ClearanceSigner.from_pem(open_secret(store, key, SECRET_NAME,
                                                      new_private_pem, now, opened))
    except SecretsKeyError:
        discard_unused_key_file(key)
        raise
    log_opened(key, opened)
    return center_key, signer


@dataclass
class CenterRuntime:
    settings: CenterSettings
    db: Database
    store: Store
    intake: IntakeWriter
    metrics: CenterMetrics
    signer: ClearanceSigner
    center_key: bytes
    admin_hash: str
    policies: PolicyBook   # the fleet's and teams' policies (center.policy_versions)
    alerting: AlertConfig = field(default_factory=AlertConfig)
    # agent_id -> (secret, retired). A secret never changes for an agent id (its nonce is fixed
    # at enrollment); only retirement does, so entries are kept and dropped by a sweep for
    # retirements made elsewhere (other processes, the CLI) every AUTH_CACHE_S.
    _auth_cache: dict[str, tuple[str, bool]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    started_at: float = field(default_factory=time.time)
    _swept_at: float = field(default_factory=time.monotonic)
    _sweep_from: float | None = None
    _sweeping: bool = False
    # Failed authentication per source address (auth.py); per process, see throttle.py.
    failures: SourceBudgets = field(default_factory=lambda: SourceBudgets(20, 1 / 3.0))
    _used_swept_at: float = 0.0

    @property
    def now(self) -> float:
        return self.settings.now()

    def cached_agent_auth(self, agent_id: str) -> tuple[str, bool] | None:
        return self._auth_cache.get(agent_id)

    def agent_auth(self, agent_id: str) -> tuple[str, bool] | None:
        """``(secret, retired)`` for a workstation (then cached), None if unknown."""
        found = self.store.agent_auth(agent_id)
        if found is None:
            return None
        nonce, retired = found
        secret = credentials.derive_secret(self.center_key, agent_id, nonce)
        if len(self._auth_cache) > 200_000:
            self._auth_cache.clear()
        self._auth_cache[agent_id] = (secret, retired)
        return secret, retired

    def sweep_due(self) -> bool:
        """Time for :meth:`sweep_retired` (and nobody runs it yet); claims it if so."""
        with self._lock:
            if self._sweeping or time.monotonic() - self._swept_at < AUTH_CACHE_S:
                return False
            self._sweeping = True
            return True

    def sweep_retired(self) -> None:
        """Drop cached credentials of workstations retired since the last sweep (with a
        margin for clocks and for lookups that raced a retirement). Runs off the event loop."""
        try:
            wall = self.now
            since = self._sweep_from if self._sweep_from is not None else self.started_at
            for agent_id in self.store.retired_since(since - SWEEP_MARGIN_S):
                self._auth_cache.pop(agent_id, None)
            self._sweep_from = wall
        finally:
            with self._lock:
                self._swept_at = time.monotonic()
                self._sweeping = False

    def forget_agent(self, agent_id: str) -> None:
        self._auth_cache.pop(agent_id, None)

    def admin_token_valid(self, token: str) -> bool:
        return credentials.same_secret(credentials.token_hash(token), self.admin_hash)

    @property
    def session_tag(self) -> str:
        """What a dashboard session is bound to: derived from the admin token's hash, so a new
        admin token (``AGENT_CENTER_ADMIN_TOKEN``) ends every session made with the old one."""
        return credentials.token_hash("dashboard-session:" + self.admin_hash)[:32]

    def used_signature_sweep_due(self) -> bool:
        """Time to forget expired used signatures (about once a minute per process)."""
        with self._lock:
            now = time.monotonic()
            if now - self._used_swept_at < USED_SIGNATURE_SWEEP_S:
                return False
            self._used_swept_at = now
            return True

    def close(self) -> None:
        self.intake.stop()
        self.db.close()


def build_runtime(settings: CenterSettings) -> CenterRuntime:
    """Open the database (its files the owner's only), migrate it, open the center's sealed
    secrets; raises SecretsKeyError (one line) when they cannot be opened, AlertConfigError
    when the alerts file is wrong."""
    env_token = env_admin_token()   # refused before anything is opened
    alerting = load_alert_config(settings.alerts_path, settings.webhook_url)
    data_dir = Path(settings.data_dir)
    secure_center_files(data_dir, settings.db_url, key_file_path(data_dir))
    db = Database(settings.db_url, pool_size=4 if settings.db_url.startswith("sqlite") else 8)
    store = Store(db)
    store.setup()
    now = settings.now()
    try:
        center_key, signer = open_center_secrets(store, data_dir, now)
    except BaseException:
        db.close()
        raise
    new_token = ensure_admin_token(store, now)
    if new_token:  # printed once, to the terminal, never to the log
        print(f"agent-center: admin token (shown once, keep it safe): {new_token}",
              file=sys.stderr, flush=True)
    admin_hash = credentials.token_hash(env_token) if env_token else store.get_secret(ADMIN_HASH)
    assert admin_hash is not None
    try:   # the serve --policy file becomes the fleet's version when it differs
        seed_from_serve(db, settings.policy_path, now)
    except BaseException:
        db.close()
        raise
    metrics = CenterMetrics(store, settings.now)
    intake = IntakeWriter(db, on_commit=metrics.count_commit)
    return CenterRuntime(settings=settings, db=db, store=store, intake=intake, metrics=metrics,
                         signer=signer,
                         center_key=center_key, admin_hash=admin_hash,
                         policies=PolicyBook(db, store.agent_team),
                         alerting=alerting,
                         failures=SourceBudgets(settings.auth_failure_burst,
                                                1 / settings.auth_failure_refill_s))
