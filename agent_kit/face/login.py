"""``agent-kit status`` and ``agent-kit login``: may this workstation take calls now, and why.

Status reads the monitor's state file only (instant, works offline). Login asks both:

1. the local gate (the monitor's state file, which must be fresh: a monitor that is not running
   proves nothing), and
2. the center's gate, ``GET /api/v1/gate/{agent_id}`` signed with the workstation's secret. When
   the center allows, its answer carries a clearance: a compact JWS (EdDSA / Ed25519, RFC 8037)
   that ``login`` verifies with the public key pinned at enrollment, so neither a forged local
   state file nor a man in the middle can produce a login on their own.

When the center cannot be reached (no answer, timeout, 5xx), the policy key
``gate.center_unreachable`` decides: ``local`` (default) starts on the local gate alone and says
so on stderr, ``deny`` refuses. A center that answers "denied", refuses the workstation
(retired), or whose clearance does not verify always refuses the login.

Exit codes: 0 open/started, 1 closed/refused, 2 not enrolled, no (fresh) monitor state, or a
command that cannot be started.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, NoReturn

import httpx

from agent_kit.core.i18n import _
from agent_kit.core.process_replacement import replace_process
from agent_kit.link.state_folder import Enrollment, load_enrollment
from agent_kit.loop.state_file import STOPPED_BY_SIGNAL, MonitorState, read_state

EXIT_OPEN, EXIT_CLOSED, EXIT_NO_STATE = 0, 1, 2
CLOCK_LEEWAY_S = 30
RESYNC_NOTE_S = 24 * 3600   # how long status mentions a lost spool's renumbering


@dataclass(frozen=True)
class GateView:
    """The local answer: exit code, headline, reasons; ``state`` when there is one."""

    code: int
    headline: str
    reasons: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    state: MonitorState | None = None
    enrollment: Enrollment | None = None


def local_gate(now: Callable[[], float] = time.time) -> GateView:
    """What the monitor's state file says, judged for freshness."""
    try:
        enrollment = load_enrollment()
    except ValueError as exc:
        return GateView(EXIT_NO_STATE, str(exc))
    if enrollment is None:
        return GateView(EXIT_NO_STATE, _("This workstation is not enrolled: run agent-kit "
                                         "enroll --center URL --token TOKEN."))
    state = read_state()
    if state is None or state.agent_id != enrollment.agent_id:
        return GateView(EXIT_NO_STATE, _("No gate state yet: start agent-kit monitor."),
                        enrollment=enrollment)
    notes = _delivery_notes(state, now())
    if state.stopped == STOPPED_BY_SIGNAL:   # a clean stop (logout, systemctl stop)
        return GateView(EXIT_NO_STATE, _("The monitor is not running (it was stopped): start "
                                         "agent-kit monitor."), (), notes, state, enrollment)
    if state.stopped:
        return GateView(EXIT_CLOSED, _("Not ready: the monitor stopped."), state.reasons,
                        notes, state, enrollment)
    if not state.is_fresh(now()):
        age = now() - state.updated_at
        return GateView(EXIT_NO_STATE, _("The monitor is not running (its last update is "
                                         "{age:.0f} s old): start agent-kit monitor.").format(
                                             age=age), (), notes, state, enrollment)
    since = _local_time(state.gate_since)
    if state.gate_open:
        return GateView(EXIT_OPEN, _("Ready to take calls (since {time}).").format(time=since),
                        (), notes, state, enrollment)
    return GateView(EXIT_CLOSED, _("Not ready to take calls (since {time}).").format(time=since),
                    state.reasons, notes, state, enrollment)


def _local_time(unix_s: float) -> str:
    from datetime import datetime

    return datetime.fromtimestamp(unix_s).strftime("%H:%M:%S")


