"""The ``agent-center`` command: serve the center, and the IT chores that work on its database
directly (tokens, gate keys, the fleet list, retiring a workstation). Thin: parses and calls.

Text a workstation wrote (a hostname) or anyone stored (a note) is printed through
``untrusted_text.terminal_text``: control characters and escape sequences show as ``\\x1b``,
they never reach the terminal."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from agent_kit import __version__

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="The contact center's side of agent-kit.")
token_app = typer.Typer(no_args_is_help=True, help="Enrollment tokens.")
gate_app = typer.Typer(no_args_is_help=True, help="Keys for the gate API (ACD / SSO).")
user_app = typer.Typer(no_args_is_help=True, help="People: named users with a role and teams.")
app.add_typer(token_app, name="token")
app.add_typer(gate_app, name="gate-key")
app.add_typer(user_app, name="user")
policy_app = typer.Typer(no_args_is_help=True, help="The fleet's call-standards policy and "
                         "teams' overrides, versioned (workstations follow at their next "
                         "heartbeat).")
app.add_typer(policy_app, name="policy")

DbOpt = Annotated[str | None, typer.Option("--db", help="postgresql://... or a SQLite file "
                                           "(default: center.db in the data dir).")]
DataOpt = Annotated[Path | None, typer.Option("--data-dir", help="Data folder (default "
                                              "$AGENT_CENTER_DATA_DIR or "
                                              "~/.local/share/agent-center).")]


def _fail(reason: str) -> None:
    typer.echo(f"agent-center: {reason}", err=True)
    raise typer.Exit(2)


def _shown(value: object) -> str:
    """Stored text as the terminal may show it (escapes visible, never acted on)."""
    from agent_kit.center.untrusted_text import terminal_text

    return terminal_text(str(value))


def _note(note: str | None) -> str | None:
    """``--note`` as the API takes it: a line (core.wire.text), else a one-line refusal."""
    from agent_kit.core.wire.text import line_refusal

    if note is not None and (why := line_refusal(note)) is not None:
        _fail(f"--note {why}")
    return note


def _team(team: str | None, option: str = "--team") -> str | None:
    """A team name as the API takes it (``teams.team_refusal``), else a one-line refusal."""
    from agent_kit.center.teams import team_refusal

    if team is not None and (why := team_refusal(team)) is not None:
        _fail(f"{option} {team!r}: {why}")
    return team


def _by_cli(action: str, target: str | None = None, **detail: object) -> Any:
    """The audit event of a change made with these subcommands: actor ``cli:<OS user>``."""
    import getpass

    from agent_kit.center.audit import AuditEvent

    try:
        who = getpass.getuser()
    except (KeyError, OSError):
        who = str(os.getuid())
    return AuditEvent(f"cli:{who}", "local", action, target, detail)


def _settings(db: str | None, data_dir: Path | None, **kw: Any) -> Any:
    from agent_kit.center.settings import CenterSettings, default_data_dir, resolve_db_url

    folder = (data_dir or default_data_dir()).expanduser()
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as exc:
        _fail(f"cannot use data dir {folder}: {exc}")
    return CenterSettings(db_url=resolve_db_url(db, folder), data_dir=str(folder), **kw)


def _store(db: str | None, data_dir: Path | None, create: bool = False) -> Any:
    """The center's store; the admin subcommands (``create`` False) refuse a SQLite file that
    does not exist yet: a mistyped ``--data-dir`` would otherwise make tokens in, or list, an
    empty database that no ``serve`` uses."""
    from agent_kit.center.data_dir import secure_center_files
    from agent_kit.center.database import Database, DatabaseUnavailable
    from agent_kit.center.sealed_secrets import key_file_path
    from agent_kit.center.store import Store

    settings = _settings(db, data_dir)
    folder = Path(settings.data_dir)
    secure_center_files(folder, settings.db_url, key_file_path(folder))
    sqlite_file = settings.db_url.removeprefix("sqlite:///")
    if not create and settings.db_url.startswith("sqlite:///") \
            and not Path(sqlite_file).exists():
        _fail(f"no center database at {sqlite_file}: give the --data-dir (or --db) that "
              "agent-center serve uses, or start it there first")
    try:
        store = Store(Database(settings.db_url, pool_size=1))
        store.setup()
    except DatabaseUnavailable as exc:
        _fail(f"database unavailable: {exc}")
    return store


def _check_tls(cert: str, key: str) -> None:
    """Load the pair once here, so a wrong path or PEM is one line rather than a traceback."""
    import ssl

    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:
        _fail(f"cannot use --tls-cert {cert} / --tls-key {key}: {exc}")


def _check_listen(host: str, port: int) -> None:
    """Fail in one line when the TCP port is taken (uvicorn would log and exit 3)."""
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        with socket.socket(infos[0][0], socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(infos[0][4])
    except OSError as exc:
        _fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}")


def _parse_duration(text: str) -> int:
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    text = text.strip().lower()
    try:
        return int(float(text[:-1]) * units[text[-1]]) if text[-1:] in units else int(text)
    except (ValueError, KeyError):
        _fail(f"--ttl {text!r}: use seconds or a number with s/m/h/d (e.g. 24h)")
        raise


def _hostport(value: str | None, option: str) -> tuple[str, int] | None:
    from agent_kit.core.wire.addresses import parse_host_port

    if value is None:
        return None
    try:
        return parse_host_port(value)
    except ValueError as exc:
        _fail(f"{option} {exc}")
        raise


@app.callback(invoke_without_command=True)
def _root(version: Annotated[bool, typer.Option("--version", help="Print the version.")]
          = False) -> None:
    if version:
        typer.echo(f"agent-center {__version__}")
        raise typer.Exit(0)


@app.command()
def serve(db: DbOpt = None, data_dir: DataOpt = None,
          host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
          port: Annotated[int, typer.Option(help="HTTP(S) port.", min=1, max=65535)] = 8750,
          udp_port: Annotated[int, typer.Option("--udp-port", help="Path-test reflector "
                                                "port (0: no reflector).", min=0,
                                                max=65535)] = 8751,
          advertise_reflector: Annotated[str | None, typer.Option(
              "--advertise-reflector", help="HOST:PORT workstations should probe (NAT).")]
          = None,
          policy: Annotated[str | None, typer.Option(help="Call-standards TOML for the "
                                                     "fleet.")] = None,
          webhook: Annotated[str | None, typer.Option(help="URL that receives alerts.")]
          = None,
          alerts: Annotated[str | None, typer.Option(help="Alert rules and channels (TOML, "
                                                     "docs/operations.md).")] = None,
          tls_cert: Annotated[str | None, typer.Option("--tls-cert", help="Certificate "
                                                       "(PEM) to serve HTTPS.")] = None,
          tls_key: Annotated[str | None, typer.Option("--tls-key", help="Its private key "
                                                      "(PEM).")] = None,
          workers: Annotated[int, typer.Option(help="HTTP worker processes.", min=1,
                                               max=64)] = 1,
          metrics_public: Annotated[bool, typer.Option("--metrics-public", help="Serve "
                                                       "/metrics without the admin token.")]
          = False,
          heartbeat_interval: Annotated[int, typer.Option("--heartbeat-interval", help="Seconds"
                                                          " between heartbeats told to new "
                                                          "workstations.", min=1,
                                                          max=3600)] = 15,
          reports_per_hour: Annotated[int, typer.Option(
              "--reports-per-hour", help="Diagnosis reports one workstation may upload per "
              "hour.", min=1, max=10_000)] = 10,
          report_storage_mib: Annotated[int, typer.Option(
              "--report-storage-mib", help="MiB of reports kept per workstation (older ones "
              "make room; at least the 2 MiB of one report).", min=2, max=100_000)] = 20,
          request_timeout: Annotated[float, typer.Option(
              "--request-timeout", help="Seconds a client may take to send a request's "
              "headers, and its body (plus 1 s per 500 bytes).", min=1.0, max=3600.0)] = 20.0,
          bandwidth_budget_mib: Annotated[int, typer.Option(
              "--bandwidth-budget-mib", help="MiB one source address may move through the "
              "bandwidth endpoint per hour (0: no limit).", min=0, max=10_000_000)] = 4096,
          auth_failure_burst: Annotated[int, typer.Option(
              "--auth-failure-burst", help="Failed authentications one source address may "
              "make before it is refused (429).", min=1, max=100_000)] = 20,
          auth_failure_refill: Annotated[float, typer.Option(
              "--auth-failure-refill", help="Seconds after which a throttled address may try "
              "once more.", min=0.01, max=86_400.0)] = 3.0,
          forwarded_allow_ips: Annotated[str | None, typer.Option(
              "--forwarded-allow-ips", help="Proxies (comma-separated addresses) whose "
              "X-Forwarded-For/-Proto are trusted for the client's address and scheme "
              "(default: none).")] = None,
          oidc_issuer: Annotated[str | None, typer.Option(
              "--oidc-issuer", envvar="AGENT_CENTER_OIDC_ISSUER", help="Single sign-on: the "
              "OpenID Connect provider's issuer URL (its client secret: the environment "
              "variable AGENT_CENTER_OIDC_CLIENT_SECRET).")] = None,
          oidc_client_id: Annotated[str | None, typer.Option(
              "--oidc-client-id", envvar="AGENT_CENTER_OIDC_CLIENT_ID",
              help="The client id registered at the provider.")] = None,
          oidc_redirect_url: Annotated[str | None, typer.Option(
              "--oidc-redirect-url", envvar="AGENT_CENTER_OIDC_REDIRECT_URL",
              help="This center's https://HOST/auth/oidc/callback, as registered.")] = None,
          oidc_group: Annotated[list[str] | None, typer.Option(
              "--oidc-group", envvar="AGENT_CENTER_OIDC_GROUPS", help="GROUP=ROLE or "
              "GROUP=ROLE:TEAM,TEAM: members of GROUP get ROLE (admin, supervisor, viewer) "
              "for those teams (repeat the option).")] = None,
          oidc_claim: Annotated[str, typer.Option(
              "--oidc-claim", envvar="AGENT_CENTER_OIDC_CLAIM",
              help="The claim that lists a person's groups.")] = "groups",
          oidc_scopes: Annotated[str, typer.Option(
              "--oidc-scopes", envvar="AGENT_CENTER_OIDC_SCOPES",
              help="The scopes asked for (with openid).")] = "openid profile email") -> None:
    """Run the center: API, dashboard, gate, metrics, reflector and bandwidth endpoint."""
    import uvicorn

    from agent_kit.center.database import DatabaseUnavailable
    from agent_kit.center.runtime import AdminTokenRefused, env_admin_token
    from agent_kit.center.sealed_secrets import SecretsKeyError
    from agent_kit.center.settings import MIB, MULTIPROC_ENV

    try:   # before anything is opened: one line, not a traceback
        env_admin_token()
    except AdminTokenRefused as exc:
        _fail(str(exc))

    # The center sets this itself, for its workers only (workers.py); one inherited from the
    # environment would have this process count into a folder nobody cleans between starts.
    for name in (MULTIPROC_ENV, MULTIPROC_ENV.lower()):
        os.environ.pop(name, None)
    from agent_kit.core.policy import PolicyError, load_policy

    if (tls_cert is None) != (tls_key is None):
        _fail("--tls-cert and --tls-key go together")
    if tls_cert is not None and tls_key is not None:
        _check_tls(tls_cert, tls_key)
    if webhook is not None and not webhook.startswith(("http://", "https://")):
        _fail(f"--webhook {webhook!r} must be an http:// or https:// URL")
    from agent_kit.center.alert_config import AlertConfigError, load_alert_config

    try:
        load_alert_config(alerts, webhook)
    except AlertConfigError as exc:
        _fail(f"invalid alerts: {exc}")
    if policy is not None:
        try:
            load_policy(policy)
        except PolicyError as exc:
            _fail(f"invalid policy: {exc}")
    from agent_kit.center.oidc_settings import OidcSettingsError, oidc_settings

    try:
        oidc = oidc_settings(oidc_issuer, oidc_client_id,
                             os.environ.get("AGENT_CENTER_OIDC_CLIENT_SECRET"),
                             oidc_redirect_url, list(oidc_group or ()), oidc_claim, oidc_scopes)
    except OidcSettingsError as exc:
        _fail(str(exc))
    advertised = _hostport(advertise_reflector, "--advertise-reflector")
    settings = _settings(db, data_dir, policy_path=policy, webhook_url=webhook,
                         alerts_path=str(Path(alerts).resolve()) if alerts else None,
                         metrics_public=metrics_public, tls=tls_cert is not None,
                         heartbeat_interval_s=max(1, heartbeat_interval),
                         reflector_host=advertised[0] if advertised else None,
                         reflector_port=advertised[1] if advertised else udp_port,
                         reports_per_hour=reports_per_hour,
                         report_storage_bytes=report_storage_mib * MIB,
                         header_timeout_s=request_timeout, body_timeout_s=request_timeout,
                         bandwidth_budget_bytes=bandwidth_budget_mib * MIB,
                         auth_failure_burst=auth_failure_burst,
                         auth_failure_refill_s=auth_failure_refill, oidc=oidc)
    reflector = None
    if udp_port:
        from agent_kit.center.reflector import start_reflector

        try:
            reflector = start_reflector(host, udp_port)
        except OSError as exc:
            _fail(f"cannot open the reflector on UDP {host}:{udp_port}: {exc}")
    options: dict[str, Any] = {"ssl_certfile": tls_cert, "ssl_keyfile": tls_key} if tls_cert \
        else {}
    # The client's address is the socket's unless a proxy is named: it is what failed
    # authentication is throttled by, and anyone may send an X-Forwarded-For.
    options.update(proxy_headers=forwarded_allow_ips is not None,
                   forwarded_allow_ips=forwarded_allow_ips)
    scheme = "https" if tls_cert else "http"
    try:
        if workers > 1:
            _store(db, data_dir, create=True)  # migrate once, before the workers race
            os.environ["AGENT_CENTER_SETTINGS"] = settings.to_env()
            from agent_kit.center.app import asgi_app

            try:
                asgi_app(settings)  # prints the admin token once, on first start
            except SecretsKeyError as exc:
                _fail(str(exc))
            print(f"agent-center {__version__} on {scheme}://{host}:{port} "
                  f"({workers} workers)", file=sys.stderr, flush=True)
            from agent_kit.center.workers import serve_workers

            try:
                status = serve_workers(host, port, workers, options)
            except OSError as exc:
                _fail(f"cannot listen on {host}:{port}: {exc}")
            if status:
                raise typer.Exit(status)
        else:
            from agent_kit.center.app import asgi_app

            _check_listen(host, port)
            try:
                served = asgi_app(settings)
            except DatabaseUnavailable as exc:
                _fail(f"database unavailable: {exc}")
            except SecretsKeyError as exc:
                _fail(str(exc))
            print(f"agent-center {__version__} on {scheme}://{host}:{port}, reflector "
                  f"udp/{udp_port or 'off'}, data {settings.data_dir}", file=sys.stderr,
                  flush=True)
            from agent_kit.center.read_deadlines import deadline_protocol

            uvicorn.run(served, host=host, port=port, log_level="warning", access_log=False,
                        http=deadline_protocol(settings.read_limits), **options)
    finally:
        if reflector is not None:
            reflector.close()


@app.command()
def reflector(host: Annotated[str, typer.Option(help="Address to listen on.")] = "0.0.0.0",
              port: Annotated[int, typer.Option(help="UDP port.", min=1, max=65535)] = 8751
              ) -> None:
    """Run only the UDP path-test reflector (an edge site)."""
    from agent_kit.center.reflector import main as reflector_main

    raise typer.Exit(reflector_main(["--host", host, "--port", str(port)]))


@token_app.command("create")
def token_create(db: DbOpt = None, data_dir: DataOpt = None,
                 uses: Annotated[int, typer.Option(min=1, max=100_000)] = 1,
                 ttl: Annotated[str, typer.Option(help="Lifetime: 3600, 30m, 24h, 7d.")]
                 = "24h",
                 note: Annotated[str | None, typer.Option(max=200)] = None,
                 team: Annotated[str | None, typer.Option(
                     help="Team/site every workstation enrolled with it joins.")] = None,
                 json_out: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Make an enrollment token (shown once)."""
    ttl_s = _parse_duration(ttl)
    if not 60 <= ttl_s <= 366 * 86400:
        _fail("--ttl must be between 1 minute and 366 days")
    token, token_id, expires = _store(db, data_dir).create_token(
        uses, ttl_s, _note(note), time.time(), _team(team), _by_cli("token.create"))
    if json_out:
        typer.echo(json.dumps({"token": token, "token_id": token_id, "expires_at": expires,
                               "team": team}))
    else:
        typer.echo(token)
        typer.echo(f"(id {token_id}, {uses} use(s), expires "
                   f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(expires))})", err=True)


