"""The terminal report: short by default (steps, plain problems, fixes), every check with
--details, one item per distinct finding and fix, progress that rewrites itself."""
from __future__ import annotations

import io

import pytest

from agent_kit.core.checks import BY_ID
from agent_kit.core.i18n import set_language
from agent_kit.core.results import CheckReport, CheckResult, Status, overall_verdict
from agent_kit.face.terminal import ProgressLine, render_terminal, report_lines
from agent_kit.face.text_wrap import display_width

SAME_FIX = "Unplug and replug the USB headset."
NO_MIC = ("could not record from the microphone: cannot open the audio system: no microphone: "
          "the system has no default input device")
ROOM = ("audio.noise", "audio.speech_level", "audio.snr", "audio.clipping", "audio.dropouts",
        "audio.hum")


def result(cid: str, status: Status, fix: str | None, blocks: bool = False,
           message: str = "msg") -> CheckResult:
    return CheckResult(cid, cid.split(".")[0], status, None, None, None, None, message, fix,
                       unknown_blocks=blocks)


def level(cid: str, status: Status, value: float | str | bool | None, message: str,
          warn: float | None = None, fail: float | None = None,
          fix: str | None = None) -> CheckResult:
    spec = BY_ID[cid]
    return CheckResult(cid, spec.group, status, value, spec.unit, warn, fail, message,
                       fix if status is not Status.PASS else None)


def text_of(report: CheckReport, *, details: bool = False, width: int = 80) -> str:
    out = io.StringIO()
    render_terminal(report, out, details=details, width=width)
    return out.getvalue()


def test_checks_sharing_a_fix_are_one_item_and_blockers_come_first():
    checks = (result("audio.noise", Status.UNKNOWN, SAME_FIX),
              result("audio.hum", Status.UNKNOWN, SAME_FIX),
              result("vpn.connected", Status.FAIL, "Start the VPN."),
              result("audio.clipping", Status.UNKNOWN, SAME_FIX),
              result("system.cpu", Status.PASS, None))
    report = CheckReport(Status.FAIL, "p", "1", "2026-11-23T00:00:00+00:00", 1.0, checks)
    lines = text_of(report).splitlines()
    text = " ".join(" ".join(lines).split())  # undo the wrapping
    assert text.count(SAME_FIX) == 1
    todo = lines[lines.index("Fix these before you take calls:") + 1:]
    # the blocking VPN item first, its fix on a line of its own under it
    assert todo[0] == "✘ VPN tunnel: msg"
    assert todo[1] == "   Fix: Start the VPN."
    # the three room checks with one reason and one fix: one item, named by its step
    assert todo[2] == "Also worth fixing:"
    assert todo[3] == "? Microphone test and room noise: msg"
    assert todo[4] == "   Fix: " + SAME_FIX
    assert todo[5] == ""          # and no third item


def realistic_report() -> CheckReport:
    """A run as the issue saw it: no microphone, no center, a bad line, jargon in messages."""
    checks = [
        level("system.cpu", Status.PASS, 18.4, "CPU 18 % busy on 2 cores", 80, 95),
        level("system.uptime", Status.PASS, 0.0, "restarted 0.0 days ago", 14, 30),
        level("network.link", Status.PASS, "wired", "wired (eth0)"),
        level("vpn.connected", Status.FAIL, False, "no VPN tunnel is up",
              fix="Start your company VPN client and sign in."),
        level("network.rtt", Status.PASS, 21.0, "21.0 ms round trip to the center", 150, 250),
        level("network.jitter", Status.FAIL, 45.0,
              "45.0 ms jitter (RFC 3550; towards the center 45.0 ms, back 3.1 ms)", 20, 30,
              fix="Use a cable instead of Wi-Fi."),
        level("network.mos", Status.WARN, 3.6, "estimated MOS 3.60 (R 72) for G.711 calls",
              4.0, 3.5, fix="See the jitter fix."),
        level("network.hops", Status.PASS, 1, "1 hops to the center, no segment adds loss"),
        level("audio.headset", Status.PASS, "usb_headset",
              "calls would use Jabra Evolve2 40 (USB headset)"),
        level("audio.speech_level", Status.WARN, -38.0,
              "your voice reaches -38 dBFS (P.56 active level)", -30, -40,
              fix="Bring the microphone closer."),
        level("audio.noise", Status.FAIL, -35.0, "background noise -35 dBFS(A)", -50, -40,
              fix="Close the door."),
        level("audio.dropouts", Status.PASS, 0, "0 count in 6 s of sound", 1, 3),
    ]
    return CheckReport(overall_verdict(checks), "agent-kit default call standards",
                       "2026.11.0", "2026-11-23T00:00:00+00:00", 9.8, tuple(checks))


