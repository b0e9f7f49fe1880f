"""What a center is told about its OpenID Connect provider (``agent-center serve --oidc-*``):
the issuer, the client registered there, the redirect URL, and which group gives which role.

Checked when the center starts (:func:`oidc_settings`), each mistake in one sentence
(:class:`OidcSettingsError`): an issuer or redirect URL that is not an absolute https URL
(http only on the loopback), a group rule that does not parse, a supervisor without a team.
The client secret is kept out of every ``repr`` (and so out of logs and tracebacks).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from agent_kit.center.principals import PERSON_ROLES, Role
from agent_kit.center.teams import team_refusal

CALLBACK_PATH = "/auth/oidc/callback"
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
DEFAULT_SCOPES = "openid profile email"
DEFAULT_CLAIM = "groups"
# The strongest role wins when a person is in several mapped groups.
ROLE_RANK: dict[str, int] = {"viewer": 0, "supervisor": 1, "admin": 2}


class OidcSettingsError(ValueError):
    """The OpenID Connect settings cannot work; ``str()`` says which one and why."""


@dataclass(frozen=True)
class GroupRule:
    """Members of ``group`` (a value of the groups claim) get ``role``, limited to ``teams``
    (empty: every team, for an admin or a viewer)."""

    group: str
    role: Role
    teams: tuple[str, ...] = ()

    @classmethod
    def parse(cls, text: str) -> GroupRule:
        """``GROUP=ROLE`` or ``GROUP=ROLE:TEAM[,TEAM...]`` (``--oidc-group``)."""
        group, sep, rest = text.partition("=")
        group = group.strip()
        if not sep or not group:
            raise OidcSettingsError(f"--oidc-group {text!r}: write GROUP=ROLE or "
                                    "GROUP=ROLE:TEAM,TEAM")
        role, _, team_text = rest.partition(":")
        role = role.strip()
        if role not in PERSON_ROLES:
            raise OidcSettingsError(f"--oidc-group {text!r}: the role {role!r} is not one of "
                                    f"{', '.join(PERSON_ROLES)}")
        teams = tuple(t.strip() for t in team_text.split(",") if t.strip())
        return cls(group, role, teams)

    def check(self) -> None:
        for team in self.teams:
            if (why := team_refusal(team)) is not None:
                raise OidcSettingsError(f"--oidc-group {self.group}: {team!r}: {why}")
        if self.role == "supervisor" and not self.teams:
            raise OidcSettingsError(f"--oidc-group {self.group}=supervisor needs its teams "
                                    f"(GROUP=supervisor:TEAM,TEAM): a supervisor sees only "
                                    "their teams")
        if self.role == "admin" and self.teams:
            raise OidcSettingsError(f"--oidc-group {self.group}=admin: an admin sees every "
                                    "team; give no teams")


@dataclass(frozen=True)
class OidcSettings:
    issuer: str
    client_id: str
    client_secret: str = field(repr=False)
    redirect_url: str
    groups: tuple[GroupRule, ...]
    claim: str = DEFAULT_CLAIM
    scopes: str = DEFAULT_SCOPES

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> OidcSettings:
        """From ``dataclasses.asdict`` (the settings a worker process is given)."""
        return cls(**{**data, "groups": tuple(GroupRule(g["group"], g["role"], tuple(g["teams"]))
                                              for g in data["groups"])})

    def role_for(self, groups: frozenset[str]) -> tuple[Role, frozenset[str] | None] | None:
        """The role and teams of a person in ``groups`` (None: in no mapped group). The
        strongest role of the matching rules; the union of their teams (None: every team,
        when one of them gives none)."""
        matching = [rule for rule in self.groups if rule.group in groups]
        if not matching:
            return None
        best = max(ROLE_RANK[rule.role] for rule in matching)
        chosen = [rule for rule in matching if ROLE_RANK[rule.role] == best]
        role = chosen[0].role
        if role == "admin" or any(not rule.teams for rule in chosen):
            return role, None
        return role, frozenset(team for rule in chosen for team in rule.teams)


def _check_url(option: str, url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise OidcSettingsError(f"{option} {url!r} is not an absolute http(s) URL")
    if parts.scheme == "http" and parts.hostname not in LOOPBACK_HOSTS:
        raise OidcSettingsError(f"{option} {url!r} must be https:// (http only on the "
                                "loopback, for a lab)")
    if parts.query or parts.fragment:
        raise OidcSettingsError(f"{option} {url!r} takes no query or fragment")


def oidc_settings(issuer: str | None, client_id: str | None, client_secret: str | None,
                  redirect_url: str | None, group_rules: list[str], claim: str = DEFAULT_CLAIM,
                  scopes: str = DEFAULT_SCOPES) -> OidcSettings | None:
    """The checked settings; None when no issuer is given (no single sign-on). Raises
    :class:`OidcSettingsError` with the option at fault."""
    if not issuer:
        if client_id or redirect_url or group_rules:
            raise OidcSettingsError("--oidc-client-id, --oidc-redirect-url and --oidc-group "
                                    "need --oidc-issuer")
        return None
    _check_url("--oidc-issuer", issuer)
    if not client_id:
        raise OidcSettingsError("--oidc-issuer needs --oidc-client-id (the client registered "
                                "at the provider)")
    if not client_secret:
        raise OidcSettingsError("--oidc-issuer needs the client's secret in the environment "
                                "variable AGENT_CENTER_OIDC_CLIENT_SECRET")
    if not redirect_url:
        raise OidcSettingsError(f"--oidc-issuer needs --oidc-redirect-url (this center's "
                                f"https://HOST{CALLBACK_PATH}, as registered at the provider)")
    _check_url("--oidc-redirect-url", redirect_url)
    if urlsplit(redirect_url).path != CALLBACK_PATH:
        raise OidcSettingsError(f"--oidc-redirect-url {redirect_url!r} must end in "
                                f"{CALLBACK_PATH}")
    if not group_rules:
        raise OidcSettingsError("--oidc-issuer needs at least one --oidc-group GROUP=ROLE: "
                                "nobody could sign in")
    rules = tuple(GroupRule.parse(text) for text in group_rules)
    for rule in rules:
        rule.check()
    if not claim.strip():
        raise OidcSettingsError("--oidc-claim is empty")
    if "openid" not in scopes.split():
        raise OidcSettingsError(f"--oidc-scopes {scopes!r} must include openid")
    return OidcSettings(issuer=issuer, client_id=client_id, client_secret=client_secret,
                        redirect_url=redirect_url, groups=rules, claim=claim.strip(),
                        scopes=" ".join(scopes.split()))
