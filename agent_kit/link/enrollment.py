"""One-time enrollment of this workstation with its center (``agent-kit enroll``).

``POST /api/v1/enroll`` with the one-time token IT gave the agent returns the workstation's id
and its HMAC secret. The secret is written only to the enrollment file (owner-only, 0600, in a
0700 folder) and never printed or logged. The center's clearance public key is fetched first,
from the same center URL, and pinned next to it, so ``agent-kit login`` later verifies
clearances against the key of the center it enrolled with, not whatever key a man in the middle
would serve; this is the only moment the key is taken from the network. A center that gives no
key fails the enrollment before the token is spent.
"""

from __future__ import annotations

import socket
import tempfile

import httpx

from agent_kit import __version__
from agent_kit.core.i18n import _
from agent_kit.core.wire.text import clean_line
from agent_kit.link.clearance import clearance_key_path, forget_last_clearance, is_clearance_key
from agent_kit.link.discovery import CenterError, parse_center_url
from agent_kit.link.private_files import make_private_folder, write_private_file
from agent_kit.link.state_folder import Enrollment, load_enrollment, save_enrollment, state_dir


class EnrollError(Exception):
    """Enrollment did not happen; ``str()`` is the one line the user sees."""


__all__ = ["EnrollError", "clearance_key_path", "enroll"]


def enroll(center_url: str, token: str, *, hostname: str | None = None,
           display_name: str | None = None, force: bool = False,
           transport: httpx.BaseTransport | None = None, timeout_s: float = 10.0) -> Enrollment:
    """Enroll with the center and save the credential; raises EnrollError with plain words."""
    try:
        base, _host, _port = parse_center_url(center_url)
    except CenterError as exc:
        raise EnrollError(str(exc)) from None
    token = token.strip()
    if not token:
        raise EnrollError(_("the enrollment token is empty"))
    try:
        existing = load_enrollment()
    except ValueError:
        existing = None   # unreadable: enrolling again is the fix
    if existing is not None and not force:
        raise EnrollError(_("this workstation is already enrolled as {agent} with {center}; "
                            "use --force to replace that enrollment").format(
                                agent=existing.agent_id, center=existing.center_url))
    # The state folder first: a token the center has used up must not be lost to a folder
    # where the credential cannot be saved.
    folder = state_dir()
    try:
        make_private_folder(folder)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise EnrollError(_("cannot save the enrollment in {folder} ({error}); nothing was "
                            "sent to the center").format(folder=folder,
                                                         error=exc.strerror or exc)) from None
    # A line (core.wire.text): the center refuses control characters, an OS name must not stop
    # an enrollment.
    body: dict[str, str] = {"token": token,
                            "hostname": clean_line(hostname or socket.gethostname())}
    if display_name:
        body["display_name"] = display_name
    with httpx.Client(base_url=base, transport=transport, timeout=timeout_s,
                      headers={"User-Agent": f"agent-kit/{__version__}"}) as http:
        # The key before the token: a center that cannot give one must not use the token up.
        key_pem = _fetch_clearance_key(http, base)
        try:
            response = http.post("/api/v1/enroll", json=body)
        except httpx.HTTPError as exc:
            raise EnrollError(_("the center {url} does not answer ({error})").format(
                url=base, error=type(exc).__name__)) from None
        if response.status_code == 401:
            raise EnrollError(_("the center refused the enrollment token (unknown, expired, "
                                "revoked or already used): ask IT for a new one"))
        if response.status_code != 201:
            raise EnrollError(_("the center refused the enrollment ({status} {error})").format(
                status=response.status_code, error=_error_code(response)))
        try:
            data = response.json()
            enrollment = Enrollment(center_url=base, agent_id=str(data["agent_id"]),
                                    secret=str(data["secret"]),
                                    heartbeat_interval_s=float(
                                        data.get("heartbeat_interval_s", 15.0)))
        except (ValueError, KeyError, TypeError):
            raise EnrollError(_("the center's enrollment answer is not what agent-kit "
                                "expects")) from None
    # The key first: a crash in between leaves no enrollment, never one without its key.
    try:
        forget_last_clearance()   # a clearance of an earlier enrollment is worth nothing
        write_private_file(clearance_key_path(), key_pem)
        save_enrollment(enrollment)
    except OSError as exc:   # the folder turned read-only (or full) since it was checked
        raise EnrollError(_("the center enrolled this workstation as {agent}, but the "
                            "enrollment cannot be saved in {folder} ({error}): make the folder "
                            "writable and enroll again with a new token from IT").format(
                                agent=enrollment.agent_id, folder=folder,
                                error=exc.strerror or exc)) from None
    return enrollment


def _fetch_clearance_key(http: httpx.Client, base: str) -> str:
    """The center's Ed25519 public key (PEM); raises EnrollError when it gives none."""
    try:
        response = http.get("/api/v1/clearance-key")
    except httpx.HTTPError as exc:
        raise EnrollError(_("the center {url} does not answer ({error})").format(
            url=base, error=type(exc).__name__)) from None
    try:
        data = response.json() if response.is_success else None
    except ValueError:
        data = None
    pem = data.get("public_key_pem") if isinstance(data, dict) else None
    if not isinstance(pem, str) or not is_clearance_key(pem):
        raise EnrollError(_("the center {url} gives no login clearance key ({status}); "
                            "nothing was enrolled and the token is still good: ask IT to "
                            "update the center").format(url=base,
                                                        status=response.status_code))
    return pem


def _error_code(response: httpx.Response) -> str:
    try:
        data = response.json()
    except ValueError:
        return "no JSON"
    return str(data.get("error", "?")) if isinstance(data, dict) else "?"
