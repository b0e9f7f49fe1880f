"""``agent-kit monitor``: the probe loop of a shift. Measures, keeps the gate, sends heartbeats.

Each probe unit (``agent_kit.run.units.UNITS``, run through ``agent_kit.run.runner.run_checks``:
nothing is measured twice or differently from ``agent-kit check``) runs on its own cadence:

- cheap units (system, link, vpn) every interval;
- the path test in short bursts (``path.duration_s`` capped at ``PATH_BURST_S``) every minute;
  its traceroute (``network.hops``) only at the full check and when a burst degrades, in a child
  process (``agent_kit.loop.traceroute_child``: scapy would stay resident otherwise); each burst
  is judged with the last trace, and a fresh trace with its burst, by the one function
  ``agent-kit check`` uses (``agent_kit.evaluate.path.evaluate_path``), so the words are the same;
- audio (room noise during non-speech, a 4.5 s capture) every minute; its room sounds
  (``audio.room_sounds``) are not judged during a call, and voices it places across the room
  (a TV) are no call;
- bandwidth rarely (every 30 min), never while the microphone shows sustained speech (a call);
- the scored test call (``network.test_call``) once an hour (its score costs the center about
  2 s of CPU), never during a call;
- a unit whose check is holding the gate closed is re-measured sooner, so recovery is seen.

The first cycle (and the first after a shift gap) is a *full* check of every unit: the gate stays
closed until it finishes (``agent_kit.loop.hysteresis``). Every ``interval_s`` one heartbeat
with the latest result of every check and the gate goes into the on-disk spool
(``agent_kit.loop.spool``), and the courier (``agent_kit.loop.courier``) delivers it. The gate is
written to the state file (``agent_kit.loop.state_file``) each cycle, and a desktop notification
says when it closes or opens.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent_kit import __version__
from agent_kit.core.checks import AUDIO_NOISE, AUDIO_ROOM_SOUNDS, BY_ID, NETWORK_LINK
from agent_kit.core.i18n import M_, Msg, _, render, verbatim
from agent_kit.core.policy import Policy
from agent_kit.core.results import CheckResult
from agent_kit.core.wire import heartbeat as wire_heartbeat
from agent_kit.core.wire.heartbeat import HeartbeatContent
from agent_kit.link.client import CenterClient, CenterRefused, CenterUnavailable
from agent_kit.link.state_folder import Enrollment, state_dir
from agent_kit.loop.center_policy import CenterPolicy
from agent_kit.loop.courier import Backoff, Courier
from agent_kit.loop.hysteresis import Blocker, Gate, GateConfig, GateState
from agent_kit.loop.malloc_tuning import release_free_memory
from agent_kit.loop.notifications import Notifier, desktop_notify
from agent_kit.loop.spool import Spool
from agent_kit.loop.state_file import (
    STOPPED_BY_SIGNAL,
    DeliveryState,
    GateProblem,
    MonitorState,
    state_path,
    write_state,
)
from agent_kit.run.units import ProbeContext, ProbeUnit, offered_units

if TYPE_CHECKING:   # loaded when the path unit runs, not when the loop starts
    from probes.network.path import PathReading
    from probes.network.traceroute import TracerouteReading

log = logging.getLogger("agent_kit.loop.monitor")

PATH_BURST_S = 3.0          # the monitor's path test: a short burst, not the onboarding's 6 s
ROOM_BURST_S = 3.0          # the monitor's room capture: 3 s + 1.5 s, not the onboarding's 9 s
REDISCOVER_S = 300.0        # ask the center for its reflector again when it was not reachable
SPEECH_ACTIVITY_CALL = 0.25  # P.56 activity factor from which a capture is "speech"
#                              (an agent on a call talks for roughly a third to a half
#                              of the time; a quiet room scores 0)
CALL_SAMPLES = 2            # consecutive speech captures that mean "a call is going on"
POLICY_RETRY_S = 60.0       # a center policy that could not be fetched: asked again after this
POLICY_REFUSED_RETRY_S = 600.0  # one this agent's parser refused (a newer center's check ids)


@dataclass(frozen=True)
class Cadence:
    """How often one unit runs; ``when_blocking_s`` while one of its checks closes the gate."""

    every_s: float
    when_blocking_s: float
    skip_in_call: bool = False


def cadence_for(unit: ProbeUnit, interval_s: float) -> Cadence:
    """The schedule of a unit, by group (a new group gets a cautious once-a-minute default)."""
    if unit.group in ("system", "vpn") or unit.name == "link":
        return Cadence(interval_s, interval_s)
    if unit.group == "bandwidth":
        return Cadence(max(1800.0, interval_s), max(300.0, interval_s), skip_in_call=True)
    if unit.name == "call":   # the scored test call: rarely (the center's CPU), never in a call
        return Cadence(max(3600.0, interval_s), max(600.0, interval_s), skip_in_call=True)
    if unit.group == "audio":
        return Cadence(max(60.0, interval_s), max(30.0, interval_s))
    return Cadence(max(60.0, interval_s), max(30.0, interval_s))   # path and anything new


def call_in_progress(audio_results: Sequence[CheckResult]) -> bool | None:
    """Speech in this audio capture? None when the capture says nothing either way.

    The room unit reports the ITU-T P.56 activity factor of the speech it heard (``activity``
    in the details of ``audio.speech_level``); a capture in which it heard no speech has no
    such detail but a measured ``audio.noise``. A capture at or above ``SPEECH_ACTIVITY_CALL``
    counts as speech; ``CALL_SAMPLES`` of them in a row mean a call. Speech that
    ``audio.room_sounds`` places across the room (``own_voice`` false: a TV, family, far
    quieter than a headset hears its wearer) is no call: the agent is silent.
    """
    heard_room = False
    for result in audio_results:
        if result.id == AUDIO_ROOM_SOUNDS.id and result.details.get("own_voice") is False:
            return False
    for result in audio_results:
        for key in ("activity", "speech_activity"):
            activity = result.details.get(key)
            if isinstance(activity, (int, float)) and not isinstance(activity, bool):
                return float(activity) >= SPEECH_ACTIVITY_CALL
        if result.id == AUDIO_NOISE.id and result.value is not None:
            heard_room = True
    return False if heard_room else None


def monitor_policy(policy: Policy) -> Policy:
    """The policy with the path test and the room capture shortened to bursts."""
    path = dict(policy.settings.get("path", {}))
    path["duration_s"] = min(float(path.get("duration_s", PATH_BURST_S)), PATH_BURST_S)
    # No traceroute (network.hops) inside the lean monitor: scapy adds ~30-37 MB of RSS for
    # good. The monitor traces in a child process instead, when it matters (Monitor._hops),
    # and hands the path unit its last trace (ProbeContext.hops_for).
    path["traceroute"] = False
    audio = dict(policy.settings.get("audio", {}))
    # unprompted, the room unit records quiet_s + speech_s and measures whatever it hears
    audio["quiet_s"] = min(float(audio.get("quiet_s", ROOM_BURST_S)), ROOM_BURST_S)
    audio["speech_s"] = min(float(audio.get("speech_s", ROOM_BURST_S)), ROOM_BURST_S / 2)
    return dataclasses.replace(policy, settings={**policy.settings, "path": path,
                                                 "audio": audio})


def build_heartbeat(latest: dict[str, CheckResult], gate: GateState, *, interval_s: float,
                    measured_at: float,
                    policy: wire_heartbeat.PolicyRun | None = None) -> HeartbeatContent:
    """The heartbeat body of the latest results, the gate and the policy judged by
    (``core.wire.heartbeat``, the one builder; the spool adds ``id``, ``seq``, ``dropped``)."""
    return wire_heartbeat.build_heartbeat(
        latest.values(), gate_open=gate.open, gate_since=gate.since,
        gate_reasons=gate.reason_msgs or gate.reasons,
        interval_s=interval_s, measured_at=measured_at, agent_version=__version__,
        policy=policy)


class PathBurst:
    """This cycle's path stream, handed over by the path unit (``ProbeContext.hops_for``) from
    its own thread; the unit judges it with the last trace. ``take`` closes the hand-over, so a
    unit still running after its timeout cannot slip a stream into a later judgement."""

    def __init__(self, last_trace: TracerouteReading | None) -> None:
        self._last_trace = last_trace
        self._path: PathReading | None = None
        self._open = True
        self._lock = threading.Lock()

    def hand(self, path: PathReading) -> TracerouteReading | None:
        """Keep the stream (while the cycle is open); the trace to judge it with."""
        with self._lock:
            if self._open:
                self._path = path
        return self._last_trace

    def take(self) -> PathReading | None:
        """The stream the path unit handed over this cycle, if any; closes the hand-over."""
        with self._lock:
            self._open = False
            return self._path


class MonitorError(Exception):
    """The monitor cannot start; ``str()`` is the one line the user sees."""


class StateFolderUnwritable(MonitorError):
    """The state folder (or the spool in it) cannot be written now: read-only, full, or its
    permissions changed. Not a reason to give up: the monitor says so once and tries again."""


def state_folder_message(folder: Path, exc: BaseException) -> str:
    """The one line for a state folder that cannot be written."""
    error = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return _("the state folder {folder} cannot be written ({error}): agent-kit keeps trying; "
             "make it writable for this user (or free disk space)").format(folder=folder,
                                                                           error=error)


def check_state_folder(folder: Path) -> None:
    """The state folder exists, is the user's only (0700) and takes a new file; raises
    :class:`StateFolderUnwritable` otherwise."""
    import tempfile

    from agent_kit.link.private_files import make_private_folder

    try:
        make_private_folder(folder)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise StateFolderUnwritable(state_folder_message(folder, exc)) from None


@dataclass
class MonitorDeps:
    """What the loop touches outside itself, injectable for tests and the benchmark."""

    units: Sequence[ProbeUnit]
    policy: Policy
    enrollment: Enrollment
    context_factory: Callable[[Policy], ProbeContext]
    client: CenterClient
    spool: Spool
    notify: Notifier = desktop_notify
    clock: Callable[[], float] = time.time          # wall clock (heartbeat times, gate)
    monotonic: Callable[[], float] = time.monotonic  # schedules
    state_file: Path | None = None
    # (host, port, budget_s) -> TracerouteReading; None: agent_kit.loop.traceroute_child.trace_hops
    trace_hops: Callable[[str, int, float], Any] | None = None
    # told when the gate opens, closes, or what holds it closed changes (the face prints it)
    on_gate: Callable[[GateState], None] | None = None
    # the center's tag of ``policy`` (None: a local --policy, or the default for want of one)
    policy_tag: str | None = None
    # fetches the center's policy again (agent_kit.loop.center_policy.fetch_center_policy) when
    # a heartbeat acknowledgement names another tag; None (a local --policy): never
    fetch_policy: Callable[[], CenterPolicy] | None = None


class Monitor:
    """The loop. ``run(stop)`` until ``stop`` is set or the center retires the workstation."""

    def __init__(self, deps: MonitorDeps, *, interval_s: float = 15.0) -> None:
        if not 1.0 <= interval_s <= 3600.0:
            raise MonitorError(_("--interval must be between 1 and 3600 seconds"))
        self.deps, self.interval_s = deps, interval_s
        self.policy = monitor_policy(deps.policy)
        self.trace_wanted = bool(deps.policy.setting("path", "traceroute", True))
        self.last_trace: float | None = None                  # monotonic time of the last trace
        self.last_trace_reading: TracerouteReading | None = None
        self.path_degraded = False
        try:
            config = GateConfig.from_policy(self.policy)
        except ValueError as exc:
            raise MonitorError(str(exc)) from None
        self.gate = Gate(config, clock=deps.clock)
        # retry at least every 4 intervals (at most every minute): a center back from an
        # outage hears from the workstation within a few heartbeats
        backoff = Backoff(base_s=min(2.0, interval_s), cap_s=min(60.0, max(10.0, 4 * interval_s)))
        self.courier = Courier(deps.spool, deps.client, clock=deps.monotonic, backoff=backoff)
        self.cadences = {u.name: cadence_for(u, interval_s) for u in deps.units}
        self.last_run: dict[str, float | None] = {u.name: None for u in deps.units}
        self.latest: dict[str, CheckResult] = {}
        self.context = deps.context_factory(self.policy)
        self.next_discovery = deps.monotonic() + REDISCOVER_S
        self.next_heartbeat = 0.0
        self.speech_run = 0
        self.in_call = False
        self.stopped: str | None = None
        self.cycles = 0
        # what cannot be written now ("spool", "state") and why; said once, then retried
        self.state_trouble: dict[str, str] = {}
        self.gate_said: tuple[bool, bool, tuple[str, ...]] | None = None  # last on_gate
        self.opened_this_shift = False   # the first opening of a shift is not "again"
        self.policy_tag = deps.policy_tag
        self.policy_fetch_after = 0.0    # monotonic: no new fetch of the center's before

    # ---------------------------------------------------------------- the loop

    def run(self, stop: threading.Event) -> str | None:
        """Loop until stopped; returns why it stopped on its own (retired...), else None."""
        log.info("monitor started: agent %s, interval %.0f s, units %s",
                 self.deps.enrollment.agent_id, self.interval_s,
                 ",".join(u.name for u in self.deps.units))
        while not stop.is_set() and self.stopped is None:
            self.cycle()
            stop.wait(self.seconds_to_next())
        # Stopped from outside (SIGTERM: logout, systemctl stop): the state says so at once, so
        # `status` and `login` do not read the last open gate as current until it goes stale.
        self.write_state(stopped=self.stopped or STOPPED_BY_SIGNAL)
        return self.stopped

    def cycle(self) -> None:
        """One pass: measure what is due, heartbeat if due, deliver if due, save the state."""
        mono = self.deps.monotonic
        self.cycles += 1
        before = self.gate.state.open
        full = self.gate.state.awaiting_full_check
        due = list(self.deps.units) if full else [u for u in self.deps.units
                                                   if self._is_due(u, mono())]
        if due:
            self._measure(due, full=full)
        state = self.gate.state
        if state.open != before:
            self._tell(state)
        said = (state.open, state.awaiting_full_check,
                tuple(b.check_id for b in state.blockers))
        if said != self.gate_said:
            self.gate_said = said
            if self.deps.on_gate is not None:
                self.deps.on_gate(state)
        if mono() >= self.next_heartbeat and self.latest:
            heartbeat = build_heartbeat(self.latest, state, interval_s=self.interval_s,
                                        measured_at=self.deps.client.now(),
                                        policy=wire_heartbeat.policy_run(
                                            self.policy.name, self.policy.version,
                                            self.policy_tag))
            try:
                spooled = self.deps.spool.add(heartbeat)
            except sqlite3.OperationalError as exc:   # read-only, full: the next one may fit
                self._state_unwritable("spool", exc)
            else:
                log.debug("heartbeat seq %d spooled", spooled.seq)
                self._state_writable("spool")
            self.next_heartbeat += self.interval_s
            if self.next_heartbeat <= mono():   # late (a long full check): no burst to catch up
                self.next_heartbeat = mono() + self.interval_s
        if self.courier.due() and self.deps.spool.stats().pending:
            try:
                result = self.courier.deliver()
            except sqlite3.OperationalError as exc:   # an ack not written: resent, duplicate
                self._state_unwritable("spool", exc)
            else:
                if result.stopped is not None:
                    self._stop_refused(result.stopped)
                else:
                    self.follow_center_policy()
        if self.context.center is None and mono() >= self.next_discovery:
            self.context = self.deps.context_factory(self.policy)
            self.next_discovery = mono() + REDISCOVER_S
        self.write_state()

    def follow_center_policy(self) -> bool:
        """Fetch and apply the center's policy when the last heartbeat acknowledgement names
        another tag than the one this monitor runs (IT changed it, or the monitor started on
        the cached or default policy); True when a new policy was applied. A policy that cannot
        be fetched or is refused by the parser or the gate leaves the running one in place
        (and the cache untouched), and is asked for again later."""
        wanted = self.deps.client.center_policy_tag
        fetch = self.deps.fetch_policy
        if fetch is None or wanted is None or wanted == self.policy_tag \
                or self.deps.monotonic() < self.policy_fetch_after:
            return False
        from agent_kit.core.policy import PolicyError

        try:
            fetched = fetch()
            config = GateConfig.from_policy(monitor_policy(fetched.policy))
        except (CenterUnavailable, CenterRefused, OSError) as exc:
            log.warning("the center's new policy could not be fetched (%s): the running one "
                        "stays", exc)
            self.policy_fetch_after = self.deps.monotonic() + POLICY_RETRY_S
            return False
        except (PolicyError, ValueError) as exc:
            log.error("the center's new policy is refused (%s): the running one stays", exc)
            self.policy_fetch_after = self.deps.monotonic() + POLICY_REFUSED_RETRY_S
            return False
        self.apply_policy(fetched, config)
        return True

    def apply_policy(self, fetched: CenterPolicy, config: GateConfig) -> None:
        """Run by ``fetched`` from now on, without a restart: the next measurements are judged
        by it and the gate's hysteresis follows its settings (the samples taken so far stay)."""
        self.deps.policy = fetched.policy
        self.policy = monitor_policy(fetched.policy)
        self.policy_tag = fetched.tag
        self.trace_wanted = bool(fetched.policy.setting("path", "traceroute", True))
        self.gate.reconfigure(config)
        self.context = dataclasses.replace(self.context, policy=self.policy)
        log.info("the center's policy %s (%s, tag %s) applied", self.policy.name,
                 self.policy.version, self.policy_tag)

    def seconds_to_next(self) -> float:
        mono = self.deps.monotonic()
        events = [self.next_heartbeat, *(self._next_run(u) for u in self.deps.units
                                         if not (self.in_call
                                                 and self.cadences[u.name].skip_in_call))]
        if self.courier.stopped is None and self.deps.spool.stats().pending:
            events.append(self.courier.next_attempt_at)
        return min(max(0.05, min(events) - mono), self.interval_s)

    # ---------------------------------------------------------------- parts

    def _next_run(self, unit: ProbeUnit) -> float:
        """When the unit is next due (monotonic seconds); sooner while it closes the gate."""
        last = self.last_run[unit.name]
        if last is None:
            return 0.0
        cadence = self.cadences[unit.name]
        blocking = {b.check_id for b in self.gate.state.blockers}
        every = cadence.when_blocking_s if blocking & set(unit.check_ids) else cadence.every_s
        return last + every

    def _is_due(self, unit: ProbeUnit, now: float) -> bool:
        if self.cadences[unit.name].skip_in_call and self.in_call:
            return False
        return now >= self._next_run(unit)

    def _measure(self, units: list[ProbeUnit], *, full: bool) -> None:
        from agent_kit.run.runner import run_checks

        if full:
            log.info("full check of the shift: %s", ",".join(u.name for u in units))
        if self.in_call:
            units = [u for u in units if not self.cadences[u.name].skip_in_call]
        # the concurrent units first, then each exclusive one (bandwidth) alone, with the
        # memory freed in between so their peaks do not add up
        # a service this center does not offer (the scored test call) is not measured, as in
        # agent-kit check (run.units.offered_units); its cadence still counts as run
        runnable = offered_units(tuple(units), self.context.center)
        batches = [[u for u in runnable if not u.exclusive],
                   *([u] for u in runnable if u.exclusive)]
        checks: list[CheckResult] = []
        # the path unit hands its stream over (ProbeContext.hops_for) and judges it with the
        # last trace; a fresh trace, when due, is judged with the same function (_hops)
        burst = PathBurst(self.last_trace_reading) if self.trace_wanted else None
        context = (dataclasses.replace(self.context, hops_for=burst.hand) if burst
                   else self.context)
        for batch in (b for b in batches if b):
            report = run_checks(batch, context, clock=self.deps.monotonic,
                                now=lambda: datetime.fromtimestamp(self.deps.clock(), UTC))
            checks += report.checks
            release_free_memory()
        if burst is not None:
            checks = self._hops(checks, burst.take(), full=full)
        now = self.deps.monotonic()
        for unit in units:
            self.last_run[unit.name] = now
        self._update_call(checks)
        if self.in_call:
            checks = self._room_in_call(checks)
        for result in checks:
            self.latest[result.id] = result
        self.gate.observe(checks, full=full)

    def _hops(self, checks: list[CheckResult], path: PathReading | None, *,
              full: bool) -> list[CheckResult]:
        """The path checks of this cycle's burst (``path``: its stream; None when the path unit
        did not measure one) with a fresh trace (``loop.traceroute_child``) when one is due: at
        the full check, at the first burst, at the first degraded burst and every
        ``HOPS_DEGRADED_EVERY_S`` while it stays degraded. The fresh trace is judged with the
        stream by ``evaluate_path``, as in ``agent-kit check``; otherwise the unit already
        judged the stream with the last trace, which stays the current one."""
        from agent_kit.loop.traceroute_child import HOPS_DEGRADED_EVERY_S, path_degraded

        address = self.context.reflector_address
        if path is None or address is None:
            return checks
        degraded = path_degraded({r.id: r.status.value for r in checks})
        now = self.deps.monotonic()
        due = full or self.last_trace is None or (degraded and (
            not self.path_degraded or now - self.last_trace >= HOPS_DEGRADED_EVERY_S))
        self.path_degraded = degraded
        if not due:
            return checks
        from agent_kit.evaluate.path import evaluate_path
        from agent_kit.loop.traceroute_child import trace_hops
        from agent_kit.run.units import TRACEROUTE_BUDGET_S

        trace = self.deps.trace_hops or trace_hops
        log.info("tracing the hops to the reflector (%s)",
                 "full check" if full else "path degraded" if degraded else "first reach")
        self.last_trace_reading = trace(address[0], address[1], TRACEROUTE_BUDGET_S)
        self.last_trace = self.deps.monotonic()
        link_kind = next((r.value for r in checks if r.id == NETWORK_LINK.id
                          and isinstance(r.value, str)), None)
        judged = {r.id: r for r in evaluate_path(path, self.last_trace_reading, self.policy,
                                                 link_kind=link_kind)}
        return [judged.get(r.id, r) for r in checks]

    def _room_in_call(self, checks: list[CheckResult]) -> list[CheckResult]:
        """During a call the voices the microphone hears are the call's (the agent's own, at
        whatever level they speak): ``audio.room_sounds`` is not judged then."""
        from agent_kit.evaluate.room_sounds import not_judged_in_call

        return [not_judged_in_call(self.policy) if r.id == AUDIO_ROOM_SOUNDS.id else r
                for r in checks]

    def _update_call(self, results: Iterable[CheckResult]) -> None:
        audio = [r for r in results if BY_ID.get(r.id) and BY_ID[r.id].group == "audio"]
        speech = call_in_progress(audio) if audio else None
        if speech is None:
            return
        self.speech_run = self.speech_run + 1 if speech else 0
        in_call = self.speech_run >= CALL_SAMPLES
        if in_call != self.in_call:
            log.info("call %s (microphone speech activity)", "detected" if in_call else "ended")
        self.in_call = in_call

    def _tell(self, state: GateState) -> None:
        if state.open:
            log.info("gate opened")
            body = (_("Your workstation meets call standards again.") if self.opened_this_shift
                    else _("Your workstation meets call standards: you can take calls."))
            self.opened_this_shift = True
            self.deps.notify(_("Ready to take calls"), body, False)
        else:
            if state.awaiting_full_check:   # a new shift: its first opening is no "again"
                self.opened_this_shift = False
            # info, not warning: the face prints the readable line (MonitorDeps.on_gate)
            log.info("gate closed: %s", " | ".join(state.reasons))
            self.deps.notify(_("Not ready to take calls"),
                             "\n".join(state.reasons[:3]) or _("See agent-kit status."), True)

    def _stop_refused(self, refused: CenterRefused) -> None:
        if refused.retired:
            self.stopped = "retired"
            text = _("IT retired this workstation at the center: the monitor stopped. "
                     "Ask IT for a new enrollment token and run agent-kit enroll --force.")
        else:
            self.stopped = "refused"
            text = _("The center refuses this workstation ({error}): the monitor stopped. "
                     "Ask IT for a new enrollment token and run agent-kit enroll --force."
                     ).format(error=str(refused))
        log.error("%s", text)
        self.deps.notify(_("agent-kit stopped"), text, True)

    def _state_unwritable(self, what: str, exc: BaseException) -> None:
        """Say once (one line) that the state folder cannot be written; the loop goes on and
        tries again next cycle."""
        if not self.state_trouble:
            folder = (self.deps.state_file or state_path()).parent
            log.error("%s", state_folder_message(folder, exc))
        self.state_trouble[what] = str(exc)

    def _state_writable(self, what: str) -> None:
        if self.state_trouble.pop(what, None) is not None and not self.state_trouble:
            log.warning("%s", _("the state folder can be written again"))

    def write_state(self, stopped: str | None = None) -> bool:
        """Write the state file; False (said once) when the state folder cannot take it."""
        gate = self.gate.state
        stats = self.deps.spool.stats()
        # as message ids + parameters: ``status --lang`` renders them in its own language
        reasons: tuple[Msg, ...] = gate.reason_msgs or tuple(verbatim(r) for r in gate.reasons)
        problems = (
            *([_problem(gate.shift_reason)] if gate.shift_reason else []),
            *(_blocker_problem(b) for b in gate.blockers),
            *(_blocker_problem(w, blocking=False) for w in gate.watched))
        stopped = stopped or self.stopped
        if stopped == STOPPED_BY_SIGNAL:
            reasons = (M_("The monitor was stopped: start agent-kit monitor."),)
            problems = (_problem(reasons[0]),)
        elif stopped == "retired":
            reasons = (M_("IT retired this workstation: run agent-kit enroll again."), *reasons)
            problems = (_problem(reasons[0]), *problems)
        elif stopped:
            reasons = (M_("The center refuses this workstation's credential: run agent-kit "
                          "enroll again."), *reasons)
            problems = (_problem(reasons[0]), *problems)
        state = MonitorState(
            agent_id=self.deps.enrollment.agent_id, pid=os.getpid(),
            updated_at=self.deps.clock(), interval_s=self.interval_s,
            gate_open=gate.open and stopped is None, gate_since=gate.since,
            reasons=tuple(render(r) for r in reasons),
            reason_messages=tuple(r.to_json() for r in reasons),
            blocking=tuple(b.check_id for b in gate.blockers),
            watching=gate.watching, awaiting_full_check=gate.awaiting_full_check,
            full_check_at=gate.full_check_at, in_call=self.in_call,
            clock_offset_s=self.deps.client.offset_s, stopped=stopped, problems=problems,
            delivery=DeliveryState(pending=stats.pending,
                                   last_success_at=self.courier.last_success_at,
                                   error=self.courier.last_error, next_seq=stats.next_seq,
                                   dropped_total=stats.dropped_total,
                                   rejected_total=stats.rejected_total,
                                   resynced_at=stats.resync.at if stats.resync else None,
                                   resynced_after_seq=(stats.resync.after_seq if stats.resync
                                                       else None),
                                   resynced_count=(stats.resync.renumbered if stats.resync
                                                   else 0)))
        try:
            write_state(state, self.deps.state_file)
        except OSError as exc:
            self._state_unwritable("state", exc)
            return False
        self._state_writable("state")
        return True