def _delivery_notes(state: MonitorState, now: float) -> tuple[str, ...]:
    notes = []
    if state.watching:
        notes.append(_("Watching (failing now, not long enough to block): {checks}").format(
            checks=", ".join(state.watching)))
    d = state.delivery
    if d.pending > 1 or d.error:
        notes.append(_("{n} heartbeat(s) waiting to reach the center{why}.").format(
            n=d.pending, why=f" ({d.error})" if d.error else ""))
    if d.dropped_total:
        notes.append(_("{n} old heartbeat(s) were dropped while the center was unreachable "
                       "too long.").format(n=d.dropped_total))
    if d.resynced_at is not None and now - d.resynced_at <= RESYNC_NOTE_S:
        notes.append(_("The heartbeat spool on this computer was lost or replaced (at {time}): "
                       "the center already had heartbeats up to no. {seq}, so numbering "
                       "continues after it; {n} waiting heartbeat(s) were sent again with new "
                       "numbers, none dropped.").format(time=_local_time(d.resynced_at),
                                                        seq=d.resynced_after_seq,
                                                        n=d.resynced_count))
    return tuple(notes)


def status_json(view: GateView) -> dict[str, Any]:
    state = view.state
    return {
        "open": view.code == EXIT_OPEN, "exit_code": view.code, "headline": view.headline,
        "reasons": list(view.reasons), "notes": list(view.notes),
        "agent_id": view.enrollment.agent_id if view.enrollment else None,
        "monitor": state.to_json() if state else None,
    }


# ---------------------------------------------------------------- login

@dataclass(frozen=True)
class LoginDecision:
    allowed: bool
    code: int
    headline: str
    reasons: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default_factory=tuple)
    claims: dict[str, Any] | None = None   # the verified clearance, when there was one


def decide_login(*, center_unreachable: str = "local", now: Callable[[], float] = time.time,
                 transport: httpx.BaseTransport | None = None) -> LoginDecision:
    """Local gate AND the center's signed clearance (see the module docstring)."""
    from agent_kit.link.client import CenterClient, CenterRefused, CenterUnavailable

    view = local_gate(now)
    if view.code != EXIT_OPEN or view.enrollment is None or view.state is None:
        return LoginDecision(False, view.code, view.headline, view.reasons, view.notes)
    enrollment = view.enrollment
    with CenterClient(enrollment, transport=transport, clock=now, timeout_s=5.0,
                      clock_offset_s=view.state.clock_offset_s) as client:
        try:
            answer = client.gate()
            key_pem = _clearance_key(client, enrollment) if answer.get("allowed") else None
        except CenterUnavailable as exc:
            note = _("The center cannot be reached ({error}).").format(error=exc)
            if center_unreachable == "deny":
                return LoginDecision(False, EXIT_CLOSED, _("Login refused: the center cannot "
                                                           "confirm this workstation."),
                                     (note,), view.notes)
            return LoginDecision(True, EXIT_OPEN, _("Starting on the local gate alone."),
                                 (), (*view.notes, note, _("The policy allows a login on the "
                                                           "local gate when the center is "
                                                           "unreachable.")))
        except CenterRefused as exc:
            why = (_("IT retired this workstation: run agent-kit enroll again.") if exc.retired
                   else _("The center refuses this workstation ({error}).").format(error=exc))
            return LoginDecision(False, EXIT_CLOSED, _("Login refused by the center."), (why,),
                                 view.notes)
        center_now = client.now()
    if answer.get("allowed") is not True:
        reasons = tuple(str(r) for r in answer.get("reasons") or ()) or (
            _("The center did not say why."),)
        return LoginDecision(False, EXIT_CLOSED, _("Login refused by the center."), reasons,
                             view.notes)
    try:
        claims = verify_clearance(str(answer.get("clearance") or ""), key_pem or "",
                                  enrollment.agent_id, center_now)
    except ValueError as exc:
        return LoginDecision(False, EXIT_CLOSED, _("Login refused: the center's clearance "
                                                   "does not verify."), (str(exc),), view.notes)
    return LoginDecision(True, EXIT_OPEN, _("Ready to take calls: cleared by the center."),
                         (), view.notes, claims)


