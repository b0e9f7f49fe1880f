"""Prometheus text for ``/metrics``, written directly (the format is a few lines; no client
library needed): fleet counts by state, ready / not ready, failing checks, heartbeats stored."""

from __future__ import annotations

import time

from agent_kit.center.runtime import CenterRuntime
from agent_kit.center.store import AgentFilter


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def render_metrics(rt: CenterRuntime) -> str:
    now = rt.now
    _, counts, _ = rt.store.overview(AgentFilter(), "agent_id", 0, 0, now)
    lines = ["# HELP agent_center_agents Workstations by fleet state.",
             "# TYPE agent_center_agents gauge"]
    for state in ("online", "offline", "never_seen", "retired"):
        lines.append(f'agent_center_agents{{state="{state}"}} {counts[state]}')
    lines += ["# HELP agent_center_agents_ready Online workstations meeting call standards.",
              "# TYPE agent_center_agents_ready gauge",
              f'agent_center_agents_ready{{ready="true"}} {counts["ready"]}',
              f'agent_center_agents_ready{{ready="false"}} {counts["not_ready"]}',
              "# HELP agent_center_failing_checks Online workstations failing each check.",
              "# TYPE agent_center_failing_checks gauge"]
    for check_id, n in sorted(rt.store.failing_tally(now).items()):
        lines.append(f'agent_center_failing_checks{{check="{_label(check_id)}"}} {n}')
    uptime = max(time.time() - rt.started_at, 1e-9)
    lines += ["# HELP agent_center_heartbeats_stored_total Heartbeats stored (all processes).",
              "# TYPE agent_center_heartbeats_stored_total counter",
              f"agent_center_heartbeats_stored_total {rt.store.counter('heartbeats_stored')}",
              "# HELP agent_center_intake_heartbeats_per_second Heartbeats stored per second "
              "by this process since it started.",
              "# TYPE agent_center_intake_heartbeats_per_second gauge",
              f"agent_center_intake_heartbeats_per_second "
              f"{rt.intake.stored_total / uptime:.3f}"]
    return "\n".join(lines) + "\n"
