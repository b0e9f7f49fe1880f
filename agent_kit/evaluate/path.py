"""Judge the path unit's readings at once: the path stream and the traceroute after it.

The path unit (``agent_kit.run.units``) measures first (the RTP-like stream to the center's
reflector, then, when the policy asks, the hop-by-hop trace) and calls ``evaluate_path`` once
with both readings; the monitor (``agent_kit.loop.monitor``) calls the same function when its
own traceroute (a child process) answers, so a reading gets the same words in a heartbeat as in
``agent-kit check``.

The five results are ``network.rtt``, ``network.jitter``, ``network.loss``, ``network.mos``
(``agent_kit.evaluate.network``) and ``network.hops`` (``agent_kit.evaluate.hops``). Where the
traceroute saw loss or delay start (home, ISP, beyond) decides the loss, jitter and MOS fixes:
that segment's fix instead of the generic one. The stream also tells the trace what it must
not contradict: when the stream lost nothing end to end, the trace makes no loss finding; and
the link kind (``network.link``'s value, when the caller knows it) keeps Wi-Fi advice off a
cable in every fix.
"""

from __future__ import annotations

from agent_kit.core.checks import NETWORK_HOPS
from agent_kit.core.i18n import Msg
from agent_kit.core.policy import Policy
from agent_kit.core.results import CheckResult
from agent_kit.evaluate.hops import evaluate_hops, hops_off, hops_unknown
from agent_kit.evaluate.network import CHECK_IDS as STREAM_CHECK_IDS
from agent_kit.evaluate.network import evaluate_network, network_unknown
from probes.network.path import PathReading
from probes.network.traceroute import TracerouteReading

CHECK_IDS = (*STREAM_CHECK_IDS, NETWORK_HOPS.id)


def path_unknown(policy: Policy, reason: Msg | str) -> list[CheckResult]:
    """Every path check ``unknown`` for one reason (no center, no reflector offered...)."""
    return [*network_unknown(policy, reason), hops_unknown(policy, reason)]


def end_to_end_loss_pct(path: PathReading) -> float | None:
    """The loss the path stream saw on the round trip to the center (at least each direction's);
    None when no packet came back (nothing is known)."""
    return None if path.received == 0 else path.loss_pct


def evaluate_path(path: PathReading, hops: TracerouteReading | None,
                  policy: Policy, *, link_kind: str | None = None) -> list[CheckResult]:
    """The five path checks of one path stream and the traceroute taken after it; ``hops`` is
    None when the hop-by-hop test is switched off (``[path] traceroute = false``).
    ``link_kind``: the ``network.link`` value (wired, wifi...) when known."""
    if hops is None:
        return [*evaluate_network(path, policy, link_kind=link_kind), hops_off(policy)]
    traced = evaluate_hops(hops, policy, link_kind=link_kind,
                           end_to_end_loss_pct=end_to_end_loss_pct(path))
    return [*evaluate_network(path, policy, loss_at=traced.details.get("loss_segment"),
                              delay_at=traced.details.get("delay_segment"),
                              link_kind=link_kind), traced]
