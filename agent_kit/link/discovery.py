"""What the agent learns from its center before measuring: is it there, and where to probe.

``GET {center}/healthz`` is public and answers
``{"status": "ok", "version": "...", "reflector": {"host": "...", "port": 8751},
"speedtest_path": "/speedtest/", "test_call": {...} or null}``. A reflector host of ``null``
means "the host you reached me on" (the center does not know its public name behind NAT unless
told). ``test_call`` is the scored test call's offer (``agent_kit.core.wire.test_call``); a
center without it (older, or without visqol-python) offers none.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from agent_kit.core.wire.test_call import CallOffer, parse_offer


class CenterError(Exception):
    """The center URL is malformed or the center does not answer."""


@dataclass(frozen=True)
class CenterTarget:
    url: str                      # base URL, no trailing slash
    host: str
    port: int
    reflector: tuple[str, int] | None
    speedtest_url: str | None
    version: str | None = None
    problem: str | None = None    # set when the center did not answer: host known, no services
    test_call: CallOffer | None = None   # the scored test call, when the center offers it

    @property
    def reachable(self) -> bool:
        return self.problem is None


def parse_center_url(url: str) -> tuple[str, str, int]:
    """Validate ``http(s)://host[:port]``; returns (base url, host, port)."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise CenterError(f"center URL {url!r} must look like https://center.example.com:8750")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise CenterError(f"center URL {url!r} has an invalid port") from None
    base = f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}"
    return base, parts.hostname, port


def unreachable_center(url: str, problem: str) -> CenterTarget:
    """A center we know by URL (from enrollment) but which does not answer right now."""
    base, host, port = parse_center_url(url)
    return CenterTarget(url=base, host=host, port=port, reflector=None, speedtest_url=None,
                        problem=problem)


def discover_center(url: str, timeout_s: float = 3.0) -> CenterTarget:
    """Ask the center for its reflector and bandwidth endpoint; raise CenterError if it is down."""
    import httpx

    base, host, port = parse_center_url(url)
    try:
        response = httpx.get(f"{base}/healthz", timeout=timeout_s)
    except httpx.HTTPError as exc:
        raise CenterError(f"center {base} does not answer: {exc}") from None
    if response.status_code != 200:  # one line (httpx's own message adds a second)
        raise CenterError(f"{base} answered /healthz with HTTP {response.status_code}: "
                          "is it the agent-center URL?")
    try:
        info = response.json()
    except ValueError:
        info = None
    if not isinstance(info, dict):
        raise CenterError(f"center {base} answered /healthz with something that is not JSON")
    reflector = None
    refl = info.get("reflector")
    if isinstance(refl, dict) and isinstance(refl.get("port"), int):
        reflector = (str(refl.get("host") or host), int(refl["port"]))
    sp = info.get("speedtest_path")
    return CenterTarget(url=base, host=host, port=port, reflector=reflector,
                        speedtest_url=f"{base}{sp}" if isinstance(sp, str) else None,
                        version=info.get("version") if isinstance(info.get("version"), str)
                        else None, test_call=parse_offer(info.get("test_call")))
