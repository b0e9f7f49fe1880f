"""The monitor's echo test: rare (the full check, then every few hours) and never in a call.

Stand-in units as in tests/test_monitor.py (the schedule is under test); the echo unit is the
catalogue's real ``echo`` name, exclusive like the real one, and records when it ran relative
to the room capture.
"""

from __future__ import annotations

from agent_kit.core.results import CheckResult, Status
from agent_kit.loop.monitor import ECHO_EVERY_S, Monitor, cadence_for
from agent_kit.run.units import UNITS, ProbeContext, ProbeUnit
from tests.test_heartbeat_client import FakeCenter
from tests.test_monitor import Clocks, Lab, make_monitor, res, run_for


class EchoLab(Lab):
    def __init__(self) -> None:
        super().__init__()
        self.status["audio.echo"] = Status.PASS
        self.order: list[str] = []
        self.speech_during_echo: list[float] = []

    def unit(self, name: str, group: str, cid: str) -> ProbeUnit:
        inner = super().unit(name, group, cid)

        def run(ctx: ProbeContext) -> list[CheckResult]:
            self.order.append(name)
            if name == "echo":
                self.runs["echo"] = self.runs.get("echo", 0) + 1
                self.speech_during_echo.append(self.speech)
                return [res("audio.echo", self.status["audio.echo"])]
            return inner.run(ctx)

        return ProbeUnit(name, run, timeout_s=2.0, owns=(cid,),
                         exclusive=group == "bandwidth" or name == "echo")


def monitor_with_echo(tmp_path, lab: EchoLab, clocks: Clocks) -> Monitor:
    monitor = make_monitor(tmp_path, FakeCenter(), lab, clocks, [])
    echo = lab.unit("echo", "audio", "audio.echo")
    monitor.deps.units = (*monitor.deps.units, echo)
    monitor.cadences["echo"] = cadence_for(echo, monitor.interval_s)
    monitor.last_run["echo"] = None
    return monitor


def test_the_real_echo_unit_plays_alone_after_the_room_and_rarely():
    echo = next(u for u in UNITS if u.name == "echo")
    assert echo.exclusive and echo.check_ids == ("audio.echo",) and echo.group == "audio"
    cadence = cadence_for(echo, 15.0)
    assert cadence.every_s == ECHO_EVERY_S >= 3600 and cadence.skip_in_call
    assert cadence.skip_on_speech
    names = [u.name for u in UNITS]
    assert names.index("room") < names.index("echo")


def test_echo_at_the_full_check_after_the_room_then_every_four_hours(tmp_path):
    lab, clocks = EchoLab(), Clocks()
    monitor = monitor_with_echo(tmp_path, lab, clocks)
    monitor.cycle()
    assert lab.runs.get("echo") == 1
    assert lab.order.index("audio") < lab.order.index("echo")   # the room first, then echo
    run_for(monitor, clocks, 9 * 3600, step=60.0)
    assert lab.runs["echo"] == 3          # t = 0, 4 h, 8 h
    assert 500 <= lab.runs["audio"] <= 560


def test_never_during_a_call_and_it_comes_back_after(tmp_path):
    lab, clocks = EchoLab(), Clocks()
    monitor = monitor_with_echo(tmp_path, lab, clocks)
    monitor.cycle()
    lab.speech = 0.8                     # a call starts and lasts nine hours
    run_for(monitor, clocks, 9 * 3600, step=60.0)
    assert monitor.in_call and lab.runs["echo"] == 1
    lab.speech = 0.0
    run_for(monitor, clocks, 5 * 60, step=60.0)
    assert lab.runs["echo"] == 2          # overdue: at the first quiet capture
    assert lab.speech_during_echo == [0.0, 0.0]


def test_one_speech_capture_already_holds_the_echo_back(tmp_path):
    """A call that has just begun is not "in a call" yet (two captures): the echo still waits."""
    lab, clocks = EchoLab(), Clocks()
    monitor = monitor_with_echo(tmp_path, lab, clocks)
    monitor.cycle()
    run_for(monitor, clocks, ECHO_EVERY_S - 60.0, step=60.0)   # quiet up to 4 h - 1 min
    assert lab.runs["echo"] == 1
    lab.speech = 0.9
    clocks.advance(60.0)
    monitor.cycle()                       # the room hears speech; the echo is due: not played
    assert not monitor.in_call and monitor.speech_run == 1
    assert lab.runs["echo"] == 1 and lab.speech_during_echo == [0.0]


def test_a_full_check_whose_room_hears_speech_drops_the_echo(tmp_path):
    lab, clocks = EchoLab(), Clocks()
    lab.speech = 0.7                      # the shift starts mid-sentence
    monitor = monitor_with_echo(tmp_path, lab, clocks)
    monitor.cycle()
    assert lab.runs.get("audio") == 1 and "echo" not in lab.runs
    lab.speech = 0.0
    run_for(monitor, clocks, 120, step=60.0)
    assert lab.runs["echo"] == 1 and lab.speech_during_echo == [0.0]


def test_every_heartbeat_carries_the_latest_echo_result(tmp_path):
    """The echo runs every 4 h, the heartbeat goes every 15 s: each heartbeat carries the last
    echo result (a check that did not run this cycle keeps its latest result)."""
    from tests.test_monitor import RecordingCenter

    lab, clocks = EchoLab(), Clocks()
    center = RecordingCenter()
    monitor = make_monitor(tmp_path, center, lab, clocks, [])
    echo = lab.unit("echo", "audio", "audio.echo")
    monitor.deps.units = (*monitor.deps.units, echo)
    monitor.cadences["echo"] = cadence_for(echo, monitor.interval_s)
    monitor.last_run["echo"] = None
    monitor.cycle()
    lab.status["audio.echo"] = Status.FAIL     # what a later echo test would say; not due yet
    run_for(monitor, clocks, 600, step=15.0)
    assert lab.runs["echo"] == 1 and len(center.bodies) >= 30
    for body in center.bodies:
        echoes = [c for c in body["checks"] if c["id"] == "audio.echo"]
        assert len(echoes) == 1 and echoes[0]["status"] == "pass", body["checks"]