@token_app.command("list")
def token_list(db: DbOpt = None, data_dir: DataOpt = None) -> None:
    """Enrollment tokens: id, uses, expiry, revoked."""
    now = time.time()
    for t in _store(db, data_dir).tokens():
        state = "revoked" if t.revoked_at else "expired" if t.expires_at <= now else \
            "used up" if t.uses >= t.uses_max else "active"
        expires = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(t.expires_at))
        team = f"team {t.team}  " if t.team else ""
        typer.echo(f"{t.token_id}  {t.uses}/{t.uses_max}  {state:8}  expires {expires}  "
                   f"{team}{_shown(t.note or '')}".rstrip())


@token_app.command("revoke")
def token_revoke(token_id: str, db: DbOpt = None, data_dir: DataOpt = None) -> None:
    """Revoke an enrollment token."""
    if not _store(db, data_dir).revoke_token(token_id, time.time(),
                                             _by_cli("token.revoke", token_id)):
        _fail(f"no token {token_id!r}")
    typer.echo(f"token {token_id} revoked")


@gate_app.command("create")
def gate_key_create(db: DbOpt = None, data_dir: DataOpt = None,
                    note: Annotated[str | None, typer.Option()] = None) -> None:
    """Make a key for the gate API (shown once)."""
    key, key_id = _store(db, data_dir).create_gate_key(_note(note), time.time(),
                                                       _by_cli("gate_key.create"))
    typer.echo(key)
    typer.echo(f"(id {key_id})", err=True)


