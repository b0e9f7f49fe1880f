"""The center's login clearance as this workstation checks it (``agent-kit login``).

A clearance is a compact JWS (EdDSA / Ed25519, RFC 8037) the center signs when its gate allows
(``agent_kit.center.clearance``). The workstation accepts one only when:

- it verifies with the key pinned at enrollment (``clearance_key.pem``; never fetched later,
  so a center reached through a man in the middle cannot hand over its own key),
- it is for this workstation and allows the login,
- it carries the nonce this login just drew and sent with its gate request (a clearance made
  for an earlier request, however genuine, is not an answer to this one), and
- it is valid by THIS computer's clock, give or take :data:`CLOCK_TOLERANCE_S`. Never by a
  clock offset learnt from the center's ``server_time``: that field arrives in unsigned answers
  (a 401 ``clock_skew`` included), so whoever sits on the path could move it.

The last clearance that passed is kept (``last_clearance.jwt``): under
``gate.center_unreachable = "local"`` the local gate alone may start the softphone only within
``gate.local_login_max_s`` of it, by its signed issue time.
"""

from __future__ import annotations

import contextlib
import hmac
import secrets
from pathlib import Path
from typing import Any

from agent_kit.core.i18n import _
from agent_kit.core.wire.signing import CLOCK_WINDOW_S
from agent_kit.link.private_files import write_private_file
from agent_kit.link.state_folder import state_dir

# The same bound the center puts on a workstation's signed timestamps (core.wire.signing): a
# clock this close to the center's is what a working workstation already needs, and five
# minutes is the customary bound for clock skew between hosts (Kerberos' default).
CLOCK_TOLERANCE_S = CLOCK_WINDOW_S
NONCE_BYTES = 24   # 192 random bits; 32 characters of URL-safe base64


class ClearanceRejected(ValueError):
    """The clearance does not do; ``str()`` is the reason in plain words."""


def clearance_key_path() -> Path:
    """Where enrollment pins the center's clearance public key (PEM)."""
    return state_dir() / "clearance_key.pem"


def last_clearance_path() -> Path:
    """The last clearance that passed :func:`verify_clearance` on this workstation."""
    return state_dir() / "last_clearance.jwt"


def new_nonce() -> str:
    """A fresh random nonce for one gate request (the center signs it into the clearance)."""
    return secrets.token_urlsafe(NONCE_BYTES)


def is_clearance_key(pem: str) -> bool:
    """Whether ``pem`` is an Ed25519 public key in PEM form (what the center serves)."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    try:
        return isinstance(load_pem_public_key(pem.encode()), Ed25519PublicKey)
    except (ValueError, TypeError):
        return False


def pinned_key() -> str | None:
    """The key pinned at enrollment, or None when there is none (or it is not a key)."""
    try:
        pem = clearance_key_path().read_text("utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    return pem if is_clearance_key(pem) else None


def verify_clearance(token: str, public_key_pem: str, agent_id: str, nonce: str,
                     now: float) -> dict[str, Any]:
    """The claims of a clearance that passes every rule of the module docstring at ``now``
    (this computer's clock); raises :class:`ClearanceRejected` with plain words."""
    claims = _signed_claims(token, public_key_pem, agent_id)
    got = claims.get("nonce")
    if not isinstance(got, str) or not hmac.compare_digest(got.encode(), nonce.encode()):
        raise ClearanceRejected(_("the clearance was not made for this login (its nonce does "
                                  "not match): it may be an old one replayed"))
    iat, exp = float(claims["iat"]), float(claims["exp"])
    if now > exp + CLOCK_TOLERANCE_S or now < iat - CLOCK_TOLERANCE_S:
        raise ClearanceRejected(clock_off_reason(iat, now))
    return claims


def clock_off_reason(issued_at: float, now: float) -> str:
    """Plain words for a clearance dated too far from this computer's clock."""
    return _("the center's clearance is dated {minutes:.0f} min away from this computer's "
             "clock: set the clock to the right time (automatic time) and try again").format(
                 minutes=abs(now - issued_at) / 60)


def _signed_claims(token: str, public_key_pem: str, agent_id: str) -> dict[str, Any]:
    """Signature, subject, ``allowed`` and the presence of times; no time rule."""
    import jwt

    if not token:
        raise ClearanceRejected(_("the center allowed the login but sent no clearance"))
    try:
        claims: dict[str, Any] = jwt.decode(
            token, public_key_pem, algorithms=["EdDSA"],
            options={"verify_exp": False, "verify_iat": False, "verify_nbf": False,
                     "require": ["sub", "iat", "exp"]})
    except jwt.PyJWTError as exc:
        raise ClearanceRejected(_("invalid clearance: {error}").format(error=exc)) from None
    if claims.get("sub") != agent_id:
        raise ClearanceRejected(_("the clearance is for another workstation"))
    if claims.get("allowed") is not True:
        raise ClearanceRejected(_("the clearance does not allow a login"))
    if not all(_is_time(claims.get(k)) for k in ("iat", "exp")):
        raise ClearanceRejected(_("the clearance has no valid times"))
    return claims


def _is_time(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def keep_last_clearance(token: str) -> None:
    """Remember a clearance that passed (best effort: a full disk must not stop the login)."""
    with contextlib.suppress(OSError):
        write_private_file(last_clearance_path(), token)


def forget_last_clearance() -> None:
    """At enrollment: a clearance of an earlier enrollment is worth nothing."""
    last_clearance_path().unlink(missing_ok=True)


def last_clearance_issued_at(public_key_pem: str, agent_id: str) -> float | None:
    """The signed issue time of the last clearance kept, or None when there is none that
    verifies (signature, subject, allowed) with the pinned key."""
    try:
        token = last_clearance_path().read_text("utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return None
    try:
        return float(_signed_claims(token, public_key_pem, agent_id)["iat"])
    except ClearanceRejected:
        return None
