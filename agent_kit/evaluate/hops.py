"""Judge the traceroute: which part of the path (home, ISP, beyond) loss or delay starts in.

Input is one ``probes.network.traceroute.TracerouteReading``, each hop in its segment
(``probes.network.hop_segments.segments``: a fact about the hop's place and address). ``locate``
names the hop where loss rises by at least ``loss_pct`` points or the median round-trip time by
at least ``delay_ms`` and stays so to the center (``[checks."network.hops"]``).

Loss or delay "starts" at the hop where it first appears *and stays for every later hop*
(the usual reading of mtr output): a router that answers slowly or rarely itself (ICMP is
low priority and rate-limited on routers) but forwards well shows a bad hop followed by good
ones, which is not a problem of the path. So per hop the *floor* is the least value of that
hop and every later answering hop; the floor only rises along the path, and each rise is
what the segment into that hop adds. The hop with the largest rise at or above the level is
named (ties: the earlier hop).

``network.hops`` is informational: it passes when no segment adds that much, warns naming the
segment where it starts (loss before delay: it hurts calls more), and is ``unknown`` with the
reason when the traceroute could not run (no raw-socket privileges, no scapy, switched off with
``[path] traceroute = false``). Its value is the segment: ``home``, ``isp``, ``beyond`` or
``clean``; ``details`` hold every hop. ``agent_kit.evaluate.path`` judges it together with the
path stream it followed, and two facts from outside the trace keep its words from contradicting
the other checks: the path stream's own end-to-end loss (when the stream lost nothing, a hop
that drops probes is a router rate-limiting its ICMP answers, not loss on the path: no loss
finding), and the kind of link (on a cable the home segment's fix never speaks of Wi-Fi).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from agent_kit.core.checks import NETWORK_HOPS
from agent_kit.core.i18n import M_, N_, Msg
from agent_kit.core.levels import state_result, unknown_result
from agent_kit.core.policy import Policy
from agent_kit.core.results import CheckResult, Status
from probes.network.hop_segments import segments
from probes.network.traceroute import HopReading, TracerouteReading

CHECK_ID = NETWORK_HOPS.id
DEFAULT_LOSS_PCT = 20.0
DEFAULT_DELAY_MS = 50.0

_SEGMENT = {
    "home": N_("in your home network (this computer to the home router: Wi-Fi or cable)"),
    "isp": N_("in your internet provider's network (after the home router)"),
    "beyond": N_("beyond your internet provider (the internet or the center)"),
}
_FIX = {
    "home": N_("The problem starts between this computer and your home router. Use a cable "
               "instead of Wi-Fi (or sit close to the router), and restart the router."),
    "isp": N_("The problem starts at your internet provider, after your home router. Restart "
              "the router; if it stays, call your internet provider (ISP) and give them the "
              "hop and the figures in this report."),
    "beyond": N_("The problem starts beyond your internet provider, on the way to the center "
                 "or at the center. Nothing at home will fix it: send this report to IT."),
}
# On a cable there is no Wi-Fi to blame between the computer and the router.
_FIX_HOME_WIRED = N_("The problem starts between this computer and your home router. Check that "
                     "the network cable is firmly plugged in at both ends (or try another cable "
                     "or another port on the router), and restart the router.")


@dataclass(frozen=True)
class HopStep:
    """What the segment into one hop adds, and which segment that hop is in."""

    ttl: int
    address: str | None
    segment: str                 # one of probes.network.hop_segments.SEGMENTS
    loss_pct: float | None       # this hop's own loss; None when it never answered
    rtt_median_ms: float | None
    added_loss_pct: float        # rise of the loss floor at this hop (0 for silent hops)
    added_delay_ms: float        # rise of the median-RTT floor at this hop


@dataclass(frozen=True)
class HopFinding:
    """Where loss and delay start; ``None`` fields when they stay under the levels."""

    steps: tuple[HopStep, ...]
    loss_at: HopStep | None
    delay_at: HopStep | None

    @property
    def segment(self) -> str | None:
        """The segment to blame: the loss's when there is loss (it hurts calls more), else the
        delay's."""
        worst = self.loss_at or self.delay_at
        return worst.segment if worst else None


def locate(hops: Sequence[HopReading], *, loss_pct: float, delay_ms: float) -> HopFinding:
    """Name the hop where loss (rise of at least ``loss_pct`` points) and delay (rise of the
    median RTT of at least ``delay_ms``) start. Hops that never answered are skipped."""
    segs = segments(hops)
    answering = [i for i, h in enumerate(hops) if h.received > 0 and h.rtt_median_ms is not None]
    loss_floor = _floors([hops[i].loss_pct for i in answering])
    delay_floor = _floors([hops[i].rtt_median_ms or 0.0 for i in answering])
    added: dict[int, tuple[float, float]] = {}
    prev_loss = prev_delay = 0.0
    for n, i in enumerate(answering):
        added[i] = (loss_floor[n] - prev_loss, delay_floor[n] - prev_delay)
        prev_loss, prev_delay = loss_floor[n], delay_floor[n]
    steps = tuple(
        HopStep(ttl=h.ttl, address=h.address, segment=segs[i],
                loss_pct=h.loss_pct if i in added else None, rtt_median_ms=h.rtt_median_ms,
                added_loss_pct=added.get(i, (0.0, 0.0))[0],
                added_delay_ms=added.get(i, (0.0, 0.0))[1])
        for i, h in enumerate(hops))
    return HopFinding(steps=steps,
                      loss_at=_largest(steps, lambda s: s.added_loss_pct, loss_pct),
                      delay_at=_largest(steps, lambda s: s.added_delay_ms, delay_ms))