@gate_app.command("list")
def gate_key_list(db: DbOpt = None, data_dir: DataOpt = None) -> None:
    """Gate keys: id, created, active or revoked, note (never the key itself)."""
    for key_id, note, created_at, revoked_at in _store(db, data_dir).gate_keys():
        created = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(created_at))
        state = "revoked" if revoked_at is not None else "active"
        typer.echo(f"{key_id}  {state:7}  created {created}  {_shown(note or '')}".rstrip())


@gate_app.command("revoke")
def gate_key_revoke(key_id: str, db: DbOpt = None, data_dir: DataOpt = None) -> None:
    """Revoke a gate key (a leaked ACD/SSO key): refused from the next request on."""
    if not _store(db, data_dir).revoke_gate_key(key_id, time.time(),
                                                _by_cli("gate_key.revoke", key_id)):
        _fail(f"no gate key {key_id!r}")
    typer.echo(f"gate key {key_id} revoked")


TeamOpt = Annotated[str | None, typer.Option("--team", help="A team's override instead of "
                                             "the fleet's policy.")]


def _comment(comment: str | None) -> str | None:
    from agent_kit.core.wire.text import line_refusal

    if comment is not None and (why := line_refusal(comment)) is not None:
        _fail(f"--comment {why}")
    return comment


