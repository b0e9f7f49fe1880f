"""Single sign-on: the OpenID Connect authorization code flow with PKCE, the center as the
client (``api_oidc.py`` has its two routes; ``oidc_settings.py`` what it is configured with).

1. :meth:`OidcClient.begin`: a fresh ``state``, ``nonce`` and PKCE ``code_verifier`` (S256,
   RFC 7636, ``authlib``); the browser is sent to the provider's authorization endpoint (from
   its discovery document) and keeps the three in a login cookie, sealed (AES-256-GCM with a
   key derived from the center key, so every process and host of the center can open it and
   nobody else can read or forge it) and valid for ten minutes.
2. :meth:`OidcClient.finish`: the provider sends the browser back with ``code`` and ``state``;
   the state must be the cookie's (else 400: a forged or stale answer); the code is exchanged
   at the token endpoint with the client secret and the verifier (a code is single use at the
   provider: a replayed one is refused there); the ID token is validated with ``joserfc``:
   signature by a key of the provider's JWKS, ``iss``, ``aud`` (and ``azp``), ``exp``, ``iat``,
   ``nonce``. The groups claim is read from the ID token, else from the userinfo endpoint.

What comes out is an :class:`Identity`; the route maps its groups to a role and teams and
starts a dashboard session (``auth.start_session``), or refuses and records why.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import os
import secrets
import time
from dataclasses import dataclass
from typing import Any

import httpx
from authlib.common.security import generate_token
from authlib.common.urls import add_params_to_uri
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from agent_kit.center.oidc_settings import OidcSettings

log = logging.getLogger("agent_kit.center")
LOGIN_COOKIE = "agent_center_oidc"
LOGIN_MAX_AGE_S = 600
DISCOVERY_TTL_S = 3600
HTTP_TIMEOUT_S = 10.0
CLOCK_LEEWAY_S = 60
ID_TOKEN_ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256",
                       "ES384", "ES512", "EdDSA"]


class OidcRefused(Exception):
    """The sign-in cannot go on. ``status`` and ``code`` are the HTTP answer's, ``reason`` a
    dashboard sentence (``dashboard_text.UI_TEXT``), ``detail`` the technical cause (logged and
    audited; never a secret), ``subject`` the person when the provider already said who."""

    def __init__(self, status: int, code: str, reason: str, detail: str,
                 subject: str | None = None) -> None:
        super().__init__(detail)
        self.status, self.code, self.reason, self.detail = status, code, reason, detail
        self.subject = subject


# The sentences a refused person reads (translated: dashboard_text.UI_TEXT lists them).
EXPIRED = "This sign-in expired or was started in another window. Please sign in again."
PROVIDER_REFUSED = ("The identity provider did not confirm who you are, or its answer could "
                    "not be verified. Please sign in again.")
PROVIDER_DOWN = "The identity provider cannot be reached. Please try again later."
NO_ROLE = ("You are signed in at the identity provider, but none of your groups gives you a "
           "role on this center. Ask IT to add you to one.")


@dataclass(frozen=True)
class Identity:
    """Who the provider says signed in: ``sub`` (stable, the audit names ``oidc:<sub>``),
    their groups (the configured claim), and a name or e-mail for the audit's detail."""

    sub: str
    groups: frozenset[str]
    name: str | None

    @property
    def subject(self) -> str:
        return f"oidc:{self.sub}"


@dataclass(frozen=True)
class PendingLogin:
    state: str
    nonce: str
    verifier: str
    expires_at: float


@dataclass(frozen=True)
class Provider:
    """What the discovery document says (``/.well-known/openid-configuration``)."""

    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    userinfo_endpoint: str | None


