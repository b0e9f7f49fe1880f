"""What the runner runs: probe units (measure + evaluate), the context they get, by group.

A group (system, vpn, network, bandwidth, audio) is made of one or more units, each producing a
fixed set of check ids. A unit that loads the network (bandwidth) is ``exclusive``: it runs
alone, after the others, so it does not distort the path test.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from agent_kit.center_client import CenterTarget
from agent_kit.policy import Policy
from agent_kit.results import CheckResult


def _no_prompt(_: str) -> None:
    return None


@dataclass(frozen=True)
class ProbeContext:
    """Everything a unit may use. Probes get plain values from it, never the context itself."""

    policy: Policy
    center: CenterTarget | None = None
    reflector: tuple[str, int] | None = None   # explicit --reflector, else the center's
    interactive: bool = False                  # a person is at the terminal/window
    prompt: Callable[[str], None] = field(default=_no_prompt)  # show an instruction

    @property
    def reflector_address(self) -> tuple[str, int] | None:
        return self.reflector or (self.center.reflector if self.center else None)


@dataclass(frozen=True)
class ProbeUnit:
    name: str
    group: str
    check_ids: tuple[str, ...]
    run: Callable[[ProbeContext], list[CheckResult]]
    timeout_s: float
    exclusive: bool = False


def _system(ctx: ProbeContext) -> list[CheckResult]:
    from agent_kit.evaluate.system import evaluate_system
    from probes.system import measure_system

    return evaluate_system(measure_system(), ctx.policy)


def _link(ctx: ProbeContext) -> list[CheckResult]:
    from agent_kit.evaluate.link import evaluate_link
    from probes.system import measure_link

    return evaluate_link(measure_link(), ctx.policy)


def _vpn(ctx: ProbeContext) -> list[CheckResult]:
    from agent_kit.evaluate.vpn import evaluate_vpn
    from probes.vpn import measure_vpn

    return evaluate_vpn(measure_vpn(ctx.center.host if ctx.center else None), ctx.policy)


UNITS: tuple[ProbeUnit, ...] = (
    ProbeUnit("system", "system", ("system.cpu", "system.memory", "system.disk",
                                   "system.power", "system.uptime"), _system, timeout_s=5.0),
    ProbeUnit("link", "network", ("network.link",), _link, timeout_s=3.0),
    ProbeUnit("vpn", "vpn", ("vpn.connected", "vpn.route"), _vpn, timeout_s=5.0),
)


def units_for(groups: set[str]) -> tuple[ProbeUnit, ...]:
    return tuple(u for u in UNITS if u.group in groups)