def _policy_db(db: str | None, data_dir: Path | None, team: str | None = None) -> Any:
    from agent_kit.center.teams import team_refusal

    if team is not None and (why := team_refusal(team)) is not None:
        _fail(f"--team: {why}")
    return _store(db, data_dir).db


@policy_app.command("show")
def policy_show(db: DbOpt = None, data_dir: DataOpt = None, team: TeamOpt = None,
                version: Annotated[int | None, typer.Option("--version", min=1,
                                                            help="A stored version.")] = None,
                effective: Annotated[bool, typer.Option(
                    "--effective", help="The layers a workstation (of --team) merges over the "
                    "default, with their tag.")] = False,
                json_out: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Print the active policy text of the fleet (or of --team), or a stored --version."""
    from agent_kit.center import policy_versions as pv
    from agent_kit.center.api_policy import document

    store_db = _policy_db(db, data_dir, team)
    if effective:
        doc = document(pv.effective_for(store_db, team))
        if json_out:
            typer.echo(json.dumps(doc))
        else:
            typer.echo(f"# effective policy {doc['name']} ({doc['version']}), tag {doc['tag']}")
            for layer in doc["layers"]:
                where = "fleet" if layer["team"] is None else f"team {layer['team']}"
                typer.echo(f"# --- {where}, version {layer['version_id']}")
                typer.echo(_shown_text(layer["toml"]))
        return
    row = pv.get_version(store_db, version) if version is not None else         pv.active_version(store_db, team)
    if row is None:
        if version is not None:
            _fail(f"no policy version {version}")
        if team is not None:
            _fail(f"team {team!r} has no policy override: it runs the fleet's")
        typer.echo(_shown_text(pv.default_policy_text()) if not json_out else
                   json.dumps({"version_id": None, "toml": pv.default_policy_text()}))
        typer.echo("(no fleet version stored: the shipped default policy)", err=True)
        return
    if json_out:
        typer.echo(json.dumps({"version_id": row.version_id, "team": row.team,
                               "toml": row.toml, "tag": row.tag, "author": row.author,
                               "comment": row.comment, "created_at": row.created_at}))
        return
    typer.echo(_shown_text(row.toml or "") if row.toml is not None else
               f"(version {row.version_id}: team {row.team}'s override removed)")


def _shown_text(text: str) -> str:
    """A policy's text for the terminal: its lines kept, escape sequences shown, not run."""
    from agent_kit.center.untrusted_text import terminal_text

    return "\n".join(terminal_text(line) for line in text.splitlines())


@policy_app.command("set")
def policy_set(file: Annotated[str, typer.Argument(help="The TOML file ('-': standard "
                                                   "input).")],
               db: DbOpt = None, data_dir: DataOpt = None, team: TeamOpt = None,
               comment: Annotated[str | None, typer.Option(max=500)] = None) -> None:
    """Store FILE as the new active version (validated first; exit 2 with the reason if it is
    refused, nothing stored)."""
    from agent_kit.center import policy_versions as pv

    try:
        text = sys.stdin.read() if file == "-" else Path(file).read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        _fail(f"cannot read {file}: {exc}")
    if "\x00" in text:
        _fail("invalid policy: it contains NUL characters")
    try:
        event = _by_cli("policy.change")
        row = pv.add_version(_policy_db(db, data_dir, team), team, text, author=event.actor,
                             comment=_comment(comment), now=time.time(), audit=event)
    except pv.PolicyRefused as exc:
        _fail(f"invalid policy: {exc}")
    assert row is not None
    typer.echo(f"policy version {row.version_id} active for "
               f"{'the fleet' if team is None else 'team ' + _shown(team)}")


@policy_app.command("unset")
def policy_unset(team: Annotated[str, typer.Option("--team", help="The team.")],
                 db: DbOpt = None, data_dir: DataOpt = None,
                 comment: Annotated[str | None, typer.Option(max=500)] = None) -> None:
    """Remove a team's override (recorded as a version): the team runs the fleet's policy."""
    from agent_kit.center import policy_versions as pv

    event = _by_cli("policy.change")
    row = pv.add_version(_policy_db(db, data_dir, team), team, None, author=event.actor,
                         comment=_comment(comment), now=time.time(), audit=event)
    assert row is not None
    typer.echo(f"policy version {row.version_id}: team {_shown(team)} runs the fleet's policy")


@policy_app.command("history")
def policy_history(db: DbOpt = None, data_dir: DataOpt = None, team: TeamOpt = None,
                   every: Annotated[bool, typer.Option("--all", help="Every scope.")] = False,
                   json_out: Annotated[bool, typer.Option("--json")] = False) -> None:
    """The versions, newest first: id, when, who, scope, comment."""
    from agent_kit.center import policy_versions as pv

    rows = pv.list_versions(_policy_db(db, data_dir, team), team, every_scope=every)
    if json_out:
        typer.echo(json.dumps([{"version_id": r.version_id, "team": r.team, "tag": r.tag,
                                "author": r.author, "comment": r.comment,
                                "created_at": r.created_at, "rollback_of": r.rollback_of,
                                "removed": r.toml is None} for r in rows]))
        return
    for r in rows:
        when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(r.created_at))
        scope = "fleet" if r.team is None else f"team {_shown(r.team)}"
        what = " (override removed)" if r.toml is None else \
            f" (rollback to {r.rollback_of})" if r.rollback_of else ""
        typer.echo(f"{r.version_id:>5}  {when}  {_shown(r.author)}  {scope}{what}  "
                   f"{_shown(r.comment or '')}".rstrip())


