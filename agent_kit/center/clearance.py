"""Login clearances: a short-lived compact JWS (EdDSA, Ed25519, RFC 8037) saying "agent X may
log in", which an ACD/SSO or the agent itself verifies offline with the public key from
``GET /api/v1/clearance-key``. The key pair is made once and kept in the database (shared by
every center process on one PostgreSQL).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

CLEARANCE_TTL_S = 120
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

    def sign(self, agent_id: str, now: float) -> str:
        import jwt

        iat = int(now)
        return jwt.encode({"sub": agent_id, "allowed": True, "iat": iat,
                           "exp": iat + CLEARANCE_TTL_S}, self.private_key, algorithm="EdDSA")


def verify_clearance(token: str, public_pem: str, agent_id: str | None = None) -> dict[str, Any]:
    """Decode and verify a clearance (signature, expiry, subject); raises ``jwt.PyJWTError``."""
    import jwt

    claims: dict[str, Any] = jwt.decode(token, public_pem, algorithms=["EdDSA"],
                                        options={"require": ["sub", "iat", "exp"]})
    if agent_id is not None and claims.get("sub") != agent_id:
        raise jwt.InvalidTokenError("clearance is for another agent")
    if claims.get("allowed") is not True:
        raise jwt.InvalidTokenError("clearance does not allow")
    return claims
