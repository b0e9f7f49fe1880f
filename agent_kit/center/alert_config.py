"""The center's alert rules and channels: a TOML file (``agent-center serve --alerts FILE``),
validated at start with one clear line per mistake.

```toml
language = "en"                 # the words of chat and email messages (en, ja, ko, sv)
check_every = "5s"              # how often the rules are evaluated

[[rule]]
name = "offline-10m"            # shown in every message and the webhook's "rule"
kind = "offline"                # a workstation offline for `for`
for = "10m"

[[rule]]
name = "isp-outage"
kind = "check_failing"          # one check failing on many workstations at once
at_least = 5                    # workstations, and/or
percent = 20                    # % of the workstations seen in `window`
window = "5m"
for = "1m"

[[channel]]
name = "it-chat"
kind = "chat"                   # Slack-compatible incoming webhook: {"text": ...}
url_env = "IT_CHAT_WEBHOOK"     # the URL (it holds a token) from the environment
```

Secrets (webhook URLs, the SMTP password) may be given in the file or, better, named by an
environment variable (``url_env``, ``password_env``); they are kept out of every ``repr`` and
log line. ``agent-center serve --webhook URL`` adds a generic webhook channel named
``webhook``; with no rule in the file (or no file) the :data:`DEFAULT_RULES` apply.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from agent_kit.center.teams import team_refusal
from agent_kit.core.checks import BY_ID
from agent_kit.core.i18n import SUPPORTED

RULE_KINDS = ("offline", "workstation_not_ready", "not_ready", "check_failing")
CHANNEL_KINDS = ("webhook", "chat", "email")
SECURITIES = ("starttls", "ssl", "none")
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(s|m|h|d)?")
_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


class AlertConfigError(ValueError):
    """The alerts file (or an option that adds to it) is wrong; the text says where and why."""


@dataclass(frozen=True)
class Rule:
    """One alert rule. ``for_s``: how long its condition must hold before an incident opens;
    ``recover_for_s``: how long it must be gone before the incident is resolved."""

    name: str
    kind: str
    for_s: float = 0.0
    recover_for_s: float = 0.0
    above: int = 0                   # not_ready: more than this many workstations
    at_least: int | None = None      # check_failing: this many workstations ...
    percent: float | None = None     # ... or this share of those seen within the window
    window_s: float = 0.0            # check_failing: a workstation seen this recently counts
    checks: tuple[str, ...] = ()     # check_failing: only these check ids (empty: every one)
    team: str | None = None          # only this team's workstations
    per_team: bool = False           # one incident per team instead of one for the scope
    channels: tuple[str, ...] = ()   # where it is delivered (empty: every channel)


@dataclass(frozen=True)
class Channel:
    """Where incidents are delivered. ``url``: webhook and chat; the rest: email (SMTP)."""

    name: str
    kind: str
    url: str | None = field(default=None, repr=False)
    host: str | None = None
    port: int = 0
    security: str = "starttls"
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    sender: str | None = None
    recipients: tuple[str, ...] = ()
    ca_file: str | None = None        # the CA that signs the SMTP server's certificate (PEM),
                                      # when not one of the system's


@dataclass(frozen=True)
class DeliveryPolicy:
    """How hard a delivery is tried. Each *round* makes up to ``attempts`` tries (``timeout_s``
    each, ``backoff_s`` doubling with jitter between them); a round that failed transiently is
    repeated after ``retry_s`` (doubling, at most ``retry_max_s``) until ``give_up_s`` after
    the incident's event, then the delivery is marked failed."""

    attempts: int = 3
    timeout_s: float = 5.0
    backoff_s: float = 0.5
    retry_s: float = 30.0
    retry_max_s: float = 600.0
    give_up_s: float = 6 * 3600.0

    @property
    def lease_s(self) -> float:
        """How long a process may hold a delivery it claimed before another may take it over
        (it died mid-send): longer than any round can take."""
        from agent_kit.center.alert_channels import WAIT_MAX_S

        return self.attempts * (2 * self.timeout_s + WAIT_MAX_S) + 30.0