# ---------------------------------------------------------------- start-up (used by the CLI)

def open_monitor(*, interval_s: float | None, policy_path: str | None,
                 groups: set[str] | None, notify: Notifier = desktop_notify,
                 on_gate: Callable[[GateState], None] | None = None) -> Monitor:
    """Everything ``agent-kit monitor`` needs from the enrollment and the options."""
    from agent_kit.link.state_folder import load_enrollment
    from agent_kit.run.units import UNITS

    try:
        enrollment = load_enrollment()
    except ValueError as exc:
        raise MonitorError(str(exc)) from None
    if enrollment is None:
        raise MonitorError(_("this computer is not set up with your contact center yet: ask "
                             "IT for your setup code and the center's address, then run "
                             "agent-kit enroll --center ADDRESS --token -"))
    check_state_folder(state_dir())
    spool_path = state_dir() / "spool.db"
    try:
        spool = Spool(spool_path, enrollment.agent_id)
    except (sqlite3.OperationalError, OSError) as exc:   # read-only, full: not the spool's fault
        raise StateFolderUnwritable(state_folder_message(spool_path.parent, exc)) from None
    except sqlite3.Error as exc:
        # Damaged: left as it is for IT, no silent new spool. A new one (once this one is moved
        # away) starts seq at 1 again, and the center's 409 tells it where to continue.
        raise MonitorError(_("the heartbeat spool {path} cannot be used ({error}): move it "
                             "away and start agent-kit monitor again (the heartbeats waiting "
                             "in it are lost; numbering continues after the center's)").format(
                                 path=spool_path, error=exc)) from None
    client = CenterClient(enrollment)
    policy, tag = _load_policy(policy_path, client)
    units = tuple(u for u in UNITS if groups is None or u.group in groups)

    def context(pol: Policy) -> ProbeContext:
        from agent_kit.link.discovery import CenterError, discover_center

        try:
            target = discover_center(enrollment.center_url)
        except CenterError as exc:
            log.warning("%s: path and bandwidth tests wait for it", exc)
            target = None
        return ProbeContext(policy=pol, center=target, interactive=False)

    from agent_kit.loop.center_policy import fetch_center_policy

    deps = MonitorDeps(units=units, policy=policy, enrollment=enrollment,
                       context_factory=context, client=client, spool=spool, notify=notify,
                       on_gate=on_gate, policy_tag=tag,
                       fetch_policy=(None if policy_path is not None
                                     else lambda: fetch_center_policy(client)))
    return Monitor(deps, interval_s=enrollment.heartbeat_interval_s if interval_s is None
                   else interval_s)  # an explicit 0 is refused, not the center's default


