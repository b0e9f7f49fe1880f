"""Judge the path unit's readings at once: the path stream and the traceroute after it.

The path unit (``agent_kit.run.units``) measures first (the RTP-like stream to the center's
reflector, then, when the policy asks, the hop-by-hop trace) and calls ``evaluate_path`` once
with both readings; the monitor (``agent_kit.loop.monitor``) calls the same function when its
own traceroute (a child process) answers, so a reading gets the same words in a heartbeat as in
``agent-kit check``.

The five results are ``network.rtt``, ``network.jitter``, ``network.loss``, ``network.mos``
(``agent_kit.evaluate.network``) and ``network.hops`` (``agent_kit.evaluate.hops``). Where the
traceroute saw loss or delay start (home, ISP, beyond) decides the loss, jitter and MOS fixes:
that segment's fix instead of the generic one.
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


def evaluate_path(path: PathReading, hops: TracerouteReading | None,
                  policy: Policy) -> list[CheckResult]:
    """The five path checks of one path stream and the traceroute taken after it; ``hops`` is
    None when the hop-by-hop test is switched off (``[path] traceroute = false``)."""
    if hops is None:
        return [*evaluate_network(path, policy), hops_off(policy)]
    traced = evaluate_hops(hops, policy)
    return [*evaluate_network(path, policy, loss_at=traced.details.get("loss_segment"),
                              delay_at=traced.details.get("delay_segment")), traced]
