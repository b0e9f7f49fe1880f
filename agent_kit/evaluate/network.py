"""Judge the path to the center: round-trip time, jitter, loss and the estimated call quality.

Input is one ``probes.network.path.PathReading`` (an RTP-like stream to the center's reflector):

- ``network.rtt``: the median RTT (ms), the reflector's own hold time taken out (RFC 5357).
- ``network.jitter``: RFC 3550 interarrival jitter (ms) of the worse direction: the running J at
  the end of the stream, what RTCP, iperf3 and WebRTC report. The details also give, per
  direction, the steady figure (mean |D| over the stream, what J estimates without its warm-up
  from 0; ``probes.network.rtp_stats.mean_transit_difference``).
- ``network.loss``: packet loss (%) of the worse direction: towards the center (sent - answered
  by the reflector) or back (answered - received), from the reflector's per-session count; the
  round-trip figure is in the details. Against a reflector that does not count per direction,
  the round-trip loss (an upper bound of each direction's).
- ``network.mos``: ITU-T G.107 E-model MOS (``probes.network.emodel``) for the policy's codec
  (``[checks."network.mos"] codec``), once per direction, each fed the loss and BurstR the
  listener of that direction gets (G.107's Ppl is the listener's one-way loss); the worse
  direction is judged, both are in the details. The one-way mouth-to-ear delay Ta is estimated
  as ``RTT/2`` (the network one way; the path is taken as symmetric because the two clocks are
  not synchronised) ``+ 2 x jitter`` of that direction (an adaptive jitter buffer sized at
  twice the steady jitter, a common setting) ``+`` the codec's packetisation and look-ahead
  (20 ms for G.711 at 20 ms packets; ``probes.network.emodel.mouth_to_ear_ms``). Terminal and
  headset delays are not known to the agent and left out, so the MOS is that of the network
  part of the call: an upper bound. Opus is estimated as narrowband and says so.

A failing check's fix names the likely cause in plain words; the same words in every language
go through ``M_()``. When the traceroute (``agent_kit.evaluate.hops``) named where loss or delay
starts, the loss, jitter and MOS fixes say that segment's fix instead of the generic one
(``loss_at``/``delay_at``: "home", "isp" or "beyond"; ``agent_kit.evaluate.path`` judges the
stream and the trace together and passes them). On a wired link (``link_kind="wired"``, the
``network.link`` value) no fix speaks of Wi-Fi: the evidence says there is none.
"""

from __future__ import annotations

from dataclasses import dataclass

from agent_kit.core.checks import NETWORK_JITTER, NETWORK_LOSS, NETWORK_MOS, NETWORK_RTT
from agent_kit.core.i18n import M_, Msg, join
from agent_kit.core.levels import level_result, unknown_result
from agent_kit.core.policy import Policy
from agent_kit.core.results import CheckResult
from probes.network import emodel
from probes.network.path import PathReading

CHECK_IDS = (NETWORK_RTT.id, NETWORK_JITTER.id, NETWORK_LOSS.id, NETWORK_MOS.id)
DEFAULT_CODEC = "G.711"


def network_unknown(policy: Policy, reason: Msg | str) -> list[CheckResult]:
    """Every path check ``unknown`` for one reason (no center, no reflector answer...)."""
    return [unknown_result(cid, policy, reason) for cid in CHECK_IDS]


def evaluate_network(reading: PathReading, policy: Policy, *, loss_at: str | None = None,
                     delay_at: str | None = None,
                     link_kind: str | None = None) -> list[CheckResult]:
    """The four path checks of one reading; all ``unknown`` when nothing came back.
    ``loss_at``/``delay_at``: the segment the traceroute saw loss/delay start in, if any;
    ``link_kind``: the ``network.link`` value when known (a cable gets no Wi-Fi advice)."""
    if reading.received == 0 or reading.rtt_median_ms is None or reading.jitter_ms is None:
        reason = reading.problem or M_("no packet came back from the reflector")
        return network_unknown(policy, M_("the path test to the center did not run: "
                                         "{reason}", reason=reason))
    wired = link_kind == "wired"
    return [_rtt(reading, policy, wired), _jitter(reading, policy, delay_at, link_kind),
            _loss(reading, policy, loss_at, link_kind),
            _mos(reading, policy, loss_at, delay_at, link_kind)]