def _floors(values: Sequence[float]) -> list[float]:
    """floor[n] = min(values[n:]): what every hop from n on carries at least."""
    out: list[float] = []
    low = float("inf")
    for v in reversed(values):
        low = min(low, v)
        out.append(low)
    return out[::-1]


def _largest(steps: Sequence[HopStep], key: Callable[[HopStep], float],
             level: float) -> HopStep | None:
    best: HopStep | None = None
    for step in steps:
        value = key(step)
        if value >= level and (best is None or value > key(best)):
            best = step
    return best


def segment_fix(segment: str, link_kind: str | None = None) -> Msg:
    """What to do when trouble starts in ``segment`` (home, isp, beyond), translated.
    ``link_kind``: the ``network.link`` value (``wired``, ``wifi``...; None when not known):
    a wired link gets the cable and router fix for the home segment, never Wi-Fi advice."""
    if segment == "home" and link_kind == "wired":
        return M_(_FIX_HOME_WIRED)
    return M_(_FIX[segment])


def hops_unknown(policy: Policy, reason: Msg | str, *, privileges: bool = False) -> CheckResult:
    fix = (M_("IT can let the agent see where problems start by allowing raw sockets: run it "
             "as root or give it the CAP_NET_RAW capability (Linux), or install Npcap "
             "(Windows).") if privileges else None)
    return unknown_result(CHECK_ID, policy, reason, fix=fix)


def hops_off(policy: Policy) -> CheckResult:
    return hops_unknown(policy, M_("the hop-by-hop test is switched off in the policy "
                                  "([path] traceroute = false)"))


def evaluate_hops(reading: TracerouteReading, policy: Policy, *, link_kind: str | None = None,
                  end_to_end_loss_pct: float | None = None) -> CheckResult:
    """``network.hops`` of one traceroute. ``link_kind``: the ``network.link`` value (the home
    fix on a cable names the cable, not Wi-Fi). ``end_to_end_loss_pct``: the loss the path stream
    measured to the center (None: not known); at 0 no loss finding is made, since probes the
    routers did not answer are then their ICMP rate limits, not loss calls would suffer."""
    if reading.needs_privileges:
        return hops_unknown(policy, M_("the hop-by-hop test needs raw-socket privileges: "
                                      "{reason}", reason=reading.problem),
                            privileges=True)
    if not reading.hops:
        reason = reading.problem or M_("no hop answered")
        return hops_unknown(policy, M_("the hop-by-hop test did not run: {reason}",
            reason=reason))
    params = policy.check(CHECK_ID).params
    finding = locate(reading.hops,
                     loss_pct=float(params.get("loss_pct", DEFAULT_LOSS_PCT)),
                     delay_ms=float(params.get("delay_ms", DEFAULT_DELAY_MS)))
    if end_to_end_loss_pct is not None and end_to_end_loss_pct <= 0.0 and finding.loss_at:
        finding = HopFinding(steps=finding.steps, loss_at=None, delay_at=finding.delay_at)
    details = _details(reading, finding)
    if finding.segment is None:
        if reading.reached:
            message = M_("{hops} hops to the center; no part of the path adds loss or "
                        "delay", hops=len(reading.hops))
        else:
            message = M_("{hops} hops traced (the center itself did not answer); no part of "
                        "the path adds loss or delay", hops=len(reading.hops))
        return state_result(CHECK_ID, Status.PASS, "clean", policy, message=message,
                            details=details)
    parts: list[Msg] = []
    if finding.loss_at is not None:
        parts.append(M_("loss starts {where}: {added:.0f} % more probes lost from hop "
                       "{ttl} ({address}) on",
            where=M_(_SEGMENT[finding.loss_at.segment]), added=finding.loss_at.added_loss_pct,
            ttl=finding.loss_at.ttl, address=_address(finding.loss_at)))
    if finding.delay_at is not None:
        parts.append(M_("delay starts {where}: {added:.0f} ms more from hop {ttl} "
                       "({address}) on",
            where=M_(_SEGMENT[finding.delay_at.segment]),
            added=finding.delay_at.added_delay_ms, ttl=finding.delay_at.ttl,
            address=_address(finding.delay_at)))
    return state_result(CHECK_ID, Status.WARN, finding.segment, policy,
                        message=parts[0] if len(parts) == 1 else M_(
                            "{first}; {second}", first=parts[0], second=parts[1]),
                        fix=segment_fix(finding.segment, link_kind),
                        details=details)


def _address(step: HopStep) -> str:
    return step.address or "?"


def _details(reading: TracerouteReading, finding: HopFinding) -> dict[str, Any]:
    return {
        "target": reading.target, "reached": reading.reached,
        "duration_s": round(reading.duration_s, 2),
        "segment": finding.segment,
        "loss_at": finding.loss_at.ttl if finding.loss_at else None,
        "loss_segment": finding.loss_at.segment if finding.loss_at else None,
        "delay_at": finding.delay_at.ttl if finding.delay_at else None,
        "delay_segment": finding.delay_at.segment if finding.delay_at else None,
        "hops": [{"ttl": s.ttl, "address": s.address, "segment": s.segment,
                  "sent": h.sent, "received": h.received,
                  "loss_pct": None if s.loss_pct is None else round(s.loss_pct, 1),
                  "rtt_median_ms": _r(h.rtt_median_ms), "rtt_p95_ms": _r(h.rtt_p95_ms),
                  "added_loss_pct": round(s.added_loss_pct, 1),
                  "added_delay_ms": round(s.added_delay_ms, 2)}
                 for s, h in zip(finding.steps, reading.hops, strict=True)],
    }


def _r(value: float | None) -> float | None:
    return None if value is None else round(value, 2)
