"""The terminal report's "What to do" list: one item per distinct fix, blocking ones first."""
from __future__ import annotations

import io

from agent_kit.core.results import CheckReport, CheckResult, Status
from agent_kit.face.terminal import render_terminal

SAME_FIX = "Unplug and replug the USB headset."


def result(cid: str, status: Status, fix: str | None, blocks: bool = False) -> CheckResult:
    return CheckResult(cid, cid.split(".")[0], status, None, None, None, None, "msg", fix,
                       unknown_blocks=blocks)


def test_checks_sharing_a_fix_are_one_item_and_blockers_come_first():
    checks = (result("audio.noise", Status.UNKNOWN, SAME_FIX),
              result("audio.hum", Status.UNKNOWN, SAME_FIX),
              result("vpn.connected", Status.FAIL, "Start the VPN."),
              result("audio.clipping", Status.UNKNOWN, SAME_FIX),
              result("system.cpu", Status.PASS, None))
    report = CheckReport(Status.FAIL, "p", "1", "2026-11-23T00:00:00+00:00", 1.0, checks)
    out = io.StringIO()
    render_terminal(report, out)
    text = " ".join(out.getvalue().split())  # undo the console's wrapping
    assert text.count(SAME_FIX) == 1
    assert "1. VPN tunnel (blocks login): Start the VPN." in text
    assert "2. Background noise, Mains hum (50/60 Hz), Clipping: " + SAME_FIX in text
    assert " 3. " not in text