def _fix_line(segment: str | None = None, link_kind: str | None = None) -> Msg:
    if segment is not None:
        from agent_kit.evaluate.hops import segment_fix

        return segment_fix(segment, link_kind)
    if link_kind == "wired":
        return M_("Pause big downloads, uploads and video streams at home, then run the check "
                  "again; if it stays, restart your router, and then call your internet "
                  "provider (ISP).")
    return M_("Use a cable instead of Wi-Fi and pause big downloads, uploads and video streams "
             "at home, then run the check again; if it stays, call your internet provider "
             "(ISP).")


def _fix_delay(wired: bool = False) -> Msg:
    if wired:
        return M_("The connection to the center is slow. Pause big uploads at home and restart "
                  "your router. If it stays, call your internet provider (ISP) and say the "
                  "delay to {target} is {rtt:.0f} ms.")
    return M_("The connection to the center is slow. Use a cable instead of Wi-Fi and pause big "
             "uploads at home; if you use a mobile or satellite connection, switch to your "
             "home line. If it stays, call your internet provider (ISP) and say the delay to "
             "{target} is {rtt:.0f} ms.")


def _rtt(reading: PathReading, policy: Policy, wired: bool = False) -> CheckResult:
    median = reading.rtt_median_ms or 0.0
    p95 = reading.rtt_p95_ms if reading.rtt_p95_ms is not None else median
    message = M_("{median:.1f} ms round trip to the center (95 % of packets within "
                "{p95:.1f} ms)", median=median, p95=p95)
    details = {"target": reading.target, "p95_ms": _r(reading.rtt_p95_ms),
               "min_ms": _r(reading.rtt_min_ms), "samples": reading.received,
               # per echoed packet in sequence order: the diagnosis report draws it
               "rtt_ms": [round(x, 2) for x in reading.rtt_ms_samples]}
    return level_result(NETWORK_RTT.id, median, policy, message=message,
                        fix_if_bad=_fix_delay(wired).format(target=reading.target,
                                                                 rtt=median),
                        details=details)


def _jitter(reading: PathReading, policy: Policy, delay_at: str | None = None,
            link_kind: str | None = None) -> CheckResult:
    jitter = reading.jitter_ms or 0.0
    up = reading.jitter_up_ms or 0.0
    down = reading.jitter_down_ms or 0.0
    message = M_("{jitter:.1f} ms jitter (RFC 3550; towards the center {up:.1f} ms, back "
                "{down:.1f} ms)", jitter=jitter, up=up, down=down)
    if delay_at is None and link_kind == "wired":
        fix = join(M_("Packets reach the center unevenly, so voices will break up. On a cable "
                      "this usually comes from someone at home streaming or downloading, or "
                      "from the internet line."), _fix_line(None, link_kind))
    elif delay_at is None:
        fix = join(M_("Packets reach the center unevenly, so voices will break up. This usually "
                      "comes from Wi-Fi or from someone at home streaming or downloading."),
                   _fix_line())
    else:
        fix = join(M_("Packets reach the center unevenly, so voices will break up."),
                   _fix_line(delay_at, link_kind))
    details = {
        # RFC 3550 6.4.1: the running J at the end of the stream (the check's value: the worse)
        "up_rfc3550_ms": _r(reading.jitter_up_ms), "down_rfc3550_ms": _r(reading.jitter_down_ms),
        # mean |D| over the stream: what J estimates, without J's warm-up from 0
        "up_mean_abs_d_ms": _r(reading.jitter_up_steady_ms),
        "down_mean_abs_d_ms": _r(reading.jitter_down_steady_ms),
        "kernel_timestamps": reading.kernel_timestamps,
        "reordered": reading.reordered}
    return level_result(NETWORK_JITTER.id, jitter, policy, message=message, fix_if_bad=fix,
                        details=details)