def _clearance_key(client: Any, enrollment: Enrollment) -> str | None:
    """The key pinned at enrollment; fetched (and pinned) once if enrollment could not."""
    from agent_kit.link.enrollment import clearance_key_path

    path = clearance_key_path()
    if path.exists():
        return path.read_text("utf-8")
    data = client.request("GET", "/api/v1/clearance-key").json()
    pem = data.get("public_key_pem") if isinstance(data, dict) else None
    if isinstance(pem, str) and "PUBLIC KEY" in pem:
        # pinned for the next logins; a state folder that cannot take it (read-only, full)
        # costs only the pin, never this login
        with contextlib.suppress(OSError):
            path.write_text(pem, "utf-8")
        return pem
    return None


def verify_clearance(token: str, public_key_pem: str, agent_id: str,
                     now: float) -> dict[str, Any]:
    """Check a clearance: EdDSA signature by the center's key, for this agent, allowed, and
    valid at ``now`` (the center's clock, so a skewed local clock does not matter).
    Raises ValueError with plain words."""
    import jwt

    if not token:
        raise ValueError(_("the center allowed the login but sent no clearance"))
    if not public_key_pem:
        raise ValueError(_("the center's clearance key is unknown: run agent-kit enroll "
                           "again"))
    try:
        claims: dict[str, Any] = jwt.decode(
            token, public_key_pem, algorithms=["EdDSA"],
            options={"verify_exp": False, "verify_iat": False, "verify_nbf": False,
                     "require": ["sub", "iat", "exp"]})
    except jwt.PyJWTError as exc:
        raise ValueError(_("invalid clearance: {error}").format(error=exc)) from None
    if claims.get("sub") != agent_id:
        raise ValueError(_("the clearance is for another workstation"))
    if claims.get("allowed") is not True:
        raise ValueError(_("the clearance does not allow a login"))
    iat, exp = claims.get("iat"), claims.get("exp")
    if not isinstance(iat, (int, float)) or not isinstance(exp, (int, float)):
        raise ValueError(_("the clearance has no valid times"))
    if now > exp + CLOCK_LEEWAY_S:
        raise ValueError(_("the clearance has expired"))
    if now < iat - CLOCK_LEEWAY_S:
        raise ValueError(_("the clearance is dated in the future"))
    return claims


def start_command(argv: Sequence[str]) -> NoReturn:
    """Become the softphone (exec) on POSIX; run it and pass its exit code on Windows."""
    if not argv:
        raise ValueError(_("no command given: agent-kit login -- COMMAND [ARGS]"))
    try:
        replace_process(argv)
    except (FileNotFoundError, PermissionError) as exc:
        raise ValueError(_("cannot start {cmd}: {error}").format(
            cmd=argv[0], error=exc.strerror or exc)) from None


def center_unreachable_rule(policy_path: str | None = None) -> str:
    """``gate.center_unreachable`` from ``--policy``, else the center's cached policy (what the
    monitor uses), else the default policy. Raises ``PolicyError`` for a bad ``--policy``."""
    from agent_kit.core.policy import PolicyError, load_policy
    from agent_kit.loop.monitor import center_policy_path

    if policy_path is not None:
        policy = load_policy(policy_path)
    else:
        try:
            policy = load_policy(center_policy_path())
        except PolicyError:
            policy = load_policy()
    return str(policy.setting("gate", "center_unreachable", "local"))


def render_lines(headline: str, reasons: Sequence[str], notes: Sequence[str]) -> list[str]:
    """Plain text for the terminal: the headline, each reason, then the notes."""
    lines = [headline]
    lines += [f"  ✗ {r}" for r in reasons]
    lines += [f"  · {n}" for n in notes]
    return lines