@policy_app.command("rollback")
def policy_rollback(version: Annotated[int, typer.Argument(min=1, help="The version whose "
                                                           "text becomes active again.")],
                    db: DbOpt = None, data_dir: DataOpt = None,
                    comment: Annotated[str | None, typer.Option(max=500)] = None) -> None:
    """Make VERSION's text active again in its scope, recorded as a new version."""
    from agent_kit.center import policy_versions as pv

    try:
        event = _by_cli("policy.rollback")
        row = pv.roll_back(_policy_db(db, data_dir), version, author=event.actor,
                           comment=_comment(comment), now=time.time(), audit=event)
    except LookupError:
        _fail(f"no policy version {version}")
    except pv.PolicyRefused as exc:
        _fail(f"version {version} cannot be active again: {exc}")
    typer.echo(f"policy version {row.version_id} active (the text of version {version})")


@app.command()
def agents(db: DbOpt = None, data_dir: DataOpt = None,
           team: Annotated[str | None, typer.Option(help="Only this team's.")] = None,
           json_out: Annotated[bool, typer.Option("--json")] = False) -> None:
    """The fleet: every workstation with its team, state and what fails."""
    from agent_kit.center.fleet import agent_view
    from agent_kit.center.store import AgentFilter

    now = time.time()
    total, counts, rows = _store(db, data_dir).overview(AgentFilter(team=_team(team)),
                                                        "hostname", None, 0, now)
    views = [agent_view(r, now) for r in rows]
    if json_out:
        typer.echo(json.dumps({"total": total, "counts": counts, "agents": views}, indent=2))
        return
    for v in views:
        ready = {True: "ready", False: "NOT READY", None: "-"}[v["ready"]]  # type: ignore[index]
        failing = ",".join(v["failing"])  # type: ignore[arg-type]
        typer.echo(f"{_shown(v['agent_id'])}  {_shown(v['hostname']):24}  "
                   f"{v['team'] or '-':12}  {v['state']:10}  {ready:9}  {_shown(failing)}")
    typer.echo(f"{total} workstation(s): " + ", ".join(f"{k} {n}" for k, n in counts.items()),
               err=True)


