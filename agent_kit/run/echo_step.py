"""The echo test (the ``echo`` unit): a short quiet chirp out, the echo of it measured in.

With a person at the screen the step first says what it will play and that it will be quiet
(the microphone step's guide shows the words, then ``ANNOUNCE_S`` later the chirp plays, with
the live level of the microphone), so nobody is startled and nobody talks over it. Without a
guide the words go through ``ProbeContext.prompt``; the monitor (nobody asked) plays it only
rarely and never during a call (``agent_kit.loop.monitor``). Only numbers leave the probe.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from agent_kit.core.checks import AUDIO_ECHO
from agent_kit.core.i18n import _

if TYPE_CHECKING:
    from agent_kit.core.results import CheckResult
    from agent_kit.run.units import ProbeContext

ANNOUNCE_S = 2.0   # the words stand alone this long before the sound: time to read them
# the whole play-and-record, as the probe lays it out (lead, chirp, longest echo path, tail)
RECORD_S = 2.0


def echo_results(ctx: ProbeContext) -> list[CheckResult]:
    """Announce (when a person is there), play and record, judge."""
    from agent_kit.evaluate.audio import evaluate_echo
    from probes.audio.echo import measure_echo

    params = ctx.policy.check(AUDIO_ECHO.id).params
    probe_s = float(params.get("probe_s", 0.5))
    guide = ctx.microphone if ctx.interactive else None
    text = _("Echo test: in two seconds a short, quiet tone ({seconds:g} s) plays through your "
             "headset (or speakers). Keep the headset on and stay quiet.").format(
                 seconds=probe_s)
    if guide is not None:
        guide.phase(text, ANNOUNCE_S + RECORD_S)
        time.sleep(ANNOUNCE_S)
    elif ctx.interactive:
        ctx.prompt(text)
        time.sleep(ANNOUNCE_S)
    try:
        reading = measure_echo(level_dbfs=float(params.get("probe_dbfs", -30.0)),
                               seconds=probe_s,
                               on_level=guide.level if guide is not None else None)
    finally:
        if guide is not None:
            guide.finished()
    return [evaluate_echo(reading, ctx.policy)]
