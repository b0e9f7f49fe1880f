"""Judge the scored test call (``network.test_call``): what a call through this line sounds like.

Input: the center's score (``agent_kit.core.wire.test_call.CallScore``: ViSQOL MOS-LQO per
direction and the codec's own clean score) and the path reading of the same stream (the same
seconds), from which the G.107 E-model estimate of each direction is computed as
``network.mos`` computes it (the listener's one-way loss and BurstR, RTT/2 + 2 x the steady
jitter + packetisation for Ta), so the two figures stand side by side in the details.

The value is the worse direction's MOS-LQO, judged by the policy's levels. The two figures
answer different questions and can disagree: ViSQOL hears the played audio (loss and late
packets, concealed), so it does not fall with delay alone, where the E-model does (Idd); the
E-model reads loss statistics, so it does not see that a loss fell in a pause, or that the
jitter buffer dropped late packets (docs/BENCHMARKS.md, "Scored test call").
"""

from __future__ import annotations

from agent_kit.core.checks import NETWORK_TEST_CALL
from agent_kit.core.i18n import M_, Msg, join
from agent_kit.core.levels import level_result, unknown_result
from agent_kit.core.policy import Policy
from agent_kit.core.results import CheckResult
from agent_kit.core.wire.test_call import CallScore, DirectionScore
from probes.network import emodel
from probes.network.path import PathReading

DEFAULT_CODEC = "G.711"
DEFAULT_JITTER_BUFFER_MS = 60
_EMODEL_CODEC = {"G.711": "G.711", "Opus": "Opus"}


def unknown_test_call(policy: Policy, reason: Msg | str) -> list[CheckResult]:
    """The test call ``unknown`` for one reason (no center, no offer, no score)."""
    return [unknown_result(NETWORK_TEST_CALL.id, policy, reason)]


def _emodel(reading: PathReading, codec: str, way: str) -> emodel.EModelResult:
    steady = reading.jitter_up_steady_ms if way == "up" else reading.jitter_down_steady_ms
    jitter = steady if steady is not None else (reading.jitter_ms or 0.0)
    if reading.per_direction:
        loss = (reading.loss_up_pct if way == "up" else reading.loss_down_pct) or 0.0
        ratio = (reading.burst_ratio_up if way == "up" else reading.burst_ratio_down) or 1.0
    else:
        loss, ratio = reading.loss_pct, reading.burst_ratio
    return emodel.estimate(reading.rtt_median_ms or 0.0, jitter, loss,
                           _EMODEL_CODEC.get(codec, "G.711"), ratio)


def _direction_details(score: DirectionScore, est: emodel.EModelResult) -> dict[str, float]:
    return {"mos_lqo": round(score.mos_lqo, 2), "packets": score.packets, "lost": score.lost,
            "late": score.late, "concealed_ms": round(score.concealed_ms, 1),
            "emodel_mos": round(est.mos, 2), "emodel_r": round(est.r, 1),
            "emodel_ta_ms": round(est.ta_ms, 1)}


def _fix(score: CallScore, worse: DirectionScore, link_kind: str | None) -> Msg:
    if worse.lost == 0 and worse.late == 0:
        return M_("The test call sounded poor although no packet was lost or late: {codec} "
                  "alone scores {reference:.2f} here. Ask IT to check the test-call codec in "
                  "the policy.", codec=score.codec, reference=score.reference_mos_lqo)
    wired = link_kind == "wired"
    if worse.late > worse.lost:
        cause = M_("In the test call packets arrived too unevenly for the softphone to play "
                   "them in time, so words broke up.")
    else:
        cause = M_("In the test call packets got lost on the way, so words dropped out.")
    if wired:
        return join(cause, M_("Pause big downloads, uploads and video streams at home, then "
                              "run the check again; if it stays, restart your router, and then "
                              "call your internet provider (ISP)."))
    return join(cause, M_("Use a cable instead of Wi-Fi and pause big downloads, uploads and "
                          "video streams at home, then run the check again; if it stays, call "
                          "your internet provider (ISP)."))


def evaluate_test_call(score: CallScore, reading: PathReading, policy: Policy, *,
                       link_kind: str | None = None, assumed: tuple[int, int] = (0, 0)
                       ) -> CheckResult:
    """``network.test_call`` from the center's score and the same stream's path reading.
    ``assumed``: packets of each direction (up, down) the agent could not observe and filled
    in (``agent_kit.link.test_call``)."""
    est = {way: _emodel(reading, score.codec, way) for way in ("up", "down")}
    worse_way = "down" if score.down.mos_lqo < score.up.mos_lqo else "up"
    worse = score.down if worse_way == "down" else score.up
    message = M_("test call scored {mos:.2f} with {codec} (ViSQOL MOS-LQO; the caller hears "
                 "you at {up:.2f}, you hear the caller at {down:.2f}; {codec} alone scores "
                 "{reference:.2f}; the E-model estimate of the same seconds: {emodel:.2f})",
                 mos=worse.mos_lqo, codec=score.codec, up=score.up.mos_lqo,
                 down=score.down.mos_lqo, reference=score.reference_mos_lqo,
                 emodel=min(est["up"].mos, est["down"].mos))
    details: dict[str, object] = {
        "codec": score.codec, "clip": score.clip, "direction": worse_way,
        "reference_mos_lqo": round(score.reference_mos_lqo, 2),
        "jitter_buffer_ms": score.jitter_buffer_ms, "scorer": score.scorer,
        "center_cpu_s": round(score.cpu_s, 2), "assumed_up": assumed[0],
        "assumed_down": assumed[1], "rtt_ms": round(reading.rtt_median_ms or 0.0, 1),
        "up": _direction_details(score.up, est["up"]),
        "down": _direction_details(score.down, est["down"])}
    return level_result(NETWORK_TEST_CALL.id, worse.mos_lqo, policy, message=message,
                        fix_if_bad=_fix(score, worse, link_kind), details=details)