@app.command()
def retire(agent_id: str, db: DbOpt = None, data_dir: DataOpt = None) -> None:
    """Revoke a workstation's credential (takes effect within 30 s on running centers)."""
    if not _store(db, data_dir).retire(agent_id, time.time(),
                                       _by_cli("agent.retire", agent_id)):
        _fail(f"no workstation {agent_id!r}")
    typer.echo(f"workstation {agent_id} retired")


@app.command()
def move(agent_id: str, db: DbOpt = None, data_dir: DataOpt = None,
         team: Annotated[str | None, typer.Option(help="The team/site it joins.")] = None,
         no_team: Annotated[bool, typer.Option("--no-team", help="Take it out of any team.")]
         = False) -> None:
    """Move a workstation to another team (--team NAME) or out of any (--no-team)."""
    if (team is None) == (not no_team):
        _fail("give either --team NAME or --no-team")
    if not _store(db, data_dir).set_team(agent_id, _team(team), time.time(),
                                         _by_cli("agent.move", agent_id)):
        _fail(f"no workstation {agent_id!r}")
    typer.echo(f"workstation {agent_id} moved to " + (f"team {team}" if team else "no team"))


@app.command()
def audit(db: DbOpt = None, data_dir: DataOpt = None,
          since: Annotated[str | None, typer.Option(help="Only events this recent: 3600, "
                                                    "30m, 24h, 7d.")] = None,
          actor: Annotated[str | None, typer.Option(help="Only this actor (user:sue, "
                                                    "admin-token, cli:root).")] = None,
          action: Annotated[str | None, typer.Option(help="Only this action "
                                                     "(token.create, agent.retire, ...).")]
          = None,
          limit: Annotated[int, typer.Option(min=1, max=100_000)] = 100,
          json_out: Annotated[bool, typer.Option("--json")] = False) -> None:
    """The audit log, newest first: who did what, when, from where."""
    from agent_kit.center.audit import AUDIT_ACTIONS, AuditFilter

    if action is not None and action not in AUDIT_ACTIONS:
        _fail(f"--action {action!r}: one of {', '.join(AUDIT_ACTIONS)}")
    now = time.time()
    flt = AuditFilter(since=now - _parse_duration(since) if since else None, actor=actor,
                      action=action)
    total, rows = _store(db, data_dir).audit_events(flt, limit, 0)
    if json_out:
        typer.echo(json.dumps({"total": total, "events": [
            {"event_id": e.event_id, "at": e.at, "actor": e.actor, "source": e.source,
             "action": e.action, "target": e.target, "detail": e.detail} for e in rows]},
            indent=2, ensure_ascii=False))
        return
    for e in rows:
        at = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(e.at))
        detail = json.dumps(e.detail, ensure_ascii=False, sort_keys=True) if e.detail else ""
        typer.echo(f"{at}  {_shown(e.actor)}  {e.action}  {_shown(e.target or '-')}  "
                   f"{_shown(e.source)}  {_shown(detail)}".rstrip())
    typer.echo(f"{len(rows)} of {total} event(s)", err=True)


