"""Lab part: the agent's test-call unit alone, run at home against a lab center.

``python -m tests.lab.call_client URL [CODEC]`` discovers the center (``GET /healthz``), runs the
product's test-call unit (``agent_kit.run.units``, unit ``call``: the stream through the
reflector, the receive record, the center's score, the judgement) with the default policy and
``CODEC``, and prints the check result's JSON on one line. Only this module's choice of unit
and codec is the lab's: the rest is the product, so the lab exercises what ``agent-kit check``
runs without the other units' time.
"""

from __future__ import annotations

import dataclasses
import json
import sys


def main(url: str, codec: str = "G.711") -> int:
    from agent_kit.core.checks import NETWORK_TEST_CALL
    from agent_kit.core.policy import load_policy
    from agent_kit.link.discovery import discover_center
    from agent_kit.run.units import UNITS, ProbeContext

    policy = load_policy()
    rule = policy.check(NETWORK_TEST_CALL.id)
    policy = dataclasses.replace(policy, checks={
        **policy.checks, NETWORK_TEST_CALL.id: dataclasses.replace(
            rule, params={**rule.params, "codec": codec})})
    # Discovery is not what this lab measures: on its 8 % loss line a TCP handshake that loses
    # its SYN twice takes 3 s (1 s + 2 s), the product's default discovery timeout, and the
    # lab once failed there ("does not answer: timed out") before any call was made.
    ctx = ProbeContext(policy=policy, center=discover_center(url, timeout_s=15.0))
    unit = next(u for u in UNITS if u.name == "call")
    for result in unit.run(ctx):
        print(json.dumps(result.to_json()), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