@dataclass(frozen=True)
class AlertConfig:
    rules: tuple[Rule, ...] = ()
    channels: tuple[Channel, ...] = ()
    language: str = "en"
    check_every_s: float | None = None       # None: the settings' alert_period_s
    delivery: DeliveryPolicy = DeliveryPolicy()

    def rule(self, name: str) -> Rule | None:
        return next((r for r in self.rules if r.name == name), None)

    def channel(self, name: str) -> Channel | None:
        return next((c for c in self.channels if c.name == name), None)

    def channels_of(self, rule: Rule) -> tuple[str, ...]:
        return rule.channels or tuple(c.name for c in self.channels)


# With channels but no rule: a workstation offline (at once, as the fleet view calls it) and a
# workstation that cannot take calls, each one incident per workstation, as `--webhook` always
# alerted.
DEFAULT_RULES = (Rule(name="offline", kind="offline"),
                 Rule(name="not-ready", kind="workstation_not_ready"))


def parse_duration(value: object, where: str) -> float:
    """``"90s"``, ``"10m"``, ``"1.5h"``, ``"2d"`` or a number of seconds."""
    if isinstance(value, bool):
        raise AlertConfigError(f"{where}: a duration such as \"90s\", \"10m\" or \"1h\"")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and (m := _DURATION.fullmatch(value.strip().lower())):
        seconds = float(m.group(1)) * _UNITS[m.group(2)]
    else:
        raise AlertConfigError(f"{where}: {value!r} is not a duration such as \"90s\", "
                               "\"10m\" or \"1h\"")
    if not 0 <= seconds <= 366 * 86400:
        raise AlertConfigError(f"{where}: between 0 s and 366 days")
    return seconds


def load_alert_config(path: str | None, webhook_url: str | None = None,
                      environ: Mapping[str, str] | None = None) -> AlertConfig:
    """The alert configuration of ``path`` (None: none) plus ``--webhook``; raises
    :class:`AlertConfigError` with the reason."""
    data: dict[str, Any] = {}
    if path is not None:
        try:
            with open(path, "rb") as fh:
                data = tomllib.load(fh)
        except OSError as exc:
            raise AlertConfigError(f"cannot read {path}: {exc.strerror or exc}") from None
        except tomllib.TOMLDecodeError as exc:
            raise AlertConfigError(f"{path}: not TOML: {exc}") from None
    return alert_config(data, webhook_url, os.environ if environ is None else environ)


def alert_config(data: Mapping[str, Any], webhook_url: str | None = None,
                 environ: Mapping[str, str] | None = None) -> AlertConfig:
    """:func:`load_alert_config` of a parsed document."""
    env = os.environ if environ is None else environ
    _only(data, {"language", "check_every", "rule", "channel", "delivery"}, "the alerts file")
    language = data.get("language", "en")
    if language not in SUPPORTED:
        raise AlertConfigError(f"language: {language!r}; one of {', '.join(SUPPORTED)}")
    check_every = data.get("check_every")
    check_every_s = None if check_every is None else parse_duration(check_every, "check_every")
    if check_every_s is not None and not 0.05 <= check_every_s <= 3600:
        raise AlertConfigError("check_every: between 0.05 s and 1 h")
    channels = [_channel(c, i, env) for i, c in enumerate(_tables(data, "channel"))]
    if webhook_url is not None:
        channels.append(_channel({"name": "webhook", "kind": "webhook", "url": webhook_url},
                                 len(channels), env, where="--webhook"))
    _unique([c.name for c in channels], "channel")
    rules = [_rule(r, i) for i, r in enumerate(_tables(data, "rule"))]
    _unique([r.name for r in rules], "rule")
    names = {c.name for c in channels}
    for rule in rules:
        for name in rule.channels:
            if name not in names:
                raise AlertConfigError(f"rule {rule.name!r}: no channel named {name!r}")
    if channels and not rules:
        rules = list(DEFAULT_RULES)
    return AlertConfig(rules=tuple(rules), channels=tuple(channels), language=language,
                       check_every_s=check_every_s,
                       delivery=_delivery(data.get("delivery", {})))


def _tables(data: Mapping[str, Any], key: str) -> list[Mapping[str, Any]]:
    value = data.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, Mapping) for v in value):
        raise AlertConfigError(f"{key}: write each one as a [[{key}]] table")
    return value