RoleOpt = Annotated[str, typer.Option(help="admin, supervisor or viewer.")]
TeamsOpt = Annotated[list[str] | None, typer.Option(
    "--team", help="A team the user sees (repeat for several); a supervisor needs one, a "
    "viewer without any sees every team.")]


def _grant(role: str, teams: list[str] | None) -> tuple[str, tuple[str, ...] | None]:
    from agent_kit.center.api_users import grant_refusal

    if role not in ("admin", "supervisor", "viewer"):
        _fail(f"--role {role!r}: use admin, supervisor or viewer")
    found = tuple(sorted({_team(t) or "" for t in teams})) if teams else None
    if (why := grant_refusal(role, found)) is not None:
        _fail(why)
    return role, found


def _user_name(name: str) -> str:
    import re

    from agent_kit.center.models import USER_NAME_PATTERN

    if re.fullmatch(USER_NAME_PATTERN, name) is None:
        _fail(f"user name {name!r}: 1 to 64 characters of a-z 0-9 . _ @ -, starting with a "
              "letter or digit")
    return name


@user_app.command("create")
def user_create(name: str, role: RoleOpt, db: DbOpt = None, data_dir: DataOpt = None,
                team: TeamsOpt = None,
                note: Annotated[str | None, typer.Option(max=200)] = None) -> None:
    """Make a user with a role and teams; prints their key once (for the dashboard login and
    as Bearer)."""
    grant = _grant(role, team)
    made = _store(db, data_dir).create_user(_user_name(name), *grant, _note(note), time.time(),
                                            _by_cli("user.create"))
    if made is None:
        _fail(f"there is a user named {name} already")
    typer.echo(made[1])
    typer.echo(f"(user {name}, {role}" + (f", teams {', '.join(grant[1])})" if grant[1]
                                           else ")"), err=True)


