"""One check run, prepared from user options: policy, center, probe units, context.

Shared by ``check``, ``diagnose``, the monitor and the window, so they all run the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import NoReturn

from agent_kit.core.policy import Policy, PolicyError, load_policy
from agent_kit.core.results import CheckReport
from agent_kit.link.discovery import (
    CenterError,
    CenterTarget,
    discover_center,
    unreachable_center,
)
from agent_kit.link.state_folder import load_enrollment
from agent_kit.run.microphone_step import MicrophoneGuide
from agent_kit.run.runner import ProgressFn
from agent_kit.run.units import ProbeContext, ProbeUnit, offered_units, units_for

_NOT_ENROLLED = "no center configured"


@dataclass(frozen=True)
class PreparedRun:
    context: ProbeContext
    units: tuple[ProbeUnit, ...]
    center_problem: str | None   # why there is no center, when there is none

    def execute(self, *, progress: ProgressFn | None = None) -> CheckReport:
        """Run the units; ``progress`` (the face's) hears each unit start and end."""
        from agent_kit.run.runner import run_checks

        if progress is None:
            return run_checks(self.units, self.context)
        return run_checks(self.units, self.context, progress=progress)


def prepare_run(*, center: str | None, policy_path: str | None, groups: set[str],
                reflector: tuple[str, int] | None, interactive: bool,
                on_error: Callable[[str], NoReturn],
                prompt: Callable[[str], None] | None = None,
                microphone: MicrophoneGuide | None = None) -> PreparedRun:
    """Resolve everything a run needs; bad input goes to ``on_error`` (exit 2 in the CLI).
    ``prompt`` shows the microphone test's instructions (the face's; silent by default);
    ``microphone`` guides the test instead where the face can (the window)."""
    try:
        policy: Policy = load_policy(policy_path)
    except PolicyError as exc:
        on_error(f"invalid policy: {exc}")
    target: CenterTarget | None = None
    problem: str | None = None
    if center is not None:
        try:
            target = discover_center(center)
        except CenterError as exc:
            on_error(str(exc))
    else:
        try:
            enrollment = load_enrollment()
        except ValueError as exc:
            on_error(str(exc))
        if enrollment is None:
            problem = _NOT_ENROLLED
        else:
            try:
                target = discover_center(enrollment.center_url)
            except CenterError as exc:
                # Keep the host: the VPN route check needs no answer from the center.
                problem = str(exc)
                try:
                    target = unreachable_center(enrollment.center_url, problem)
                except CenterError as bad_url:
                    on_error(f"enrollment: {bad_url}")
    ctx = ProbeContext(policy=policy, center=target, reflector=reflector,
                       interactive=interactive, not_enrolled=problem == _NOT_ENROLLED,
                       prompt=prompt or _silent, microphone=microphone)
    return PreparedRun(context=ctx, units=offered_units(units_for(groups), target),
                       center_problem=problem)


def _silent(_: str) -> None:
    return None