def _only(table: Mapping[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise AlertConfigError(f"{where}: unknown key {unknown[0]!r} (known: "
                               f"{', '.join(sorted(allowed))})")


def _unique(names: list[str], what: str) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise AlertConfigError(f"two {what}s are named {name!r}")
        seen.add(name)


def _name(table: Mapping[str, Any], where: str) -> str:
    name = table.get("name")
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise AlertConfigError(f"{where}: name: letters, digits, '-', '_' or '.', at most 64 "
                               "(e.g. \"offline-10m\")")
    return name


def _int(table: Mapping[str, Any], key: str, where: str, low: int, high: int) -> int | None:
    value = table.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise AlertConfigError(f"{where}: {key}: a whole number from {low} to {high}")
    return value


def _text(table: Mapping[str, Any], key: str, where: str) -> str | None:
    value = table.get(key)
    if value is not None and (not isinstance(value, str) or not value or len(value) > 500):
        raise AlertConfigError(f"{where}: {key}: a text of 1 to 500 characters")
    return value


def _names(table: Mapping[str, Any], key: str, where: str) -> tuple[str, ...]:
    value = table.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise AlertConfigError(f"{where}: {key}: a list of names, e.g. [\"a\", \"b\"]")
    return tuple(value)


def _rule(table: Mapping[str, Any], index: int) -> Rule:
    where = f"rule {index + 1}"
    name = _name(table, where)
    where = f"rule {name!r}"
    kind = table.get("kind")
    if kind not in RULE_KINDS:
        raise AlertConfigError(f"{where}: kind: one of {', '.join(RULE_KINDS)}")
    common = {"name", "kind", "for", "recover_for", "team", "per_team", "channels"}
    extra = {"offline": set(), "workstation_not_ready": set(), "not_ready": {"above"},
             "check_failing": {"at_least", "percent", "window", "checks"}}[kind]
    _only(table, common | extra, where)
    team = _text(table, "team", where)
    if team is not None and (why := team_refusal(team)) is not None:
        raise AlertConfigError(f"{where}: team: {why}")
    per_team = table.get("per_team", False)
    if not isinstance(per_team, bool):
        raise AlertConfigError(f"{where}: per_team: true or false")
    if team is not None and per_team:
        raise AlertConfigError(f"{where}: team and per_team exclude each other")
    if per_team and kind in ("offline", "workstation_not_ready"):
        raise AlertConfigError(f"{where}: per_team counts per team: it is for the not_ready "
                               "and check_failing rules (these are per workstation already)")
    rule = Rule(name=name, kind=kind, for_s=parse_duration(table.get("for", 0), f"{where}: for"),
                recover_for_s=parse_duration(table.get("recover_for", 0),
                                             f"{where}: recover_for"),
                team=team, per_team=per_team, channels=_names(table, "channels", where))
    if kind == "not_ready":
        above = _int(table, "above", where, 0, 1_000_000)
        if above is None:
            raise AlertConfigError(f"{where}: above: how many not-ready workstations are "
                                   "still fine (the incident opens above it)")
        return _replace(rule, above=above)
    if kind == "check_failing":
        at_least = _int(table, "at_least", where, 1, 1_000_000)
        percent = table.get("percent")
        if percent is not None and (isinstance(percent, bool)
                                    or not isinstance(percent, int | float)
                                    or not 0 < percent <= 100):
            raise AlertConfigError(f"{where}: percent: more than 0, at most 100")
        if at_least is None and percent is None:
            raise AlertConfigError(f"{where}: give at_least (workstations) or percent (of "
                                   "those seen within the window), or both")
        checks = _names(table, "checks", where)
        for check_id in checks:
            if check_id not in BY_ID:
                raise AlertConfigError(f"{where}: checks: no check {check_id!r}")
        return _replace(rule, at_least=at_least,
                        percent=None if percent is None else float(percent),
                        window_s=parse_duration(table.get("window", 0), f"{where}: window"),
                        checks=checks)
    return rule


def _replace(rule: Rule, **changes: Any) -> Rule:
    from dataclasses import replace

    return replace(rule, **changes)


def _secret(table: Mapping[str, Any], key: str, where: str, env: Mapping[str, str]
            ) -> str | None:
    """``key`` as given, or from the environment variable ``key_env`` names."""
    direct, var = table.get(key), table.get(f"{key}_env")
    if direct is not None and var is not None:
        raise AlertConfigError(f"{where}: {key} and {key}_env exclude each other")
    if var is not None:
        if not isinstance(var, str) or not var:
            raise AlertConfigError(f"{where}: {key}_env: the name of an environment variable")
        value = env.get(var)
        if not value:
            raise AlertConfigError(f"{where}: {key}_env: the environment variable {var} is "
                                   "not set")
        return value
    if direct is not None and (not isinstance(direct, str) or not direct):
        raise AlertConfigError(f"{where}: {key}: a text")
    return direct


def _channel(table: Mapping[str, Any], index: int, env: Mapping[str, str],
             where: str | None = None) -> Channel:
    where = where or f"channel {index + 1}"
    name = _name(table, where)
    where = where if where == "--webhook" else f"channel {name!r}"
    kind = table.get("kind")
    if kind not in CHANNEL_KINDS:
        raise AlertConfigError(f"{where}: kind: one of {', '.join(CHANNEL_KINDS)}")
    if kind in ("webhook", "chat"):
        _only(table, {"name", "kind", "url", "url_env"}, where)
        url = _secret(table, "url", where, env)
        # never the URL itself in the message: it may hold the chat's token
        if url is None or not url.startswith(("http://", "https://")):
            raise AlertConfigError(f"{where}: url (or url_env): an http:// or https:// URL")
        return Channel(name=name, kind=kind, url=url)
    _only(table, {"name", "kind", "host", "port", "security", "username", "password",
                  "password_env", "from", "to", "ca_file"}, where)
    host = _text(table, "host", where)
    if host is None:
        raise AlertConfigError(f"{where}: host: the SMTP server")
    security = table.get("security", "starttls")
    if security not in SECURITIES:
        raise AlertConfigError(f"{where}: security: one of {', '.join(SECURITIES)}")
    port = _int(table, "port", where, 1, 65535) or {"starttls": 587, "ssl": 465,
                                                    "none": 25}[security]
    username = _text(table, "username", where)
    password = _secret(table, "password", where, env)
    if (username is None) != (password is None):
        raise AlertConfigError(f"{where}: username and password (or password_env) go "
                               "together")
    sender = _text(table, "from", where)
    if sender is None or "@" not in sender:
        raise AlertConfigError(f"{where}: from: the sender's address")
    recipients = _names(table, "to", where)
    if not recipients or not all("@" in r for r in recipients):
        raise AlertConfigError(f"{where}: to: a list of addresses, e.g. [\"it@example.com\"]")
    ca_file = _text(table, "ca_file", where)
    if ca_file is not None:
        try:
            import ssl

            ssl.create_default_context(cafile=ca_file)
        except (OSError, ssl.SSLError) as exc:
            raise AlertConfigError(f"{where}: ca_file: cannot use {ca_file}: "
                                   f"{getattr(exc, 'strerror', None) or exc}") from None
    if username is not None and security == "none":
        raise AlertConfigError(f"{where}: a password is never sent without TLS: security "
                               "\"starttls\" or \"ssl\"")
    return Channel(name=name, kind=kind, host=host, port=port, security=security,
                   username=username, password=password, sender=sender, recipients=recipients,
                   ca_file=ca_file)


def _delivery(table: object) -> DeliveryPolicy:
    if not isinstance(table, Mapping):
        raise AlertConfigError("delivery: a [delivery] table")
    where = "delivery"
    _only(table, {"attempts", "timeout", "backoff", "retry", "retry_max", "give_up_after"},
          where)
    d = DeliveryPolicy()
    attempts = _int(table, "attempts", where, 1, 10)
    policy = DeliveryPolicy(
        attempts=attempts if attempts is not None else d.attempts,
        timeout_s=parse_duration(table.get("timeout", d.timeout_s), f"{where}: timeout"),
        backoff_s=parse_duration(table.get("backoff", d.backoff_s), f"{where}: backoff"),
        retry_s=parse_duration(table.get("retry", d.retry_s), f"{where}: retry"),
        retry_max_s=parse_duration(table.get("retry_max", d.retry_max_s),
                                   f"{where}: retry_max"),
        give_up_s=parse_duration(table.get("give_up_after", d.give_up_s),
                                 f"{where}: give_up_after"))
    if not 0.1 <= policy.timeout_s <= 120:
        raise AlertConfigError(f"{where}: timeout: between 0.1 s and 2 min")
    if policy.backoff_s > 60:
        raise AlertConfigError(f"{where}: backoff: at most 1 min")
    return policy
