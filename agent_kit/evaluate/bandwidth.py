"""Judge the line: download and upload speed, and latency under load (bufferbloat).

Speeds are judged by the policy's Mbit/s levels (lower is worse); bufferbloat by the RTT added
under load in ms (higher is worse, ``probes.bandwidth.bufferbloat.latency_increase_ms``),
reported with its letter grade (``bufferbloat_grade``).

The grade scale is the one the public bufferbloat tests use (STANDARDS.md, "Bufferbloat grades
(latency increase under load)"): A+ below +5 ms, A below +30, B below +60, C below +200, D below
+400, F from +400 ms. A boundary value belongs to the worse grade (+5 ms is an A, not an A+).
"""

from __future__ import annotations

from typing import Any

from agent_kit.core.checks import BANDWIDTH_BUFFERBLOAT, BANDWIDTH_DOWN, BANDWIDTH_UP
from agent_kit.core.i18n import M_
from agent_kit.core.levels import level_result, unknown_result
from agent_kit.core.policy import Policy
from agent_kit.core.results import CheckResult
from probes.bandwidth.measure import BandwidthReading, DirectionReading

CHECK_IDS = (BANDWIDTH_DOWN.id, BANDWIDTH_UP.id, BANDWIDTH_BUFFERBLOAT.id)
# (upper bound in ms, exclusive; grade), best first; anything at or above the last bound is F.
GRADE_BOUNDS_MS: tuple[tuple[float, str], ...] = (
    (5.0, "A+"), (30.0, "A"), (60.0, "B"), (200.0, "C"), (400.0, "D"),
)
GRADES: tuple[str, ...] = (*(g for _, g in GRADE_BOUNDS_MS), "F")


def bufferbloat_grade(increase_ms: float) -> str:
    """Letter grade (A+ .. F) of a latency increase under load, in ms."""
    if increase_ms != increase_ms:  # NaN: no honest grade
        raise ValueError("latency increase is NaN")
    for bound, grade in GRADE_BOUNDS_MS:
        if increase_ms < bound:
            return grade
    return "F"


def bandwidth_unknown(policy: Policy, reason: str) -> list[CheckResult]:
    """Every bandwidth check ``unknown`` for one reason (no center, endpoint down...)."""
    return [unknown_result(cid, policy, reason) for cid in CHECK_IDS]


def evaluate_bandwidth(reading: BandwidthReading, policy: Policy) -> list[CheckResult]:
    return [_speed(BANDWIDTH_DOWN.id, reading.download, policy, reading.duration_s),
            _speed(BANDWIDTH_UP.id, reading.upload, policy, reading.duration_s),
            _bufferbloat(reading, policy)]


def _direction_details(d: DirectionReading, phase_s: float) -> dict[str, Any]:
    # mbit_s unrounded to 3 decimals: the value's 0.1 Mbit/s is a fifth of a 0.5 Mbit/s uplink
    return {"mbit_s": None if d.mbit_s is None else round(d.mbit_s, 3),
            "probe_mbit_s": round(d.probe_mbit_s, 3), "counted": d.counted,
            "measured_s": round(d.measured_s, 2), "warmup_s": round(d.warmup_s, 2),
            "elapsed_s": round(d.elapsed_s, 2), "streams": d.streams, "steady": d.steady,
            "measured_bytes": d.measured_bytes, "total_bytes": d.total_bytes,
            "stream_errors": d.stream_errors,
            "phase_s": round(phase_s, 2)}   # the whole bandwidth phase, both directions


def _speed(check_id: str, d: DirectionReading, policy: Policy, phase_s: float) -> CheckResult:
    down = check_id == BANDWIDTH_DOWN.id
    if d.mbit_s is None:
        return unknown_result(check_id, policy, M_("could not measure the speed: {reason}",
            reason=d.problem or M_("no data")))
    rule = policy.check(check_id)
    target = rule.warn if rule.warn is not None else rule.fail
    if down:
        message = (M_("download {mbit:.1f} Mbit/s") if d.steady else
                   M_("download {mbit:.1f} Mbit/s (the speed varied during the test: "
                     "approximate)")).format(mbit=d.mbit_s)
        fix = M_("Someone at home may be streaming or downloading: pause video, game and "
                "cloud-backup downloads and run the check again. If it stays below {target:g} "
                "Mbit/s, ask your internet provider for a faster plan.", target=target)
    else:
        message = (M_("upload {mbit:.1f} Mbit/s") if d.steady else
                   M_("upload {mbit:.1f} Mbit/s (the speed varied during the test: "
                     "approximate)")).format(mbit=d.mbit_s)
        fix = M_("Someone at home may be uploading: pause cloud photo or file backups and "
                "video calls on other devices, then run the check again. If it stays below "
                "{target:g} Mbit/s, ask your internet provider for a plan with a faster "
                "upload.", target=target)
    return level_result(check_id, d.mbit_s, policy, message=message, fix_if_bad=fix,
                        details=_direction_details(d, phase_s), ndigits=1)


def _bufferbloat(reading: BandwidthReading, policy: Policy) -> CheckResult:
    increase = reading.latency_increase_ms
    if increase is None or reading.idle_rtt_ms is None:
        return unknown_result(BANDWIDTH_BUFFERBLOAT.id, policy,
                              M_("latency under load not measured: {reason}",
                                  reason=reading.latency_problem or M_("no reflector reply")))
    grade = bufferbloat_grade(increase)
    loaded = {"download": reading.loaded_rtt_down_ms, "upload": reading.loaded_rtt_up_ms}
    worst = max((k for k, v in loaded.items() if v is not None),
                key=lambda k: loaded[k] or 0.0)
    worst_rtt = loaded[worst] or 0.0
    if worst == "download":
        message = M_("grade {grade}: latency rises by {increase:.0f} ms while downloading "
                    "({idle:.1f} ms idle, {loaded:.1f} ms loaded)")
    else:
        message = M_("grade {grade}: latency rises by {increase:.0f} ms while uploading "
                    "({idle:.1f} ms idle, {loaded:.1f} ms loaded)")
    fix = M_("Your router lets a queue build up when the line is busy, so calls break up "
            "whenever someone streams or uploads. Enable SQM (Smart Queue Management) or QoS on "
            "the router, set a little below your line speed; until then, ask others at home not "
            "to stream or upload during your calls.")
    details = {"grade": grade, "idle_rtt_ms": _r(reading.idle_rtt_ms),
               "loaded_rtt_down_ms": _r(reading.loaded_rtt_down_ms),
               "loaded_rtt_up_ms": _r(reading.loaded_rtt_up_ms), "worst_direction": worst,
               "rtt_samples": dict(reading.rtt_samples)}
    return level_result(BANDWIDTH_BUFFERBLOAT.id, increase, policy, ndigits=1,
                        message=message.format(grade=grade, increase=increase,
                                               idle=reading.idle_rtt_ms, loaded=worst_rtt),
                        fix_if_bad=fix, details=details)


def _r(value: float | None) -> float | None:
    return None if value is None else round(value, 2)