def _load_policy(policy_path: str | None,
                 client: CenterClient) -> tuple[Policy, str | None]:
    """``--policy``, else the center's policy for this workstation (cached for outages), else
    the cached one, else the default; with the center's tag of it (None for the first and the
    last: a heartbeat acknowledgement then makes the monitor fetch the center's)."""
    from agent_kit.core.policy import PolicyError, load_policy
    from agent_kit.loop.center_policy import cached_center_policy, fetch_center_policy

    if policy_path is not None:
        try:
            return load_policy(policy_path), None
        except PolicyError as exc:
            raise MonitorError(_("invalid policy: {error}").format(error=exc)) from None
    try:
        fetched = fetch_center_policy(client)
        return fetched.policy, fetched.tag
    except (CenterUnavailable, CenterRefused, PolicyError, OSError, ValueError) as exc:
        log.warning("center policy not used (%s)", exc)
    cached = cached_center_policy()
    if cached is not None:
        return cached.policy, cached.tag
    return load_policy(), None


def _problem(msg: Msg) -> GateProblem:
    """A gate problem that is no check (a full check is due, the monitor stopped)."""
    return GateProblem(render(msg), message_ref=msg.to_json())


def _blocker_problem(blocker: Blocker, blocking: bool = True) -> GateProblem:
    """A check holding (or, not blocking, about to hold) the gate, with its ids + parameters."""
    return GateProblem(blocker.message, blocker.check_id, blocker.fix, blocking=blocking,
                       message_ref=blocker.msg.to_json() if blocker.msg is not None else None,
                       fix_ref=blocker.fix_msg.to_json() if blocker.fix_msg is not None
                       else None)
