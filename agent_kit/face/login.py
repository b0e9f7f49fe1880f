"""``agent-kit status`` and ``agent-kit login``: may this workstation take calls now, and why.

Status reads the monitor's state file only (instant, works offline). Login asks both:

1. the local gate (the monitor's state file, which must be fresh: a monitor that is not running
   proves nothing), and
2. the center's gate, ``GET /api/v1/gate/{agent_id}?nonce=N`` signed with the workstation's
   secret, N drawn fresh for this login. When the center allows, its answer carries a
   clearance: a compact JWS (EdDSA / Ed25519, RFC 8037) that ``login`` verifies with the public
   key pinned at enrollment, for this workstation, carrying N, valid by this computer's clock
   (``agent_kit.link.clearance``), so neither a forged local state file, nor a man in the
   middle, nor an old genuine clearance replayed can produce a login on their own.

When the center cannot be reached (no answer, timeout, 5xx), the policy key
``gate.center_unreachable`` decides: ``local`` (default) starts on the local gate alone, and
says so on stderr, only within ``gate.local_login_max_s`` (default 30 min) of the last clearance
the center gave this workstation; ``deny`` refuses. A center that answers "denied", refuses the
workstation (retired), or whose clearance does not verify always refuses the login.

Exit codes: 0 open/started, 1 closed/refused, 2 not enrolled (or enrolled without the center's
pinned key), no (fresh) monitor state, or a command that cannot be started.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, NoReturn

import httpx

from agent_kit.core.i18n import _
from agent_kit.core.process_replacement import replace_process
from agent_kit.link.state_folder import Enrollment, load_enrollment
from agent_kit.loop.state_file import STOPPED_BY_SIGNAL, GateProblem, MonitorState, read_state

EXIT_OPEN, EXIT_CLOSED, EXIT_NO_STATE = 0, 1, 2
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
        return GateView(EXIT_NO_STATE, _("This computer is not set up with your contact "
                                         "center yet: ask IT for your setup code and the "
                                         "center's address, then run agent-kit enroll "
                                         "--center ADDRESS --token -"))
    state = read_state()
    if state is None or state.agent_id != enrollment.agent_id:
        return GateView(EXIT_NO_STATE, _("No gate state yet: start agent-kit monitor."),
                        enrollment=enrollment)
    notes = _delivery_notes(state, now())
    if state.stopped == STOPPED_BY_SIGNAL:   # a clean stop (logout, systemctl stop)
        return GateView(EXIT_NO_STATE, _("The monitor is not running (it was stopped): start "
                                         "agent-kit monitor."), (), notes, state, enrollment)
    if state.stopped:
        return GateView(EXIT_CLOSED, _("Not ready: the monitor stopped."), state.reasons_in(),
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
                    state.reasons_in(), notes, state, enrollment)


def _local_time(unix_s: float) -> str:
    from datetime import datetime

    return datetime.fromtimestamp(unix_s).strftime("%H:%M:%S")


def _delivery_notes(state: MonitorState, now: float) -> tuple[str, ...]:
    from agent_kit.face.terminal import check_title

    notes = []
    if state.watching and state.problems is None:   # else shown with their fixes
        notes.append(_("Watching (failing now, not long enough to block): {checks}").format(
            checks=", ".join(check_title(cid) for cid in state.watching)))
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


def shown_problems(view: GateView) -> tuple[GateProblem, ...]:
    """What ``status`` lists under its headline: the state's problems when it keeps them (the
    blocking ones only while the gate is closed), else its reasons as they were written."""
    state = view.state
    if view.code == EXIT_NO_STATE or state is None or state.problems is None:
        # a stale or stopped state proves nothing now; an older monitor kept sentences only
        return tuple(GateProblem(problem, fix=fix)
                     for problem, fix in (split_fix(r) for r in view.reasons))
    closed = bool(view.reasons)   # the view keeps reasons only when it reports a closed gate
    return tuple(p for p in state.problems if closed or not p.blocking)


def status_lines(view: GateView, width: int | None = None) -> list[str]:
    """``agent-kit status`` as text: the headline (one line: alone, it is exit 2's one-line
    reason); each problem under its check's title in the reader's language, with its fix on
    a line of its own; then the notes; wrapped to ``width`` (default: the terminal's)."""
    from agent_kit.face.terminal import check_title
    from agent_kit.face.text_wrap import labelled, terminal_width, wrap

    columns = min(width or terminal_width(), 120)
    lines = [view.headline]
    for p in shown_problems(view):
        message, fix = p.message_in(), p.fix_in()
        text = (_("{title}: {message}").format(title=check_title(p.check_id), message=message)
                if p.check_id else message)
        if not p.blocking:
            text += " " + _("(failing now, not long enough to block calls)")
        lines += wrap(text, columns, first="  ✗ " if p.blocking else "  ! ")
        if fix:
            lines += labelled(_("Fix:") + " ", fix, columns, indent="      ")
    for note in view.notes:
        lines += wrap(note, columns, first="  · ")
    return lines


def status_json(view: GateView) -> dict[str, Any]:
    from agent_kit.face.terminal import check_title

    state = view.state
    return {
        "open": view.code == EXIT_OPEN, "exit_code": view.code, "headline": view.headline,
        "reasons": list(view.reasons), "notes": list(view.notes),
        "problems": [{"check_id": p.check_id,
                      "title": check_title(p.check_id) if p.check_id else None,
                      "message": p.message_in(), "fix": p.fix_in(), "blocking": p.blocking}
                     for p in shown_problems(view)],
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


@dataclass(frozen=True)
class UnreachableRule:
    """What ``gate.center_unreachable`` and ``gate.local_login_max_s`` say."""

    mode: str = "local"              # "local" or "deny"
    local_login_max_s: float = 1800.0


def decide_login(*, center_unreachable: str | UnreachableRule = "local",
                 now: Callable[[], float] = time.time,
                 transport: httpx.BaseTransport | None = None) -> LoginDecision:
    """Local gate AND the center's signed clearance (see the module docstring)."""
    from agent_kit.link.clearance import (
        ClearanceRejected,
        keep_last_clearance,
        new_nonce,
        pinned_key,
        verify_clearance,
    )
    from agent_kit.link.client import CenterClient, CenterRefused, CenterUnavailable

    rule = (center_unreachable if isinstance(center_unreachable, UnreachableRule)
            else UnreachableRule(center_unreachable))
    view = local_gate(now)
    if view.code != EXIT_OPEN or view.enrollment is None or view.state is None:
        return LoginDecision(False, view.code, view.headline, view.reasons, view.notes)
    enrollment = view.enrollment
    key_pem = pinned_key()
    if key_pem is None:   # enrolled before keys were pinned, or the file was damaged
        return LoginDecision(False, EXIT_NO_STATE, _(
            "This workstation has no pinned key of its center to check the login clearance "
            "with: enroll it again (agent-kit enroll --force --center URL --token TOKEN, with "
            "a new token from IT)."), (), view.notes)
    nonce = new_nonce()
    # The offset only helps sign requests; the clearance is judged by this computer's clock.
    with CenterClient(enrollment, transport=transport, clock=now, timeout_s=5.0,
                      clock_offset_s=view.state.clock_offset_s) as client:
        try:
            answer = client.gate(nonce)
        except CenterUnavailable as exc:
            note = _("The center cannot be reached ({error}).").format(error=exc)
            return _local_alone(rule, key_pem, enrollment.agent_id, now(), note, view.notes)
        except CenterRefused as exc:
            why = (_("IT retired this workstation: run agent-kit enroll again.") if exc.retired
                   else _("The center refuses this workstation ({error}).").format(error=exc))
            return LoginDecision(False, EXIT_CLOSED, _("Login refused by the center."), (why,),
                                 view.notes)
    if answer.get("allowed") is not True:
        reasons = tuple(str(r) for r in answer.get("reasons") or ()) or (
            _("The center did not say why."),)
        return LoginDecision(False, EXIT_CLOSED, _("Login refused by the center."), reasons,
                             view.notes)
    token = str(answer.get("clearance") or "")
    try:
        claims = verify_clearance(token, key_pem, enrollment.agent_id, nonce, now())
    except ClearanceRejected as exc:
        return LoginDecision(False, EXIT_CLOSED, _("Login refused: the center's clearance "
                                                   "does not verify."), (str(exc),), view.notes)
    keep_last_clearance(token)
    return LoginDecision(True, EXIT_OPEN, _("Ready to take calls: cleared by the center."),
                         (), view.notes, claims)


def _local_alone(rule: UnreachableRule, key_pem: str, agent_id: str, now: float, note: str,
                 notes: tuple[str, ...]) -> LoginDecision:
    """The center cannot be reached: ``deny``, or ``local`` within ``local_login_max_s`` of
    the last clearance (its signed issue time against this computer's clock)."""
    from agent_kit.link.clearance import (
        CLOCK_TOLERANCE_S,
        clock_off_reason,
        last_clearance_issued_at,
    )

    if rule.mode == "deny":
        return LoginDecision(False, EXIT_CLOSED, _("Login refused: the center cannot confirm "
                                                   "this workstation."), (note,), notes)
    limit_min = rule.local_login_max_s / 60
    issued_at = last_clearance_issued_at(key_pem, agent_id)
    if issued_at is None:
        return LoginDecision(False, EXIT_CLOSED, _(
            "Login refused: the center cannot be reached and has never cleared a login on "
            "this workstation."), (note, _(
                "The local gate alone may start the softphone only within {limit:.0f} min of "
                "a login the center cleared.").format(limit=limit_min)), notes)
    age_s = now - issued_at
    if age_s < -CLOCK_TOLERANCE_S:   # this computer's clock was set back since
        return LoginDecision(False, EXIT_CLOSED, _(
            "Login refused: the center cannot be reached and its last clearance is too old."),
            (note, clock_off_reason(issued_at, now)), notes)
    if age_s > rule.local_login_max_s:
        return LoginDecision(False, EXIT_CLOSED, _(
            "Login refused: the center cannot be reached and its last clearance is too old."),
            (note, _("The center last cleared a login here {age:.0f} min ago; the local gate "
                     "alone may start the softphone only within {limit:.0f} min of "
                     "that.").format(age=age_s / 60, limit=limit_min)), notes)
    return LoginDecision(True, EXIT_OPEN, _("Starting on the local gate alone."), (), (
        *notes, note, _("The center last cleared a login here {age:.0f} min ago; the policy "
                        "allows a login on the local gate alone for {limit:.0f} min after "
                        "that, while the center cannot be reached.").format(
                            age=max(age_s, 0.0) / 60, limit=limit_min)))


def start_command(argv: Sequence[str]) -> NoReturn:
    """Become the softphone (exec) on POSIX; run it and pass its exit code on Windows."""
    if not argv:
        raise ValueError(_("no command given: agent-kit login -- COMMAND [ARGS]"))
    try:
        replace_process(argv)
    except (FileNotFoundError, PermissionError) as exc:
        raise ValueError(_("cannot start {cmd}: {error}").format(
            cmd=argv[0], error=exc.strerror or exc)) from None


def center_unreachable_rule(policy_path: str | None = None) -> UnreachableRule:
    """``gate.center_unreachable`` and ``gate.local_login_max_s`` from ``--policy``, else the
    center's cached policy (what the monitor uses), else the default policy. Raises
    ``PolicyError`` for a bad ``--policy``."""
    from agent_kit.core.policy import load_policy
    from agent_kit.loop.center_policy import cached_center_policy

    if policy_path is not None:
        policy = load_policy(policy_path)
    else:
        cached = cached_center_policy()
        policy = cached.policy if cached is not None else load_policy()
    default = UnreachableRule()
    return UnreachableRule(
        str(policy.setting("gate", "center_unreachable", default.mode)),
        float(policy.setting("gate", "local_login_max_s", default.local_login_max_s)))


def render_lines(headline: str, reasons: Sequence[str], notes: Sequence[str],
                 width: int | None = None) -> list[str]:
    """Plain text for the terminal: the headline, each reason with its fix on a line of its
    own, then the notes; reasons and notes wrapped to ``width`` (default: the terminal's) with
    hanging indents. The headline stays one line: alone, it is the one-line reason that exit
    code 2 promises on stderr."""
    from agent_kit.face.text_wrap import labelled, terminal_width, wrap

    columns = min(width or terminal_width(), 120)
    lines = [headline]
    for reason in reasons:
        problem, fix = split_fix(reason)
        lines += wrap(problem, columns, first="  ✗ ")
        if fix:
            lines += labelled(_("Fix:") + " ", fix, columns, indent="      ")
    for note in notes:
        lines += wrap(note, columns, first="  · ")
    return lines


def split_fix(reason: str) -> tuple[str, str | None]:
    """A stored gate reason ("Title: message Fix: fix", ``describe_blocker``) as its problem
    and its fix, so the fix can go on a line of its own."""
    marker = " " + _("Fix: {fix}").split("{fix}")[0]
    if marker.strip() and marker in reason:
        problem, _sep, fix = reason.partition(marker)
        return problem, fix.strip() or None
    return reason, None