def _worse_direction(reading: PathReading) -> str:
    """"up" or "down": the direction with the higher loss (up on a tie)."""
    return "down" if (reading.loss_down_pct or 0.0) > (reading.loss_up_pct or 0.0) else "up"


def _loss(reading: PathReading, policy: Policy, loss_at: str | None = None,
          link_kind: str | None = None) -> CheckResult:
    lost = max(0, reading.sent - reading.received)
    details: dict[str, object] = {
        "sent": reading.sent, "received": reading.received, "reflected": reading.reflected,
        "round_trip_loss_pct": round(reading.loss_pct, 2),
        "burst_loss_round_trip_pct": round(reading.burst_loss_pct, 1),
        "burst_ratio_round_trip": round(reading.burst_ratio, 2),
        "duplicates": reading.duplicates, "reordered": reading.reordered}
    if reading.per_direction:
        way = _worse_direction(reading)
        up, down = reading.loss_up_pct or 0.0, reading.loss_down_pct or 0.0
        lost_up, lost_down = reading.lost_up or 0, reading.lost_down or 0
        reflected = reading.reflected or 0
        burst = (reading.burst_loss_up_pct if way == "up" else reading.burst_loss_down_pct) or 0.0
        ratio = (reading.burst_ratio_up if way == "up" else reading.burst_ratio_down) or 1.0
        value = up if way == "up" else down
        if way == "up":
            message = M_("{loss:.1f} % of packets lost towards the center ({lost} of {count}; "
                        "back: {other:.1f} %; worst 200 ms: {burst:.0f} %)",
                loss=up, lost=lost_up, count=reading.sent, other=down, burst=burst)
        else:
            message = M_("{loss:.1f} % of packets lost on the way back from the center ({lost} "
                        "of {count}; towards it: {other:.1f} %; worst 200 ms: "
                        "{burst:.0f} %)", loss=down, lost=lost_down, count=reflected,
                                                 other=up, burst=burst)
        details.update({
            "direction": way, "loss_up_pct": round(up, 2), "loss_down_pct": round(down, 2),
            "lost_up": lost_up, "lost_down": lost_down,
            "burst_loss_pct": round(burst, 1), "burst_ratio": round(ratio, 2),
            "burst_loss_up_pct": _r1(reading.burst_loss_up_pct),
            "burst_loss_down_pct": _r1(reading.burst_loss_down_pct),
            "burst_ratio_up": _r(reading.burst_ratio_up),
            "burst_ratio_down": _r(reading.burst_ratio_down),
            "direction_filled": reading.direction_filled})
    else:
        value = reading.loss_pct
        message = M_("{loss:.1f} % of packets lost on the round trip ({lost} of {sent}; worst "
                    "200 ms: {burst:.0f} %; the loss of each direction is not "
                    "known)", loss=reading.loss_pct, lost=lost, sent=reading.sent,
                                     burst=reading.burst_loss_pct)
        details.update({"direction": "round_trip",
                        "burst_loss_pct": round(reading.burst_loss_pct, 1),
                        "burst_ratio": round(reading.burst_ratio, 2)})
    if loss_at is None and link_kind == "wired":
        fix = join(M_("Packets to the center get lost, so words will drop out of calls. On a "
                      "cable a busy home line or the internet line is the usual cause."),
                   _fix_line(None, link_kind))
    elif loss_at is None:
        fix = join(M_("Packets to the center get lost, so words will drop out of calls. Weak "
                      "Wi-Fi and a busy home line are the usual causes."), _fix_line())
    else:
        fix = join(M_("Packets to the center get lost, so words will drop out of calls."),
                   _fix_line(loss_at, link_kind))
    return level_result(NETWORK_LOSS.id, value, policy, message=message, fix_if_bad=fix,
                        details=details)


