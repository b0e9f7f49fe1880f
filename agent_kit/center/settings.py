"""What one center process is configured with: where its data lives, what it advertises.

The CLI builds a :class:`CenterSettings`; the app factory takes one. Several uvicorn workers get
it through the ``AGENT_CENTER_SETTINGS`` environment variable (JSON), see :func:`from_env`.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from platformdirs.unix import Unix

from agent_kit.center.oidc_settings import OidcSettings
from agent_kit.core.wire import heartbeat, signing

if TYPE_CHECKING:
    from agent_kit.center.read_deadlines import ReadLimits

MIB = 1024 * 1024
# prometheus_client's variable: the folder where each worker process of ``serve --workers N``
# keeps its counters (made by workers.py, read by metrics.py).
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
# The center's clock; tests inject their own (one time source, injectable).
Clock = Callable[[], float]


def default_data_dir() -> Path:
    """``$AGENT_CENTER_DATA_DIR``, else the XDG data folder: ``$XDG_DATA_HOME/agent-center`` or
    ``~/.local/share/agent-center``."""
    if env := os.environ.get("AGENT_CENTER_DATA_DIR"):
        return Path(env)
    # platformdirs' XDG (Unix) class on every OS, not the OS's own: a center has always kept its
    # data there, on macOS and Windows too, and an existing center must find its database.
    return Unix(appname="agent-center").user_data_path


def resolve_db_url(db: str | None, data_dir: Path) -> str:
    """``--db`` as given (``postgresql://...`` or a SQLite path/``sqlite:///path``), else the
    embedded SQLite file in the data dir."""
    if not db:
        return f"sqlite:///{data_dir / 'center.db'}"
    if db.startswith(("postgresql://", "postgres://", "sqlite:///")):
        return db
    return f"sqlite:///{Path(db).expanduser().resolve()}"


@dataclass(frozen=True)
class CenterSettings:
    db_url: str
    data_dir: str
    reflector_host: str | None = None        # advertised; None = "the host you reached me on"
    reflector_port: int = 8751
    policy_path: str | None = None
    webhook_url: str | None = None           # a generic webhook channel ("webhook")
    alerts_path: str | None = None           # alert rules and channels (alert_config.py)
    metrics_public: bool = False
    heartbeat_interval_s: int = 15           # told to workstations at enrollment
    body_limit_bytes: int = heartbeat.MAX_BODY_BYTES
    report_limit_bytes: int = 2 * MIB
    clock_window_s: int = signing.CLOCK_WINDOW_S   # accepted distance of a signed timestamp
    alert_period_s: float = 5.0              # how often the alert rules are evaluated
    tls: bool = False                        # session cookie gets Secure
    serve_dashboard: bool = True
    mount_speedtest: bool = True
    test_call: bool = True                   # offer the scored test call (needs visqol-python)
    # Hostile clients (docs/operations.md "Limits"): failed authentication per source address
    # (a burst, then one more attempt every refill period), diagnosis reports per workstation,
    # how long a request's headers and body may take, bytes of the bandwidth endpoint per
    # source address and hour (0: no budget).
    auth_failure_burst: int = 20
    auth_failure_refill_s: float = 3.0
    reports_per_hour: int = 10
    report_storage_bytes: int = 20 * MIB
    header_timeout_s: float = 20.0
    body_timeout_s: float = 20.0             # plus one second per body_min_rate_bps bytes
    body_min_rate_bps: int = 500
    bandwidth_budget_bytes: int = 4096 * MIB
    test_calls_per_hour: int = 30            # scored test calls per source address (0: no budget)
    oidc: OidcSettings | None = None         # single sign-on (oidc_settings.py); None: off
    now: Clock = field(default=time.time, compare=False, repr=False)

    def to_env(self) -> str:
        data = asdict(self)
        data.pop("now")
        return json.dumps(data)

    @property
    def read_limits(self) -> ReadLimits:
        """How long a client may take to send a request (``read_deadlines.py``)."""
        from agent_kit.center.read_deadlines import ReadLimits

        return ReadLimits(self.header_timeout_s, self.body_timeout_s, self.body_min_rate_bps)

    def with_(self, **changes: object) -> CenterSettings:
        return replace(self, **changes)  # type: ignore[arg-type]


def from_env() -> CenterSettings:
    """The settings a uvicorn worker process was started with."""
    raw = os.environ.get("AGENT_CENTER_SETTINGS")
    if not raw:
        data_dir = default_data_dir()
        return CenterSettings(db_url=resolve_db_url(None, data_dir), data_dir=str(data_dir))
    data = json.loads(raw)
    if data.get("oidc") is not None:
        data["oidc"] = OidcSettings.from_json(data["oidc"])
    return CenterSettings(**data)
