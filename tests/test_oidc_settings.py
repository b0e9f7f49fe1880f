"""Single sign-on's settings and claim mapping (``center.oidc_settings``), the sealed login
cookie (``center.oidc``), and ``agent-center serve``'s refusal of bad ``--oidc-*`` options.
The flow itself runs against a real provider in tests/test_oidc_lab.py."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from agent_kit.center.api_oidc import NOT_CONFIGURED
from agent_kit.center.dashboard_text import UI_TEXT
from agent_kit.center.oidc import (
    EXPIRED,
    NO_ROLE,
    PROVIDER_DOWN,
    PROVIDER_REFUSED,
    OidcClient,
    PendingLogin,
)
from agent_kit.center.oidc_settings import OidcSettings, OidcSettingsError, oidc_settings
from agent_kit.center.settings import CenterSettings, from_env

ISSUER = "https://login.example.com/realms/cc"
REDIRECT = "https://center.example.com/auth/oidc/callback"


def _settings(*rules: str, **kw: str) -> OidcSettings:
    made = oidc_settings(kw.get("issuer", ISSUER), kw.get("client_id", "agent-center"),
                         kw.get("secret", "s3cret-value"), kw.get("redirect", REDIRECT),
                         list(rules or ("cc=viewer",)))
    assert made is not None
    return made


def test_groups_map_to_the_strongest_role_and_its_teams() -> None:
    s = _settings("north=supervisor:team-a", "south=supervisor:team-b,team-c",
                  "watch=viewer", "watch-a=viewer:team-a", "it=admin")
    assert s.role_for(frozenset({"north"})) == ("supervisor", frozenset({"team-a"}))
    assert s.role_for(frozenset({"north", "south", "watch"})) == \
        ("supervisor", frozenset({"team-a", "team-b", "team-c"}))
    assert s.role_for(frozenset({"watch-a"})) == ("viewer", frozenset({"team-a"}))
    assert s.role_for(frozenset({"watch", "watch-a"})) == ("viewer", None)   # every team
    assert s.role_for(frozenset({"it", "north"})) == ("admin", None)
    assert s.role_for(frozenset({"marketing"})) is None
    assert s.role_for(frozenset()) is None


@pytest.mark.parametrize(("change", "words"), [
    ({"issuer": "ftp://login.example.com"}, "absolute http(s) URL"),
    ({"issuer": "http://login.example.com"}, "must be https://"),
    ({"redirect": "https://center.example.com/callback"}, "must end in /auth/oidc/callback"),
    ({"redirect": "https://center.example.com/auth/oidc/callback?x=1"}, "no query"),
    ({"client_id": ""}, "--oidc-client-id"),
    ({"secret": ""}, "AGENT_CENTER_OIDC_CLIENT_SECRET"),
])
def test_bad_settings_are_refused_with_the_option_at_fault(change: dict[str, str],
                                                           words: str) -> None:
    with pytest.raises(OidcSettingsError, match=re.escape(words)):
        _settings(**change)


@pytest.mark.parametrize(("rule", "words"), [
    ("north", "GROUP=ROLE"),
    ("north=boss", "not one of admin, supervisor, viewer"),
    ("north=supervisor", "needs its teams"),
    ("it=admin:team-a", "an admin sees every team"),
    ("north=supervisor:Team A", "a team name is lowercase"),
])
def test_bad_group_rules_are_refused(rule: str, words: str) -> None:
    with pytest.raises(OidcSettingsError, match=words):
        _settings(rule)


def test_no_issuer_is_no_sso_but_other_options_alone_are_a_mistake() -> None:
    assert oidc_settings(None, None, None, None, []) is None
    with pytest.raises(OidcSettingsError, match="need --oidc-issuer"):
        oidc_settings(None, "agent-center", None, None, [])
    with pytest.raises(OidcSettingsError, match="at least one --oidc-group"):
        oidc_settings(ISSUER, "agent-center", "x", REDIRECT, [])


def test_the_secret_is_in_no_repr_and_survives_the_workers_environment(monkeypatch) -> None:
    s = _settings("north=supervisor:team-a")
    assert "s3cret-value" not in repr(s)
    center = CenterSettings(db_url="sqlite:///x.db", data_dir="/tmp/x", oidc=s)
    assert "s3cret-value" not in repr(center)
    monkeypatch.setenv("AGENT_CENTER_SETTINGS", center.to_env())
    assert from_env().oidc == s


def test_the_login_cookie_is_sealed_bound_and_expires() -> None:
    key = os.urandom(32)
    client = OidcClient(_settings(), key)
    pending = PendingLogin("state-1", "nonce-1", "v" * 64, expires_at=1000.0)
    cookie = client.seal(pending)
    assert "state-1" not in cookie and "v" * 64 not in cookie
    assert client.open(cookie, 999.0) == pending
    assert client.open(cookie, 1000.0) is None                          # expired
    assert OidcClient(_settings(), os.urandom(32)).open(cookie, 0) is None   # another center
    flipped = cookie[:-2] + ("A" if cookie[-2] != "A" else "B") + cookie[-1]
    assert client.open(flipped, 0) is None                              # altered
    assert client.open("not-base64-!!", 0) is None
    assert client.open(None, 0) is None


def test_every_refusal_sentence_is_a_dashboard_word() -> None:
    for sentence in (EXPIRED, PROVIDER_REFUSED, PROVIDER_DOWN, NO_ROLE, NOT_CONFIGURED):
        assert sentence in UI_TEXT


def test_serve_refuses_bad_sso_options_in_one_line(tmp_path: Path) -> None:
    env = {**os.environ, "AGENT_CENTER_ADMIN_TOKEN": "admin-" + uuid.uuid4().hex}
    env.pop("AGENT_CENTER_OIDC_CLIENT_SECRET", None)
    run = subprocess.run([sys.executable, "-c", "from agent_kit.center.cli import main; main()",
                          "serve", "--data-dir", str(tmp_path), "--udp-port", "0",
                          "--oidc-issuer", ISSUER, "--oidc-client-id", "agent-center",
                          "--oidc-redirect-url", REDIRECT, "--oidc-group", "cc=viewer"],
                         capture_output=True, text=True, env=env, timeout=60, check=False)
    assert run.returncode != 0
    assert "AGENT_CENTER_OIDC_CLIENT_SECRET" in run.stderr
    assert "Traceback" not in run.stderr