@dataclass(frozen=True)
class _Listener:
    """The E-model for the listener of one direction, and what it was fed."""

    est: emodel.EModelResult
    loss_pct: float
    burst_ratio: float
    jitter_ms: float

    def details(self) -> dict[str, float]:
        return {"mos": round(self.est.mos, 3), "r": round(self.est.r, 1),
                "ta_ms": round(self.est.ta_ms, 1), "idd": round(self.est.idd, 2),
                "ie_eff": round(self.est.ie_eff, 2), "loss_pct": round(self.loss_pct, 2),
                "burst_ratio": round(self.burst_ratio, 2), "jitter_ms": round(self.jitter_ms, 2)}


def _listener(reading: PathReading, codec: str, way: str) -> _Listener:
    """The E-model for the listener of one direction: that direction's loss and BurstR (the
    round trip's when the reflector does not count) and its jitter buffer (twice the steady
    jitter of that direction)."""
    steady = reading.jitter_up_steady_ms if way == "up" else reading.jitter_down_steady_ms
    jitter = steady if steady is not None else (reading.jitter_ms or 0.0)
    if reading.per_direction:
        loss = (reading.loss_up_pct if way == "up" else reading.loss_down_pct) or 0.0
        ratio = (reading.burst_ratio_up if way == "up" else reading.burst_ratio_down) or 1.0
    else:
        loss, ratio = reading.loss_pct, reading.burst_ratio
    est = emodel.estimate(reading.rtt_median_ms or 0.0, jitter, loss, codec, ratio)
    return _Listener(est, loss, ratio, jitter)


def _mos(reading: PathReading, policy: Policy, loss_at: str | None = None,
         delay_at: str | None = None, link_kind: str | None = None) -> CheckResult:
    codec = str(policy.check(NETWORK_MOS.id).params.get("codec", DEFAULT_CODEC))
    both = {way: _listener(reading, codec, way) for way in ("up", "down")}
    way = "down" if both["down"].est.mos < both["up"].est.mos else "up"
    est = both[way].est
    spec = emodel.CODECS[est.codec]
    if reading.per_direction:
        message = M_("estimated MOS {mos:.2f} (R {r:.0f}) for {codec} calls (the caller hears "
                    "you at {up:.2f}, you hear the caller at {down:.2f})",
            mos=est.mos, r=est.r, codec=est.codec, up=both["up"].est.mos,
            down=both["down"].est.mos)
    else:
        message = M_("estimated MOS {mos:.2f} (R {r:.0f}) for {codec} calls, from the round-trip "
                    "loss (the loss of each direction is not known)",
            mos=est.mos, r=est.r, codec=est.codec)
    if spec.estimated_as_narrowband:
        message = join(message, M_("{codec} is estimated as a narrowband codec: no published "
                                   "wideband E-model values were found for it.",
                                   codec=est.codec))
    # Name the larger of the two impairments the network adds: loss (Ie_eff above the codec's
    # own Ie) or delay (Idd, which includes the jitter buffer).
    loss_part = est.ie_eff - spec.ie
    if loss_part >= est.idd:
        fix = join(M_("Calls would sound poor mainly because packets get lost."),
                   _fix_line(loss_at, link_kind))
    else:
        fix = join(M_("Calls would sound poor mainly because of the delay (including the "
                      "jitter buffer)."), _fix_line(delay_at, link_kind))
    details = {"r": round(est.r, 1), "ta_ms": round(est.ta_ms, 1), "idd": round(est.idd, 2),
               "ie_eff": round(est.ie_eff, 2), "codec": est.codec,
               "burst_ratio": round(both[way].burst_ratio, 2), "direction": way,
               "loss_basis": "per_direction" if reading.per_direction else "round_trip",
               # up: what the caller hears (agent -> center); down: what the agent hears
               "up": both["up"].details(), "down": both["down"].details(),
               "model": "ITU-T G.107 (narrowband)",
               "estimated_as_narrowband": spec.estimated_as_narrowband}
    return level_result(NETWORK_MOS.id, est.mos, policy, message=message, fix_if_bad=fix,
                        details=details)


def _r1(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def _r(value: float | None) -> float | None:
    return None if value is None else round(value, 2)