class OidcClient:
    """The center's client of one provider, per process (discovery and keys cached)."""

    def __init__(self, settings: OidcSettings, center_key: bytes,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.settings = settings
        self._seal = AESGCM(hmac.new(center_key, b"oidc-login-cookie", hashlib.sha256).digest())
        self._transport = transport
        self._provider: tuple[float, Provider] | None = None
        self._keys: KeySet | None = None

    # -- the login cookie ----------------------------------------------------------------
    def seal(self, pending: PendingLogin) -> str:
        nonce = os.urandom(12)
        plain = json.dumps({"s": pending.state, "n": pending.nonce, "v": pending.verifier,
                            "e": pending.expires_at}).encode()
        return base64.urlsafe_b64encode(nonce + self._seal.encrypt(nonce, plain, b"oidc")
                                        ).decode().rstrip("=")

    def open(self, cookie: str | None, now: float) -> PendingLogin | None:
        """The pending login of a cookie, None if absent, forged, altered or expired."""
        if not cookie or len(cookie) > 1000:
            return None
        try:
            raw = base64.urlsafe_b64decode(cookie + "=" * (-len(cookie) % 4))
            data = json.loads(self._seal.decrypt(raw[:12], raw[12:], b"oidc"))
            pending = PendingLogin(str(data["s"]), str(data["n"]), str(data["v"]),
                                   float(data["e"]))
        except (ValueError, KeyError, TypeError, InvalidTag):
            return None
        return pending if pending.expires_at > now else None

    # -- the provider --------------------------------------------------------------------
    def _http(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(timeout=HTTP_TIMEOUT_S, transport=self._transport,
                                 follow_redirects=False)

    async def provider(self) -> Provider:
        """The discovery document (cached an hour); 502 when it cannot be had or is not the
        configured issuer's."""
        if self._provider is not None and time.monotonic() - self._provider[0] < DISCOVERY_TTL_S:
            return self._provider[1]
        url = self.settings.issuer.rstrip("/") + "/.well-known/openid-configuration"
        try:
            async with self._http() as http:
                answer = await http.get(url)
            answer.raise_for_status()
            doc = answer.json()
            if doc.get("issuer") != self.settings.issuer:
                raise ValueError(f"its issuer is {doc.get('issuer')!r}, not the configured "
                                 f"{self.settings.issuer!r}")
            methods = doc.get("code_challenge_methods_supported")
            if methods is not None and "S256" not in methods:
                raise ValueError("it does not support PKCE with S256")
            found = Provider(str(doc["authorization_endpoint"]), str(doc["token_endpoint"]),
                             str(doc["jwks_uri"]), doc.get("userinfo_endpoint"))
        except (httpx.HTTPError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise OidcRefused(502, "oidc_unavailable", PROVIDER_DOWN,
                              f"discovery at {url} failed: {exc}") from None
        self._provider = (time.monotonic(), found)
        return found

    async def _key_set(self, refresh: bool) -> KeySet:
        if self._keys is not None and not refresh:
            return self._keys
        provider = await self.provider()
        try:
            async with self._http() as http:
                answer = await http.get(provider.jwks_uri)
            answer.raise_for_status()
            self._keys = KeySet.import_key_set(answer.json())
        except (httpx.HTTPError, ValueError, JoseError, TypeError) as exc:
            raise OidcRefused(502, "oidc_unavailable", PROVIDER_DOWN,
                              f"the provider's keys ({provider.jwks_uri}) failed: {exc}") from None
        return self._keys

    # -- the flow ------------------------------------------------------------------------
    async def begin(self, now: float) -> tuple[str, PendingLogin]:
        """Where to send the browser, and what its login cookie keeps."""
        provider = await self.provider()
        pending = PendingLogin(secrets.token_urlsafe(24), secrets.token_urlsafe(24),
                               generate_token(64), now + LOGIN_MAX_AGE_S)
        s = self.settings
        url = add_params_to_uri(provider.authorization_endpoint, [
            ("response_type", "code"), ("client_id", s.client_id),
            ("redirect_uri", s.redirect_url), ("scope", s.scopes), ("state", pending.state),
            ("nonce", pending.nonce),
            ("code_challenge", create_s256_code_challenge(pending.verifier)),
            ("code_challenge_method", "S256")])
        return url, pending

    async def finish(self, pending: PendingLogin | None, state: str | None, code: str | None,
                     error: str | None, now: float) -> Identity:
        """The identity of a provider's answer (the callback's query), or :class:`OidcRefused`."""
        if pending is None or not state or not hmac.compare_digest(
                state.encode(), pending.state.encode()):
            raise OidcRefused(400, "bad_state", EXPIRED, "the state is not the one this browser "
                              "was sent with (or the login cookie is missing or expired)")
        if error:
            raise OidcRefused(401, "oidc_refused", PROVIDER_REFUSED,
                              f"the provider answered error={error[:100]!r}")
        if not code or len(code) > 2000:
            raise OidcRefused(400, "bad_code", PROVIDER_REFUSED, "the answer has no code")
        tokens = await self._exchange(code, pending.verifier)
        claims = await self._validated_claims(tokens, pending.nonce, now)
        groups = claims.get(self.settings.claim)
        if groups is None and isinstance(tokens.get("access_token"), str):
            groups = (await self._userinfo(tokens["access_token"], claims["sub"])
                      ).get(self.settings.claim)
        name = claims.get("email") or claims.get("preferred_username") or claims.get("name")
        return Identity(str(claims["sub"]), _group_set(groups),
                        str(name)[:200] if name else None)

    async def _exchange(self, code: str, verifier: str) -> dict[str, Any]:
        provider = await self.provider()
        s = self.settings
        try:
            async with self._http() as http:
                answer = await http.post(provider.token_endpoint, data={
                    "grant_type": "authorization_code", "code": code,
                    "redirect_uri": s.redirect_url, "code_verifier": verifier},
                    auth=(s.client_id, s.client_secret),
                    headers={"Accept": "application/json"})
        except httpx.HTTPError as exc:
            raise OidcRefused(502, "oidc_unavailable", PROVIDER_DOWN,
                              f"the token endpoint failed: {type(exc).__name__}") from None
        try:
            body = answer.json()
        except ValueError:
            body = {}
        if answer.status_code != 200 or not isinstance(body, dict) or "id_token" not in body:
            why = body.get("error") if isinstance(body, dict) else None
            raise OidcRefused(401, "oidc_refused", PROVIDER_REFUSED,
                              f"the token endpoint refused the code: HTTP {answer.status_code} "
                              f"{str(why)[:100] if why else ''}".rstrip())
        return body

    async def _validated_claims(self, tokens: dict[str, Any], nonce: str,
                                now: float) -> dict[str, Any]:
        s = self.settings
        id_token = tokens["id_token"]
        if not isinstance(id_token, str):
            raise OidcRefused(401, "oidc_refused", PROVIDER_REFUSED, "the ID token is no JWT")
        try:
            try:
                token = jwt.decode(id_token, await self._key_set(False),
                                   algorithms=ID_TOKEN_ALGORITHMS)
            except JoseError:   # perhaps signed by a key rotated in since: fetch them again
                token = jwt.decode(id_token, await self._key_set(True),
                                   algorithms=ID_TOKEN_ALGORITHMS)
            jwt.JWTClaimsRegistry(
                now=int(now), leeway=CLOCK_LEEWAY_S,
                iss={"essential": True, "value": s.issuer},
                aud={"essential": True, "value": s.client_id},
                sub={"essential": True}, exp={"essential": True}, iat={"essential": True},
                nonce={"essential": True, "value": nonce}).validate(token.claims)
        except (JoseError, ValueError) as exc:
            raise OidcRefused(401, "oidc_refused", PROVIDER_REFUSED,
                              f"the ID token is not valid: {type(exc).__name__}: {exc}") from None
        claims = dict(token.claims)
        aud = claims.get("aud")
        if isinstance(aud, list) and len(aud) > 1 and claims.get("azp") != s.client_id:
            raise OidcRefused(401, "oidc_refused", PROVIDER_REFUSED,
                              "the ID token is for several audiences and azp is not this center")
        if not isinstance(claims.get("sub"), str) or not claims["sub"]:
            raise OidcRefused(401, "oidc_refused", PROVIDER_REFUSED, "the ID token has no sub")
        return claims

    async def _userinfo(self, access_token: str, sub: str) -> dict[str, Any]:
        provider = await self.provider()
        if provider.userinfo_endpoint is None:
            return {}
        try:
            async with self._http() as http:
                answer = await http.get(provider.userinfo_endpoint,
                                        headers={"Authorization": f"Bearer {access_token}"})
            answer.raise_for_status()
            info = answer.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise OidcRefused(502, "oidc_unavailable", PROVIDER_DOWN,
                              f"the userinfo endpoint failed: {type(exc).__name__}") from None
        if not isinstance(info, dict) or info.get("sub") != sub:   # OIDC Core 5.3.2
            raise OidcRefused(401, "oidc_refused", PROVIDER_REFUSED,
                              "the userinfo answer is not the ID token's subject")
        return info


def _group_set(value: object) -> frozenset[str]:
    """The groups claim as a set: a list of strings, or one string."""
    if isinstance(value, str):
        return frozenset((value,))
    if isinstance(value, list):
        return frozenset(str(v) for v in value if isinstance(v, str | int))
    return frozenset()
