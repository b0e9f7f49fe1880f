"""Login clearances: a short-lived compact JWS (EdDSA, Ed25519, RFC 8037) saying "agent X may
log in", which an ACD/SSO or the agent itself verifies offline with the public key from
``GET /api/v1/clearance-key``. The key pair is made once and kept in the database (shared by
every center process on one PostgreSQL).

A caller that sends a ``nonce`` with its gate request gets it back signed in the clearance (the
``nonce`` claim, as OpenID Connect Core 1.0 section 2 binds an ID token to its request): a
clearance made for an earlier request cannot be replayed as the answer to this one.
``agent-kit login`` always sends one; the ACD/SSO may, or may not.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

CLEARANCE_TTL_S = 120
# A gate request's nonce: what secrets.token_urlsafe makes (RFC 4648 section 5 alphabet), long
# enough to be unguessable, short enough to bound what is signed.
NONCE_PATTERN = r"^[A-Za-z0-9_-]{16,128}$"
SECRET_NAME = "clearance_ed25519_private_pem"


def new_private_pem() -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    return Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()).decode()


@dataclass(frozen=True)
class ClearanceSigner:
    private_key: Any
    public_pem: str

    @classmethod
    def from_pem(cls, pem: str) -> ClearanceSigner:
        from cryptography.hazmat.primitives import serialization

        key = serialization.load_pem_private_key(pem.encode(), password=None)
        public = key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
        return cls(key, public)

    def sign(self, agent_id: str, now: float, nonce: str | None = None) -> str:
        """The clearance for ``agent_id`` issued at ``now``; with the request's ``nonce`` when
        it sent one (checked against :data:`NONCE_PATTERN` by the gate route)."""
        import jwt

        iat = int(now)
        claims: dict[str, Any] = {"sub": agent_id, "allowed": True, "iat": iat,
                                  "exp": iat + CLEARANCE_TTL_S}
        if nonce is not None:
            claims["nonce"] = nonce
        return jwt.encode(claims, self.private_key, algorithm="EdDSA")


def verify_clearance(token: str, public_pem: str, agent_id: str | None = None,
                     nonce: str | None = None) -> dict[str, Any]:
    """Decode and verify a clearance (signature, expiry, subject, and the nonce when one is
    given); raises ``jwt.PyJWTError``."""
    import hmac

    import jwt

    claims: dict[str, Any] = jwt.decode(token, public_pem, algorithms=["EdDSA"],
                                        options={"require": ["sub", "iat", "exp"]})
    if agent_id is not None and claims.get("sub") != agent_id:
        raise jwt.InvalidTokenError("clearance is for another agent")
    if claims.get("allowed") is not True:
        raise jwt.InvalidTokenError("clearance does not allow")
    if nonce is not None and not (isinstance(claims.get("nonce"), str) and hmac.compare_digest(
            claims["nonce"].encode(), nonce.encode())):
        raise jwt.InvalidTokenError("clearance is not for this request (nonce)")
    return claims
