"""What the runner runs: probe units (measure + evaluate), the context they get, by group.

A group (system, vpn, network, bandwidth, audio) is made of one or more units, each producing a
fixed set of check ids. A unit that loads the network (bandwidth) is ``exclusive``: it runs
alone, after the others, so it does not distort the path test.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from agent_kit.core.checks import BY_ID, ids_owned_by
from agent_kit.core.i18n import M_, _
from agent_kit.core.policy import Policy
from agent_kit.core.results import CheckResult
from agent_kit.link.discovery import CenterTarget
from agent_kit.run.microphone_step import READY_WAIT_S

if TYPE_CHECKING:   # the probes load only when a unit runs (fast start-up)
    from agent_kit.run.microphone_step import MicrophoneGuide
    from probes.network.path import PathReading
    from probes.network.traceroute import TracerouteReading

PATH_DURATION_S = 6.0   # default length of the path test (policy [path] duration_s)
TRACEROUTE_BUDGET_S = 3.0   # the hop-by-hop test after it ([path] traceroute = true)
# the clip (at most 30 s by the contract; 6 s as shipped) + late echoes and count queries + the
# center's scoring (its request timeout)
TEST_CALL_TIMEOUT_S = 6.0 + 5.0 + 30.0


def _no_prompt(_: str) -> None:
    return None


@dataclass(frozen=True)
class ProbeContext:
    """Everything a unit may use. Probes get plain values from it, never the context itself."""

    policy: Policy
    center: CenterTarget | None = None
    reflector: tuple[str, int] | None = None   # explicit --reflector, else the center's
    interactive: bool = False                  # a person is at the terminal/window
    # no --center and no enrollment: the report says so once, with what to do
    not_enrolled: bool = False
    prompt: Callable[[str], None] = field(default=_no_prompt)  # show an instruction
    # The face's guide through the microphone test (which device, "ready?", countdown, live
    # level); None: the instructions go through ``prompt`` only.
    microphone: MicrophoneGuide | None = None
    # The monitor traces the hops itself, in a child process (agent_kit.loop.traceroute_child),
    # and switches the in-process traceroute off: the path unit hands it the stream it just
    # measured and judges that stream with the trace this returns (the monitor's last one).
    # None: the unit traces in this process when the policy asks ([path] traceroute).
    hops_for: Callable[[PathReading], TracerouteReading | None] | None = None

    @property
    def reflector_address(self) -> tuple[str, int] | None:
        return self.reflector or (self.center.reflector if self.center else None)


@dataclass(frozen=True)
class ProbeUnit:
    """One measurement and its judging. Which checks it owns, and their group, come from the
    catalogue (``CheckSpec.owner``), so a check is declared in one place only."""

    name: str
    run: Callable[[ProbeContext], list[CheckResult]]
    timeout_s: float
    exclusive: bool = False
    owns: tuple[str, ...] | None = None   # tests' stand-in units only; else the catalogue's
    needs_center: bool = False   # measures against the center (path, bandwidth, VPN route)
    # a service the center may or may not offer (the scored test call): ``agent-kit check``
    # runs the unit only when the discovered center offers it (``offered_units``)
    offered: Callable[[CenterTarget | None], bool] | None = None

    @property
    def check_ids(self) -> tuple[str, ...]:
        return self.owns if self.owns is not None else ids_owned_by(self.name)

    @property
    def group(self) -> str:
        return BY_ID[self.check_ids[0]].group


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
    from probes.network.vpn import measure_vpn

    return evaluate_vpn(measure_vpn(ctx.center.host if ctx.center else None), ctx.policy)


def _headset(ctx: ProbeContext) -> list[CheckResult]:
    from agent_kit.evaluate.audio import evaluate_headset
    from probes.audio.devices import list_audio_devices

    return [evaluate_headset(list_audio_devices(), ctx.policy)]


def _room(ctx: ProbeContext) -> list[CheckResult]:
    from agent_kit.run.microphone_step import room_results

    return room_results(ctx)


def _path(ctx: ProbeContext, measure: Callable[..., PathReading] | None = None,
          trace: Callable[..., TracerouteReading] | None = None,
          link: Callable[[str], str | None] | None = None) -> list[CheckResult]:
    """Measure first (the path stream, then the traceroute when asked), then judge once."""
    from agent_kit.evaluate.path import evaluate_path, path_unknown

    address = ctx.reflector_address
    if address is None:
        reason = (_("no center configured") if ctx.center is None else ctx.center.problem
                  or _("the center offers no path-test reflector"))
        return path_unknown(ctx.policy, reason)
    if measure is None:
        from probes.network.path import measure_path

        measure = measure_path
        # a real stream: its link is this machine's (stand-in readings are judged without
        # this machine's own link unless a stand-in link is given too)
        link = link or _link_kind
    reading = measure(
        address[0], address[1],
        duration_s=float(ctx.policy.setting("path", "duration_s", PATH_DURATION_S)),
        packet_interval_ms=float(ctx.policy.setting("path", "packet_interval_ms", 20.0)))
    hops: TracerouteReading | None = None
    if ctx.hops_for is not None:
        hops = ctx.hops_for(reading)
    elif ctx.policy.setting("path", "traceroute", True):
        # Right after the path burst, not during it: scapy parsing packets in this process
        # would hold the GIL between the burst's send timestamps and its sends (false jitter).
        if trace is None:
            from probes.network.traceroute import measure_hops

            trace = measure_hops
        hops = trace(address[0], address[1], budget_s=TRACEROUTE_BUDGET_S)
    # where the traceroute saw loss or delay start decides the path checks' fixes; the link
    # that carries the stream keeps Wi-Fi advice off a cable
    return evaluate_path(reading, hops, ctx.policy,
                         link_kind=link(address[0]) if link is not None else None)


def _link_kind(destination: str) -> str | None:
    """wired, wifi, cellular... of the link to ``destination`` (the physical one under a VPN);
    None when it cannot be told (the fixes then stay general)."""
    from probes.system import measure_link

    try:
        return measure_link(destination).kind
    except (OSError, ValueError):
        return None


def path_unit(*, measure: Callable[..., PathReading] | None = None,
              trace: Callable[..., TracerouteReading] | None = None,
              link: Callable[[str], str | None] | None = None) -> ProbeUnit:
    """The path unit (``network.rtt`` ... ``network.hops``). ``measure`` and ``trace`` stand in
    for ``probes.network.path.measure_path`` and ``probes.network.traceroute.measure_hops``
    (same arguments) where a test hands readings the lab cannot make; None: the probes.
    ``link`` stands in for the link kind toward the reflector (``wired``, ``wifi``...); with a
    stand-in ``measure`` and no ``link`` the kind is not known (general fixes)."""
    def run(ctx: ProbeContext) -> list[CheckResult]:
        return _path(ctx, measure, trace, link)

    # duration_s of packets (6 s by default) + 1 s for late echoes + up to 3 s of count
    # queries (only when packets are missing) + margin, then the traceroute's budget + 2 s
    # (importing scapy, its last wait); a policy asking for a longer path test than
    # PATH_DURATION_S needs this timeout raised too.
    return ProbeUnit("path", run, timeout_s=PATH_DURATION_S + 5.0 + TRACEROUTE_BUDGET_S + 2.0,
                     needs_center=True)


def _test_call(ctx: ProbeContext) -> list[CheckResult]:
    """The scored test call: the codec's packets through the reflector for the length of the
    center's clip, the receive record to the center, its ViSQOL score judged beside the
    E-model of the same stream (``agent_kit.core.wire.test_call`` has the contract)."""
    from agent_kit.core.checks import NETWORK_TEST_CALL
    from agent_kit.evaluate.test_call import (
        DEFAULT_CODEC,
        DEFAULT_JITTER_BUFFER_MS,
        evaluate_test_call,
        unknown_test_call,
    )
    from agent_kit.link.test_call import CallScoreError, receive_record, request_score

    if ctx.center is None:
        return unknown_test_call(ctx.policy, _("no center configured"))
    offer = ctx.center.test_call
    address = ctx.reflector_address
    if offer is None or address is None:
        return unknown_test_call(ctx.policy, ctx.center.problem
                                 or _("the center offers no scored test call"))
    params = ctx.policy.check(NETWORK_TEST_CALL.id).params
    codec_name = str(params.get("codec", DEFAULT_CODEC))
    codec = offer.codec(codec_name)
    if codec is None:
        return unknown_test_call(ctx.policy, M_("the center does not offer the {codec} test "
                                                "call", codec=codec_name))
    from probes.network.path import measure_path_record

    reading, seen = measure_path_record(
        address[0], address[1], duration_s=offer.packets * offer.packet_ms / 1000,
        packet_interval_ms=float(offer.packet_ms), payload_bytes=codec.payload_bytes)
    if reading.received == 0:
        return unknown_test_call(ctx.policy, reading.problem
                                 or M_("no packet came back from the reflector"))
    record = receive_record(seen.up_transit_ms, seen.down_transit_ms, seen.reached,
                            codec=codec_name, offer=offer,
                            jitter_buffer_ms=int(params.get("jitter_buffer_ms",
                                                            DEFAULT_JITTER_BUFFER_MS)))
    try:
        score = request_score(ctx.center.url, offer, record)
    except CallScoreError as exc:
        return unknown_test_call(ctx.policy, str(exc))
    return [evaluate_test_call(score, reading, ctx.policy, link_kind=_link_kind(address[0]),
                               assumed=(record.assumed_up, record.assumed_down))]


def _bandwidth(ctx: ProbeContext) -> list[CheckResult]:
    from agent_kit.evaluate.bandwidth import bandwidth_unknown, evaluate_bandwidth
    from probes.bandwidth.measure import BandwidthError, measure_bandwidth

    if ctx.center is None:
        return bandwidth_unknown(ctx.policy, _("no center configured"))
    if ctx.center.speedtest_url is None:  # down (its problem says why) or no endpoint
        return bandwidth_unknown(ctx.policy, ctx.center.problem
                                 or _("the center offers no bandwidth test endpoint"))
    try:
        reading = measure_bandwidth(
            ctx.center.speedtest_url, reflector=ctx.reflector_address,
            streams=int(ctx.policy.setting("bandwidth", "streams", 4)),
            max_duration_s=float(ctx.policy.setting("bandwidth", "max_duration_s", 8.0)))
    except BandwidthError as exc:
        return bandwidth_unknown(ctx.policy, str(exc))
    return evaluate_bandwidth(reading, ctx.policy)


UNITS: tuple[ProbeUnit, ...] = (
    ProbeUnit("system", _system, timeout_s=5.0),
    ProbeUnit("link", _link, timeout_s=3.0),
    ProbeUnit("vpn", _vpn, timeout_s=5.0, needs_center=True),
    ProbeUnit("headset", _headset, timeout_s=15.0),
    # quiet_s + speech_s of recording (9 s by default) plus analysis; policies asking for
    # more than ~50 s of capture would need a longer timeout. Plus the time a guided test
    # waits for the person to say they are ready.
    ProbeUnit("room", _room,
              timeout_s=60.0 + READY_WAIT_S),
    path_unit(),
    # A stream of its own (the clip's length, 6 s) and the center's score (about 2 s there):
    # alone, after the path test and before the bandwidth test loads the line.
    ProbeUnit("call", _test_call, timeout_s=TEST_CALL_TIMEOUT_S, exclusive=True,
              needs_center=True, offered=lambda c: c is not None and c.test_call is not None),
    # Loads the line, so it runs alone after the others; max_duration_s (8 s by default) plus
    # the endpoint's handshake and connection timeouts.
    ProbeUnit("bandwidth", _bandwidth,
              timeout_s=30.0, exclusive=True, needs_center=True),
)


def units_for(groups: set[str]) -> tuple[ProbeUnit, ...]:
    """The units of these groups, in the order the runner starts them."""
    return tuple(u for u in UNITS if u.group in groups)


def offered_units(units: tuple[ProbeUnit, ...], center: CenterTarget | None
                  ) -> tuple[ProbeUnit, ...]:
    """``units`` without those measuring a service this center does not offer (no center, a
    center that does not answer, or one without it): such a check is left out of the run
    rather than reported unknown on every workstation of a center that never offers it."""
    return tuple(u for u in units if u.offered is None or u.offered(center))
