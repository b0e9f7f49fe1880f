"""The workstation request signature (docs/center-api.md, "Workstation request signature"):
what an enrolled workstation signs and the center verifies, defined once for both sides.

Every workstation request carries three headers::

    X-Agent-Id: <agent_id>
    X-Agent-Timestamp: <unix seconds, integer>
    X-Agent-Signature: hex(HMAC-SHA256(secret, METHOD "\\n" PATH "\\n" TIMESTAMP "\\n"
                                                hex(SHA256(body))))

HMAC-SHA256 is RFC 2104 over SHA-256 (FIPS 180-4); the key is the secret string's UTF-8 bytes,
PATH is the path without the query string, TIMESTAMP is the header's text as sent. The agent
signs with :func:`signature_headers` (``agent_kit.link.client``, ``agent_kit.link.report_upload``);
the center reads the headers with :func:`parse_signature_headers` and checks them with
:func:`within_clock_window` and :func:`signature_matches` (``agent_kit.center.auth``).
Standard library only: the agent's lean monitor process imports this.
"""

from __future__ import annotations

import hashlib
import hmac

AGENT_ID_HEADER = "X-Agent-Id"
TIMESTAMP_HEADER = "X-Agent-Timestamp"
SIGNATURE_HEADER = "X-Agent-Signature"
HEADERS = (AGENT_ID_HEADER, TIMESTAMP_HEADER, SIGNATURE_HEADER)

# A signed timestamp further than this from the center's clock is refused (401 clock_skew, with
# the center's time, so the agent corrects its offset and signs again).
CLOCK_WINDOW_S = 300
# What well-formed headers look like: the center refuses anything else before any look-up.
MAX_AGENT_ID_CHARS = 64
MAX_TIMESTAMP_DIGITS = 12
SIGNATURE_HEX_CHARS = 64   # hex of a SHA-256 HMAC
# Lowercase only, as :func:`sign` writes it: one spelling per signature, so that the center's
# record of used signatures (replays) cannot be dodged by changing the case.
_LOWER_HEX = frozenset("0123456789abcdef")


class SignatureMissing(ValueError):
    """A header of the three is absent or empty: the request is not signed."""


class SignatureMalformed(ValueError):
    """The headers are there but cannot be a signature (too long, not digits, wrong length)."""


def signing_string(method: str, path: str, timestamp: str | int, body: bytes) -> bytes:
    """``METHOD\\nPATH\\nTIMESTAMP\\nhex(SHA256(body))``: the bytes the HMAC covers."""
    return "\n".join((method.upper(), path, str(timestamp),
                      hashlib.sha256(body).hexdigest())).encode()


def sign(secret: str, method: str, path: str, timestamp: str | int, body: bytes) -> str:
    """``hex(HMAC-SHA256(secret, signing_string(...)))``, lowercase hex."""
    return hmac.new(secret.encode(), signing_string(method, path, timestamp, body),
                    hashlib.sha256).hexdigest()


def signature_headers(agent_id: str, secret: str, method: str, path: str, body: bytes,
                      timestamp: int) -> dict[str, str]:
    """The three ``X-Agent-*`` headers of a workstation request (the agent's side)."""
    return {AGENT_ID_HEADER: agent_id, TIMESTAMP_HEADER: str(timestamp),
            SIGNATURE_HEADER: sign(secret, method, path, timestamp, body)}


def parse_signature_headers(agent_id: str | None, timestamp: str | None,
                            signature: str | None) -> tuple[str, str, str]:
    """The three header values, checked for form only (the center's side, before the body is
    read); raises :class:`SignatureMissing` or :class:`SignatureMalformed`."""
    if not agent_id or not timestamp or not signature:
        raise SignatureMissing("signed request expected (X-Agent-Id, X-Agent-Timestamp, "
                               "X-Agent-Signature)")
    # isascii: str.isdigit() also accepts digits such as "²" that int() refuses, and
    # hmac.compare_digest refuses non-ASCII text; both must be a refusal, not a crash.
    if not (timestamp.isascii() and timestamp.isdigit()) \
            or len(timestamp) > MAX_TIMESTAMP_DIGITS \
            or len(signature) != SIGNATURE_HEX_CHARS or not _LOWER_HEX.issuperset(signature) \
            or len(agent_id) > MAX_AGENT_ID_CHARS:
        raise SignatureMalformed("malformed signature headers")
    return agent_id, timestamp, signature


def within_clock_window(timestamp: str, now: float, window_s: float = CLOCK_WINDOW_S) -> bool:
    """Whether a well-formed signed timestamp is at most ``window_s`` from ``now``."""
    return abs(int(timestamp) - now) <= window_s


def signature_matches(secret: str, method: str, path: str, timestamp: str, body: bytes,
                      signature: str) -> bool:
    """Whether ``signature`` is this request's (constant-time comparison, lowercase hex)."""
    if not signature.isascii():
        return False
    return hmac.compare_digest(sign(secret, method, path, timestamp, body), signature)