@user_app.command("list")
def user_list(db: DbOpt = None, data_dir: DataOpt = None) -> None:
    """Users: name, role, teams, note (never a key)."""
    for u in _store(db, data_dir).users():
        teams = ",".join(u.teams) if u.teams is not None else "every team"
        typer.echo(f"{u.name}  {u.role:10}  {teams}  {_shown(u.note or '')}".rstrip())


@user_app.command("set")
def user_set(name: str, role: RoleOpt, db: DbOpt = None, data_dir: DataOpt = None,
             team: TeamsOpt = None) -> None:
    """Give a user another role and teams (their sessions follow at their next request)."""
    store = _store(db, data_dir)
    old = store.user(_user_name(name))
    if old is None:
        _fail(f"no user {name!r}")
    grant = _grant(role, team)
    store.change_user(name, *grant, old.note, time.time(), _by_cli("user.change"))
    typer.echo(f"user {name} is now {role}" + (f" of {', '.join(grant[1])}" if grant[1] else ""))


@user_app.command("new-key")
def user_new_key(name: str, db: DbOpt = None, data_dir: DataOpt = None) -> None:
    """A new key for a user (printed once); the old key and its sessions stop at once."""
    key = _store(db, data_dir).new_user_key(_user_name(name), time.time(),
                                            _by_cli("user.new_key", name))
    if key is None:
        _fail(f"no user {name!r}")
    typer.echo(key)


@user_app.command("delete")
def user_delete(name: str, db: DbOpt = None, data_dir: DataOpt = None) -> None:
    """Delete a user: their key and sessions stop at once."""
    if not _store(db, data_dir).delete_user(_user_name(name), time.time(),
                                            _by_cli("user.delete", name)):
        _fail(f"no user {name!r}")
    typer.echo(f"user {name} deleted")


def main() -> None:
    try:
        from typer._click.exceptions import NoArgsIsHelpError, UsageError
    except ImportError:  # pragma: no cover
        from click.exceptions import NoArgsIsHelpError, UsageError  # type: ignore

    try:
        code = app(standalone_mode=False)
    except NoArgsIsHelpError as exc:
        typer.echo(exc.ctx.get_help() if exc.ctx is not None else "agent-center --help")
        sys.exit(0)
    except UsageError as exc:
        typer.echo(f"agent-center: {exc.format_message()}", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:
        from agent_kit.center.database import DatabaseFull, DatabaseUnavailable

        if not isinstance(exc, DatabaseUnavailable):
            raise
        what = "database disk full" if isinstance(exc, DatabaseFull) else "database unavailable"
        typer.echo(f"agent-center: {what}: {exc}", err=True)
        sys.exit(1)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
