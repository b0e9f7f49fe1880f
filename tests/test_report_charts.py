"""The HTML report's charts and wording, and the report rendered by a real Chromium.

The unit tests read the SVG the report holds: a chart is titled with the check's title and
unit (never "rtt_ms (ms)"), both axes say what they are, the policy level is drawn, and a check
the policy sets no level for gets no bar (which would read as "full"). The lab test opens the
report of a run with four problems in headless Chromium (Playwright), in English and Japanese,
and saves the screenshots to test-artifacts/report-*.png to be looked at.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from tests.lab.chromium import ARTIFACTS, chromium_browser
import pytest

from agent_kit.core.checks import BY_ID
from agent_kit.core.i18n import set_language
from agent_kit.core.results import CheckReport, CheckResult, Status, overall_verdict
from agent_kit.evaluate.diagnosis import diagnose_report
from agent_kit.face.html_report import render_html
from agent_kit.face.svg_charts import level_bar

RTTS = [24.0 + 6 * ((i * 7) % 11) / 11 + (160.0 if i in (40, 41, 120) else 0.0)
        for i in range(250)]


def check(cid: str, status: Status, value: float | str | bool | None, message: str,
          warn: float | None = None, fail: float | None = None, fix: str | None = None,
          details: dict[str, object] | None = None) -> CheckResult:
    spec = BY_ID[cid]
    return CheckResult(cid, spec.group, status, value, spec.unit, warn, fail, message,
                       fix if status is not Status.PASS else None, details=details or {})


def four_problems() -> CheckReport:
    """Wi-Fi jitter and loss, a laptop microphone and a noisy room; the CPU without levels."""
    checks = [
        check("system.cpu", Status.PASS, 35.0, "CPU 35 % busy on 4 cores"),   # no levels set
        check("network.link", Status.WARN, "wifi", "Wi-Fi (wlan0)",
              fix="Use a network cable instead of Wi-Fi for calls."),
        check("vpn.connected", Status.PASS, True, "VPN tunnel up (tun0)"),
        check("network.rtt", Status.PASS, 27.0, "27.0 ms round trip to the center", 150, 250,
              details={"rtt_ms": RTTS}),
        check("network.jitter", Status.FAIL, 41.0, "41.0 ms jitter", 20, 30,
              fix="Use a network cable instead of Wi-Fi for calls."),
        check("network.loss", Status.FAIL, 3.2, "3.2 % of packets lost", 1, 2,
              fix="Use a network cable instead of Wi-Fi for calls."),
        check("audio.headset", Status.FAIL, "builtin",
              "calls would use Built-in Audio (built-in microphone/speakers)",
              fix="Select 'Jabra Evolve2 40' as the default microphone in your sound settings."),
        check("audio.noise", Status.FAIL, -36.0, "background noise -36 dBFS(A)", -50, -40,
              fix="Move away from the window, close the door."),
        check("audio.dropouts", Status.WARN, 2, "2 dropouts in 6 s of sound", 1, 3,
              fix="Unplug and replug the USB headset.",
              details={"gaps_ms": [40.0, 120.0, 60.0]}),
    ]
    return CheckReport(overall_verdict(checks), "agent-kit default call standards",
                       "2026.11.0", "2026-11-23T12:00:00+00:00", 21.4, tuple(checks), "0.1.0")


def chart_titles(html: str) -> list[str]:
    return re.findall(r'<text[^>]*font-weight="600"[^>]*>([^<]*)</text>', html)


def test_a_chart_is_titled_with_the_check_and_its_unit_and_has_labelled_axes() -> None:
    html = render_html(diagnose_report(four_problems()), hostname="pc-7")
    titles = chart_titles(html)
    assert "Round-trip time to the center (ms)" in titles
    assert "Dropouts: length of each gap (ms)" in titles
    assert not any("rtt_ms" in t or "gaps_ms" in t for t in titles)
    assert 'class="y-axis">ms</text>' in html
    assert 'class="x-axis">test packets, in the order sent</text>' in html
    # the policy's levels of network.rtt are drawn in its chart, named
    rtt_chart = html[html.index("Round-trip time to the center (ms)"):]
    rtt_chart = rtt_chart[:rtt_chart.index("</svg>")]
    assert rtt_chart.count('class="threshold"') == 2
    assert "limit 250 ms" in rtt_chart and "warning level 150 ms" in rtt_chart
    # the dropout count's levels say nothing about one gap's length: not drawn on the gaps
    gaps_chart = html[html.index("Dropouts: length of each gap (ms)"):]
    assert 'class="threshold"' not in gaps_chart[:gaps_chart.index("</svg>")]


def test_a_check_without_levels_has_no_bar() -> None:
    assert level_bar(35.0, None, None, direction="higher_is_worse", status="pass",
                     unit="%") == ""
    html = render_html(diagnose_report(four_problems()), hostname="pc-7")
    cpu_row = re.search(r'<tr data-check="system.cpu">.*?</tr>', html)
    assert cpu_row is not None and "<svg" not in cpu_row.group(0)
    jitter_row = re.search(r'<tr data-check="network.jitter">.*?</tr>', html)
    assert jitter_row is not None and "<svg" in jitter_row.group(0)


def test_japanese_status_words_do_not_read_like_exam_results() -> None:
    set_language("ja")
    try:
        html = render_html(diagnose_report(four_problems()), hostname="pc-7")
    finally:
        set_language("en")
    assert "合格" not in html                         # neither 合格 nor 不合格
    badges = re.findall(r'<span class="badge \w+">([^<]*)</span>', html)
    assert set(badges) >= {"OK", "問題あり", "要注意"}, badges


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """A real Chromium; if it cannot start, the test fails (no skip)."""
    with chromium_browser() as chromium:
        yield chromium


@pytest.mark.lab
@pytest.mark.parametrize("lang", ["en", "ja"])
def test_the_report_in_chromium(browser, tmp_path: Path, lang: str) -> None:  # type: ignore[no-untyped-def]
    set_language(lang)
    try:
        html = render_html(diagnose_report(four_problems()), hostname="agent-pc-17",
                           agent_id="a-1f3c")
    finally:
        set_language("en")
    path = tmp_path / f"report-{lang}.html"
    path.write_text(html, "utf-8")
    context = browser.new_context(viewport={"width": 1100, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(path.as_uri())
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"report-{lang}.png"), full_page=True)
    # the charts are drawn where the page says, at their size, with their titles
    boxes = page.eval_on_selector_all(
        ".chart svg", "els => els.map(e => [e.getBoundingClientRect().width, "
                      "e.getBoundingClientRect().height, e.getAttribute('aria-label')])")
    context.close()
    assert not errors, errors
    assert len(boxes) == 2 and all(w > 500 and h > 150 for w, h, _ in boxes), boxes
    want = {"en": "Round-trip time to the center (ms)", "ja": "センターまでの往復時間 (ms)"}
    assert boxes[0][2] == want[lang] or boxes[0][2].endswith("(ms)"), boxes
