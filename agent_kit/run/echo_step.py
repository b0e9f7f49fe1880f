"""The echo test (the ``echo`` unit): a short quiet chirp out, the echo of it measured in.

With a person at the screen the step first says what it will play and that it will be quiet
(the microphone step's guide shows the words, then ``ANNOUNCE_S`` later the stream opens; its
``probes.audio.echo.LEAD_S`` of silence come before the chirp, so the words stand about 0.8 s
before anything sounds), so nobody is startled and nobody talks over it. Without a guide the
words go through ``ProbeContext.prompt``; the monitor (nobody asked) plays it only rarely and
never during a call (``agent_kit.loop.monitor``). Only numbers leave the probe.

Cost to the check: ``ANNOUNCE_S`` + ``recording_s()`` (1.46 s) + opening the stream, about 2 s
guided and 1.6 s unguided; a second recording only when a driver gap cut through the first.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from agent_kit.core.checks import AUDIO_ECHO
from agent_kit.core.i18n import _

if TYPE_CHECKING:
    from agent_kit.core.results import CheckResult
    from agent_kit.run.units import ProbeContext

ANNOUNCE_S = 0.5   # the words stand alone this long before the stream opens


def echo_results(ctx: ProbeContext) -> list[CheckResult]:
    """Announce (when a person is there), play and record, judge."""
    from agent_kit.evaluate.echo import evaluate_echo
    from probes.audio.echo import PROBE_DBFS, PROBE_S, measure_echo, recording_s

    params = ctx.policy.check(AUDIO_ECHO.id).params
    probe_s = float(params.get("probe_s", PROBE_S))
    guide = ctx.microphone if ctx.interactive else None
    text = _("Echo test: in a moment a short, quiet tone ({seconds:g} s) plays through your "
             "headset (or speakers). Keep the headset on and stay quiet.").format(
                 seconds=probe_s)
    if guide is not None:
        guide.phase(text, ANNOUNCE_S + recording_s(probe_s))
        time.sleep(ANNOUNCE_S)
    elif ctx.interactive:
        ctx.prompt(text)
        time.sleep(ANNOUNCE_S)
    try:
        reading = measure_echo(level_dbfs=float(params.get("probe_dbfs", PROBE_DBFS)),
                               seconds=probe_s,
                               on_level=guide.level if guide is not None else None)
    finally:
        if guide is not None:
            guide.finished()
    return [evaluate_echo(reading, ctx.policy)]
