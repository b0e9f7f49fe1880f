"""Secrets of the center: how they are made, stored (hashed) and checked.

- Enrollment tokens, the admin token, gate keys and dashboard sessions are random bearer strings;
  the center keeps only their SHA-256 (a database leak does not hand them out).
- A workstation signs every request with HMAC-SHA256 (docs/center-api.md; the signature itself
  is ``agent_kit.core.wire.signing``, shared with the agent). HMAC is symmetric, so the center
  must be able to recompute the key: each workstation's secret is *derived* from the center key
  and a per-workstation nonce, ``HMAC-SHA256(center_key, agent_id ":" nonce)``, and never
  stored. Retiring a workstation (or re-enrolling) changes what is accepted.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets


def new_token(prefix: str, nbytes: int = 24) -> str:
    """A random bearer string such as ``enr_...``; the prefix says what it is for."""
    return f"{prefix}_{secrets.token_urlsafe(nbytes)}"


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def new_agent_id() -> str:
    return f"ws-{secrets.token_hex(6)}"


def derive_secret(center_key: bytes, agent_id: str, nonce: str) -> str:
    """The workstation's secret: 64 hex characters; the HMAC key is its UTF-8 bytes."""
    return hmac.new(center_key, f"{agent_id}:{nonce}".encode(), hashlib.sha256).hexdigest()


def same_secret(given_hash: str, stored_hash: str) -> bool:
    return hmac.compare_digest(given_hash, stored_hash)