INTERNAL = ("RFC 3550", "dBFS(A)", "dBFS", "P.56", "R 72", "G.711", "usb_headset", "1 hops",
            "0 count", "days", "MOS", "2026.11.0")


@pytest.mark.parametrize("width", [80, 120])
def test_the_default_view_is_steps_and_plain_problems_with_no_internal_values(width):
    text = text_of(realistic_report(), width=width)
    for internal in INTERNAL:
        assert internal not in text, (internal, text)
    lines = text.splitlines()
    assert lines[0].startswith("✔ Your computer") and lines[0].endswith("OK")
    assert any(line.startswith("✘ VPN ") and line.endswith("problem found") for line in lines)
    assert "✘ Jitter is too high: 45 ms (should be at most 30 ms)" in text
    assert "Background noise is too high" in text and "Speech level is too low" in text
    assert "NOT READY" in text and all(display_width(line) <= width for line in lines)


def test_details_show_every_check_with_its_message_and_no_value_column():
    text = text_of(realistic_report(), details=True)
    flat = " ".join(text.split())
    for r in realistic_report().checks:
        assert " ".join(r.message.split()) in flat, r.id
    # the value is in the message: "18.4 %" beside "CPU 18 % busy" would say it twice
    assert "18.4 %" not in text and "usb_headset" not in text
    assert "agent-kit default call standards 2026.11.0" in flat   # the policy, for IT


def test_a_reason_shared_by_a_whole_step_is_one_line_not_six():
    checks = [level("system.cpu", Status.PASS, 10.0, "CPU 10 % busy", 80, 95)]
    checks += [CheckResult(cid, "audio", Status.UNKNOWN, None, BY_ID[cid].unit, None, None,
                           NO_MIC, SAME_FIX) for cid in ROOM]
    report = CheckReport(overall_verdict(checks), "p", "1", "2026-11-23T00:00:00+00:00", 1.0,
                         tuple(checks))
    text = text_of(report)
    assert text.count("could not record") == 1 and text.count(SAME_FIX.split()[0]) == 1
    assert "Microphone test and room noise: could not record" in text


@pytest.mark.parametrize("lang", ["ja", "ko", "sv"])
def test_other_languages_wrap_within_the_width(lang):
    set_language(lang)
    try:
        for width in (80, 120):
            lines = report_lines(realistic_report(), width)
            assert all(display_width(line) <= width for line, _style in lines), lang
    finally:
        set_language("en")


class FakeTty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_rewrites_one_line_on_a_terminal_and_prints_lines_elsewhere():
    tty = FakeTty()
    line = ProgressLine(tty)
    line("start", "system", 0.0, None)
    line("start", "headset", 0.0, None)
    line("done", "system", 0.4, [])
    assert "\n" not in tty.getvalue()                    # one line, rewritten in place
    assert tty.getvalue().count("\r\x1b[K") == 3
    assert "Headset" in tty.getvalue().split("\r\x1b[K")[-1]
    line("done", "headset", 0.9, [])
    assert tty.getvalue().endswith("\r\x1b[K")            # cleared when nothing runs
    pipe = io.StringIO()
    plain = ProgressLine(pipe)
    plain("start", "vpn", 0.0, None)
    plain("done", "vpn", 0.2, [level("vpn.connected", Status.FAIL, False, "no VPN")])
    assert pipe.getvalue() == "measuring: VPN\nVPN: problem found (0.2 s)\n"
