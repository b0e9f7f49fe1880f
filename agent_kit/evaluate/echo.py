"""Judge the echo test (``audio.echo``): the call's sound coming back into its microphone.

The probe (``probes.audio.echo``) gives the echo return loss when it heard an echo, and
otherwise the loss the capture proves ("at least X dB": the weakest echo it could have seen,
set by the room's noise). Levels (``core/policies/default.toml``, docs/standards.md): ITU-T
G.131's talker-echo tolerance and G.168's echo return loss, and 3GPP TS 26.131's terminal
coupling loss for headsets.

- An echo heard is judged by its loss (laptop speakers beside their microphone fail, with the
  fix "use the headset").
- None heard: the bound is judged as the loss. Clearing the warn level, it passes ("no echo":
  a closed headset, a quiet room); short of it, the room's noise hid what an echo at the policy
  levels would look like, so it warns with the room's fix; never a fail, since no echo was
  heard, and never "unknown", since something was played and recorded.
- ``unknown`` only when nothing could be played or recorded (no device, a stalled stream) or
  the microphone sent digital silence.
"""

from __future__ import annotations

from typing import Any

from agent_kit.core.checks import AUDIO_ECHO
from agent_kit.core.i18n import M_, Msg
from agent_kit.core.levels import level_result, state_result, unknown_result
from agent_kit.core.policy import Policy
from agent_kit.core.results import CheckResult, Status
from probes.audio.echo import EchoReading


def fix_echo() -> Msg:
    """The fix for an echo heard: the headset, not the speakers."""
    return M_("Use your headset for calls, not the computer's speakers: callers hear their own "
              "voice come back. Select the headset as both speaker and microphone in the sound "
              "settings; if you already use it, lower its volume and keep it on your ears.")


def evaluate_echo(reading: EchoReading, policy: Policy) -> CheckResult:
    """audio.echo: echo return loss of the call output into the call input (ITU-T G.168)."""
    rule = policy.check(AUDIO_ECHO.id)
    if reading.problem:
        return unknown_result(
            AUDIO_ECHO.id, policy,
            M_("could not play the test sound and record it: {reason}", reason=reading.problem),
            fix=M_("Check that the headset is selected as the speaker and the microphone in the "
                   "sound settings, close other programs that use them, and run the check "
                   "again."))
    if reading.silent:
        return unknown_result(
            AUDIO_ECHO.id, policy,
            M_("the microphone sends only silence: it is muted or not working"),
            fix=M_("Unmute the microphone (the mute button on the headset or its cable, and in "
                   "the sound settings), or unplug and replug the USB headset."))
    bound = _round(reading.erl_at_least_db)
    details: dict[str, Any] = {"device": reading.device, "probe_dbfs": reading.probe_dbfs,
                               "echo_found": reading.found, "erl_at_least_db": bound,
                               "recorded_s": _round(reading.recorded_s)}
    if reading.found and reading.erl_db is not None:
        details.update(delay_ms=_round(reading.delay_ms),
                       round_trip_ms=_round(reading.round_trip_ms),
                       echo_dbfs=_round(reading.echo_dbfs), clock=reading.clock)
        return level_result(
            AUDIO_ECHO.id, reading.erl_db, policy,
            message=M_("the test sound came back into the microphone {erl:.0f} dB quieter, "
                       "{delay:.0f} ms later (echo return loss)", erl=reading.erl_db,
                       delay=reading.delay_ms if reading.delay_ms is not None else 0.0),
            fix_if_bad=fix_echo(), ndigits=1, details=details)
    if bound is None:   # not silent, yet no noise in the response at all: nothing was heard
        bound = float("inf")
    if rule.warn is None or bound >= rule.warn:
        return state_result(
            AUDIO_ECHO.id, Status.PASS, bound if bound != float("inf") else None, policy,
            message=M_("no echo: the test sound did not come back into the microphone (echo "
                       "return loss at least {bound:.0f} dB)", bound=min(bound, 999.0)),
            details=details)
    return state_result(
        AUDIO_ECHO.id, Status.WARN, bound, policy,
        message=M_("no echo heard, but the room was too noisy to rule out a faint one: the echo "
                   "return loss is at least {bound:.0f} dB", bound=bound),
        fix=M_("Run the check again in a quieter moment: close the door and turn off fans, "
               "radio or TV nearby."),
        details=details)


def _round(value: float | None) -> float | None:
    return round(value, 1) if value is not None else None
