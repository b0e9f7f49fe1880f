"""The dashboard in a real headless Chromium against a real ``agent-center serve``.

A center process with a temporary data dir; workstations enrolled with a token and sending
HMAC-signed heartbeats through the API (tests/center_seed.py); then Chromium, driven by
Playwright, logs in, reads the fleet overview, filters it, exports CSV and opens one agent's
history. Screenshots go to test-artifacts/dashboard-*.png.
"""

from __future__ import annotations

import csv
import io
import math
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from agent_kit.core.results import CheckResult, Status
from tests.center_seed import (
    Center,
    Workstation,
    heartbeat,
    history,
    home_results,
    run_center,
    sent_heartbeat,
)
from tests.lab.chromium import ARTIFACTS, chromium_browser

pytestmark = pytest.mark.lab

HISTORY = 40                 # heartbeats per charted agent
INTERVAL_S = 60              # online agents stay online for the whole module (60 + 120 s grace)
BULK = 30                    # never-seen agents, so the fleet has more than one page
ALICE_BEATS = 20             # alice's heartbeats: 19 minutes of them
ADMIN_TOKEN = "dashboard-test-admin-token-0123456789"


@dataclass(frozen=True)
class Fleet:
    center: Center
    alice: Workstation       # online, ready, every check passes (wired, USB headset)
    bob: Workstation         # online, not ready for a few minutes: jitter and loss fail
    carol: Workstation       # online, ready with a warning
    quiet: Workstation       # went offline (1 s interval, then silence), last: VPN down
    dave: Workstation        # enrolled, never seen
    erin: Workstation        # retired
    vera: Workstation        # online, not ready for 40 minutes: the VPN is down
    rtt_bob: tuple[float, ...]
    alice_times: tuple[str, ...]   # measured_at of alice's heartbeats
    report_id: str

    @property
    def total(self) -> int:
        return 7 + BULK


def _bob_rtt(i: int) -> float:
    return round(30 + 12 * math.sin(i / 5) + (90 if i == 27 else 0), 2)


def _bob_readings(i: int) -> dict[str, tuple[str, float | None]]:
    bad = i >= HISTORY - 3
    return {
        "network.rtt": ("warn" if _bob_rtt(i) > 100 else "pass", _bob_rtt(i)),
        "network.jitter": ("fail" if bad else "pass", 41.5 if bad else 3.0 + (i % 4)),
        "network.loss": ("fail" if bad else "pass", 4.2 if bad else 0.1 * (i % 3)),
        "network.mos": ("warn" if bad else "pass", 3.4 if bad else 4.3 - 0.01 * (i % 5)),
        "audio.noise": ("pass", -58.0 + (i % 6)),
        "bandwidth.down": ("pass", 95.0 + i % 7),
        "bandwidth.up": ("pass", 19.0 + i % 3),
        "audio.headset": ("pass", None),
    }


@pytest.fixture(scope="module")
def fleet() -> Iterator[Fleet]:
    data_dir = Path(tempfile.mkdtemp(prefix="dashboard-center-"))
    try:
        with run_center(data_dir, admin_token=ADMIN_TOKEN) as center:
            yield _seed(center)
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


def _seed(center: Center) -> Fleet:
    token = center.create_token(uses=10 + BULK, note="dashboard test")
    # First the agent that must go offline: 1 s interval, so the center calls it offline
    # after interval + grace (10 s minimum) of silence.
    quiet = center.enroll(token, "quiet-pc", "Quentin Quiet")
    quiet.send([_judged(1, home_results(vpn_up=False), interval_s=1)])
    # two sites: tokyo-1 (vera, bob: not ready), osaka (alice, carol: ready); the rest none
    tokyo = center.create_token(uses=2, note="tokyo", team="tokyo-1")
    osaka = center.create_token(uses=2, note="osaka", team="osaka")
    alice = center.enroll(osaka, "alice-pc", "Alice Ready")
    bob = center.enroll(tokyo, "bob-pc", "Bob Failing")
    carol = center.enroll(osaka, "carol-pc", "Carol Warning")
    dave = center.enroll(token, "dave-pc", "Dave New")
    erin = center.enroll(token, "erin-pc", "Erin Gone")
    for i in range(BULK):
        center.enroll(token, f"bulk-{i:02d}.corp.example")

    vera = center.enroll(tokyo, "vera-pc", "Vera VPN")
    vera.send([_judged(1, home_results(vpn_up=False), interval_s=INTERVAL_S,
                       gate_since=datetime.now(UTC) - timedelta(minutes=40))])
    # Alice: 20 minutes of heartbeats (fewer than the 1 h period shows), no loss at all and a
    # MOS at G.107's ceiling: flat lines at the ends of their quantities' ranges.
    alice_beats = []
    for i in range(ALICE_BEATS):
        at = datetime.now(UTC) - timedelta(seconds=INTERVAL_S * (ALICE_BEATS - 1 - i))
        alice_beats.append(_judged(i + 1, [*home_results(), *_readings({
            "network.rtt": ("pass", 25.0 + i % 5), "network.jitter": ("pass", 2.0),
            "network.loss": ("pass", 0.0), "network.mos": ("pass", 4.5)})], at=at))
    alice.send(alice_beats)
    bob.send(history(HISTORY, _bob_readings, interval_s=INTERVAL_S))
    carol.send(history(5, lambda i: {"network.rtt": ("warn", 120.0)}, interval_s=INTERVAL_S))
    carol.send([_judged(6, [*home_results(link=("wlan0", "wifi", 300)),
                            *_readings({"network.rtt": ("warn", 120.0)})])])
    erin.send(history(2, lambda i: {"network.rtt": ("pass", 22.0)}, interval_s=INTERVAL_S))
    with center.admin() as admin:
        admin.post(f"/api/v1/agents/{erin.agent_id}/retire").raise_for_status()
    # Bob's failing checks carry the agent's own words.
    last = heartbeat(HISTORY + 1, datetime.now(UTC), _bob_readings(HISTORY - 1),
                     interval_s=INTERVAL_S,
                     reasons=["Jitter 41.5 ms is above 30 ms", "Packet loss 4.2 % is above 3 %"],
                     messages={"network.jitter": "Jitter is 41.5 ms: calls will break up.",
                               "network.loss": "4.2 % of packets are lost."})
    bob.send([last])
    report_id = bob.upload_report("<!doctype html><title>Diagnosis</title><h1>Bob's report</h1>")

    # Wait (at most 20 s) until the quiet agent is offline.
    deadline = time.monotonic() + 20
    with center.admin() as admin:
        while True:
            state = admin.get(f"/api/v1/agents/{quiet.agent_id}").json()["state"]
            if state == "offline":
                break
            assert time.monotonic() < deadline, f"quiet agent still {state}"
            time.sleep(0.5)
    rtt = tuple(_bob_rtt(i) for i in range(HISTORY)) + (_bob_rtt(HISTORY - 1),)
    return Fleet(center, alice, bob, carol, quiet, dave, erin, vera, rtt,
                 tuple(b["measured_at"] for b in alice_beats), report_id)


def _readings(readings: dict[str, tuple[str, float | None]]) -> list[CheckResult]:
    return [CheckResult(id=cid, group=cid.split(".")[0], status=Status(status), value=value,
                        unit=None, warn=None, fail=None, message="")
            for cid, (status, value) in readings.items()]


def _judged(seq: int, results: list[CheckResult], *, interval_s: float = INTERVAL_S,
            at: datetime | None = None, gate_since: datetime | None = None):  # type: ignore[no-untyped-def]
    """A heartbeat of these results, its gate's reasons the failing checks' messages."""
    at = at or datetime.now(UTC)
    return sent_heartbeat(seq, results, at, interval_s=interval_s, gate_since=gate_since or at,
                          reasons=[r.msg for r in results if r.blocks and r.msg])  # type: ignore[misc]


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """A real Chromium; if it cannot start, the test fails (no skip)."""
    with chromium_browser() as chromium:
        yield chromium


@pytest.fixture()
def page(browser, fleet: Fleet):  # type: ignore[no-untyped-def]
    context = browser.new_context(viewport={"width": 1360, "height": 900},
                                  accept_downloads=True, base_url=fleet.center.url)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    # Console errors include Content-Security-Policy refusals. Expected: the 401 of the first
    # API call before logging in, the 404 of an unknown agent (the page says so).
    page.on("console", lambda msg: errors.append(msg.text)
            if msg.type == "error" and not re.search(r"status of 40[14]", msg.text) else None)
    yield page
    context.close()
    assert not errors, f"errors in the browser: {errors}"


def _login(page) -> None:  # type: ignore[no-untyped-def]
    page.goto("/")
    page.wait_for_selector("#login:not([hidden])")
    page.fill("#login-token", ADMIN_TOKEN)
    page.click("#login-form button[type=submit]")
    page.wait_for_selector("#agents[data-loaded]")


def _shot(page, name: str) -> None:  # type: ignore[no-untyped-def]
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"dashboard-{name}.png"), full_page=True)


def _rows(page) -> list[str]:  # type: ignore[no-untyped-def]
    return page.eval_on_selector_all("#agent-rows tr", "rows => rows.map(r => r.dataset.agentId)")


FILTER_KEYS = ("q", "state", "ready", "failing", "team", "sort")


def _wait_loaded(page, **params: str) -> None:  # type: ignore[no-untyped-def]
    """Until the table shows the page for exactly these filters (others unset), and the
    given limit/offset."""
    params = {"sort": "attention", **params}     # the page's default order

    def wanted(loaded: str) -> bool:
        got = {k: v for k, v in re.findall(r"([^&=]+)=([^&]*)", loaded)}
        return (all(got.get(k, "") == params.get(k, "") for k in FILTER_KEYS)
                and all(got.get(k) == params[k] for k in ("limit", "offset") if k in params))
    deadline = time.monotonic() + 10
    while True:
        loaded = page.get_attribute("#agents", "data-loaded") or ""
        if wanted(loaded) and page.get_attribute("#agents", "aria-busy") is None:
            return
        assert time.monotonic() < deadline, f"table shows {loaded!r}, wanted {params}"
        page.wait_for_timeout(50)


def test_login_gate_and_fleet_counts(page, fleet: Fleet) -> None:
    page.goto("/")
    page.wait_for_selector("#login:not([hidden])")
    assert page.is_hidden("#app")
    _shot(page, "login")
    page.fill("#login-token", "not-the-token")
    page.click("#login-form button[type=submit]")
    page.wait_for_selector("#login-error:not([hidden])")
    assert "not valid" in page.inner_text("#login-error")

    page.fill("#login-token", ADMIN_TOKEN)
    page.click("#login-form button[type=submit]")
    page.wait_for_selector("#agents[data-loaded]")
    counts = {key: page.inner_text(f"#count-{key}") for key in
              ("online", "offline", "never_seen", "retired", "ready", "not_ready")}
    # the offline agent is counted offline, not as not ready now
    assert counts == {"online": "4", "offline": "1", "never_seen": str(1 + BULK),
                      "retired": "1", "ready": "2", "not_ready": "2"}
    assert len(_rows(page)) == fleet.total
    assert page.inner_text("#result-count") == f"1–{fleet.total} of {fleet.total} agents"

    row = page.locator(f"tr[data-agent-id='{fleet.bob.agent_id}']")
    assert row.locator(".badge").all_inner_texts() == ["Not ready"]     # one status per row
    assert row.locator(".chip").all_inner_texts() == ["Jitter (RFC 3550)", "Packet loss"]
    assert row.locator("td.time time").count() == 2          # since, last seen
    quiet = page.locator(f"tr[data-agent-id='{fleet.quiet.agent_id}']")
    assert quiet.locator(".badge").count() == 0
    dave = page.locator(f"tr[data-agent-id='{fleet.dave.agent_id}']")
    assert dave.locator(".badge").all_inner_texts() == ["Never seen"]
    _shot(page, "fleet")

    # The session cookie keeps the admin logged in across pages; logging out ends it.
    page.reload()
    page.wait_for_selector("#agents[data-loaded]")
    page.click("#logout")
    page.wait_for_selector("#login:not([hidden])")
    page.reload()
    page.wait_for_selector("#login:not([hidden])")


def test_filters_search_and_pages_are_served_by_the_center(page, fleet: Fleet) -> None:
    _login(page)
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url) if "/api/v1/agents?" in r.url else None)

    page.select_option("#f-failing", "network.jitter")
    _wait_loaded(page, failing="network.jitter")
    assert _rows(page) == [fleet.bob.agent_id]
    assert "failing=network.jitter" in page.url

    page.select_option("#f-failing", "")
    page.select_option("#f-ready", "false")
    _wait_loaded(page, ready="false")        # online and not ready, the longest first
    assert _rows(page) == [fleet.vera.agent_id, fleet.bob.agent_id]

    page.click("#clear-filters")
    page.fill("#f-q", "CAROL")                      # case-insensitive, debounced
    _wait_loaded(page, q="CAROL")
    assert _rows(page) == [fleet.carol.agent_id]
    page.fill("#f-q", "")
    _wait_loaded(page, offset="0")

    page.click(".stat[data-value=retired]")         # a summary card is a filter too
    _wait_loaded(page, state="retired")
    assert _rows(page) == [fleet.erin.agent_id]
    assert page.get_attribute(".stat[data-value=retired]", "aria-pressed") == "true"

    page.select_option("#f-state", "never_seen")
    page.select_option("#page-size", "25")
    _wait_loaded(page, state="never_seen", limit="25")
    first = _rows(page)
    assert len(first) == 25
    assert page.inner_text("#result-count") == f"1–25 of {1 + BULK} agents"
    page.click("#next-page")
    _wait_loaded(page, state="never_seen", offset="25")
    second = _rows(page)
    assert len(second) == 1 + BULK - 25 and not set(first) & set(second)
    assert page.is_disabled("#next-page")
    _shot(page, "fleet-filtered")

    # Sorting by hostname, from the column header.
    page.select_option("#page-size", "50")
    page.select_option("#f-state", "online")
    _wait_loaded(page, state="online")
    page.click("th[data-sort=hostname] button")
    _wait_loaded(page, state="online", sort="hostname")
    assert _rows(page) == [fleet.alice.agent_id, fleet.bob.agent_id, fleet.carol.agent_id,
                           fleet.vera.agent_id]
    assert page.get_attribute("th[data-sort=hostname]", "aria-sort") == "ascending"
    # The center did the filtering: the browser asked with the filters in the query.
    assert any("failing=network.jitter" in url for url in requests)
    assert any("state=never_seen" in url and "offset=25" in url for url in requests)

    # A reload keeps the view (the filters live in the address bar).
    page.reload()
    _wait_loaded(page, state="online", sort="hostname")
    assert page.input_value("#f-state") == "online"


def test_csv_export_downloads_the_filtered_rows(page, fleet: Fleet) -> None:
    _login(page)
    page.select_option("#f-ready", "false")
    _wait_loaded(page, ready="false")
    with page.expect_download() as info:
        page.click("#export-csv")
    download = info.value
    text = Path(download.path()).read_text("utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [r["agent_id"] for r in rows] == [fleet.vera.agent_id, fleet.bob.agent_id]
    bob = next(r for r in rows if r["agent_id"] == fleet.bob.agent_id)
    assert bob["hostname"] == "bob-pc"
    assert "network.jitter" in bob["failing"] and "network.loss" in bob["failing"]
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "dashboard-export.csv").write_text(text, "utf-8")

    page.click("#clear-filters")
    _wait_loaded(page, offset="0")
    with page.expect_download() as info:
        page.click("#export-csv")
    everyone = list(csv.DictReader(io.StringIO(Path(info.value.path()).read_text("utf-8-sig"))))
    assert len(everyone) == fleet.total


def _path_points(d: str) -> list[tuple[str, float, float]]:
    return [(cmd, float(x), float(y)) for cmd, x, y in
            re.findall(r"([ML])(-?[\d.]+),(-?[\d.]+)", d)]


def test_agent_history_draws_the_charts(page, fleet: Fleet) -> None:
    _login(page)
    page.click(f"tr[data-agent-id='{fleet.bob.agent_id}'] a.agent-name")
    page.wait_for_selector("#charts[data-drawn]")
    assert page.url.endswith(f"/agents/{fleet.bob.agent_id}")
    assert page.inner_text("#agent-name") == "Bob Failing"
    # each status once: connection and readiness in the head, no verdict or gate badge again
    assert page.locator("#agent-badges .badge").all_inner_texts() == ["Online", "Not ready"]
    assert page.locator("#gate .badge").count() == 0
    assert page.get_attribute("#charts", "data-drawn") == str(HISTORY + 1)

    # Current problems: the failing checks with the agent's messages; the gate's reasons.
    problems = page.inner_text("#problems")
    assert "Jitter (RFC 3550)" in problems and "Jitter is 41.5 ms: calls will break up." in problems
    assert "Packet loss" in problems and "4.2 % of packets are lost." in problems
    assert page.inner_text("#gate .gate-state") == "Login is denied."
    assert page.locator("#gate .reasons li").all_inner_texts() == [
        "Jitter 41.5 ms is above 30 ms", "Packet loss 4.2 % is above 3 %"]

    # Every chart has its line; the RTT line has one point per heartbeat, and its highest
    # point is the heartbeat with the highest RTT (the SVG shows the data, not a picture).
    for figure in ("rtt", "jitter", "loss", "mos", "noise", "bandwidth"):
        assert page.locator(f"#chart-{figure} path.chart-line").count() >= 1, figure
    assert page.locator("#chart-bandwidth path.chart-line").count() == 2
    points = _path_points(page.get_attribute("#chart-rtt path.chart-line", "d") or "")
    assert len(points) == len(fleet.rtt_bob)
    assert [cmd for cmd, _, _ in points].count("M") == 1         # no gap: one unbroken line
    highest = min(range(len(points)), key=lambda i: points[i][2])  # smallest y = highest
    assert highest == fleet.rtt_bob.index(max(fleet.rtt_bob))
    xs = [x for _, x, _ in points]
    assert xs == sorted(xs)
    latest = page.inner_text("#chart-rtt .chart-latest")
    assert latest.endswith(" ms") and float(latest[:-3]) == pytest.approx(fleet.rtt_bob[-1],
                                                                          abs=0.05)
    assert page.locator("#chart-jitter .mark-fail").count() == 4  # the failing readings
    assert "closed" in (page.text_content("#gate-strip svg title") or "")

    # The cursor reads out a heartbeat.
    page.hover("#chart-rtt svg", position={"x": 400, "y": 90})
    page.wait_for_selector("#chart-rtt .chart-tip:not([hidden])")
    assert re.search(r"\d ms", page.inner_text("#chart-rtt .chart-tip"))

    # The uploaded diagnosis report is listed and opens.
    link = page.locator("#reports a")
    assert link.count() == 1
    href = link.get_attribute("href") or ""
    assert href.endswith(f"/reports/{fleet.report_id}")
    _shot(page, "agent")
    with page.context.expect_page() as popup:
        link.click()
    report = popup.value
    report.wait_for_load_state()
    assert "Bob's report" in report.content()
    report.close()


def test_agent_with_no_heartbeat_and_unknown_agent(page, fleet: Fleet) -> None:
    _login(page)
    page.goto(f"/agents/{fleet.dave.agent_id}")
    page.wait_for_selector("#charts[data-drawn]")
    assert page.get_attribute("#charts", "data-drawn") == "0"
    assert "No heartbeat" in page.inner_text("#gate")
    assert page.locator("#chart-rtt .chart-empty").count() == 1
    page.goto("/agents/ws-doesnotexist")
    page.wait_for_selector("text=Agent not found")


def test_dashboard_is_closed_without_login(fleet: Fleet) -> None:
    """The pages are public files; the data behind them needs the admin credential."""
    for path in ("/api/v1/agents", "/api/v1/agents.csv",
                 f"/api/v1/agents/{fleet.bob.agent_id}/heartbeats"):
        assert httpx.get(fleet.center.url + path, timeout=10).status_code == 401, path


HANGUL = re.compile("[\uac00-\ud7a3]")


def test_the_dashboard_in_japanese_renders_a_korean_agents_messages(page, fleet: Fleet) -> None:
    """IT reads in Japanese: the page's words and a Korean agent's messages and gate reasons
    are Japanese (rendered by the center from the heartbeat's message ids); the selector
    switches the page to English, where the same agent reads in English."""
    from agent_kit.core.wire import heartbeat as wire
    from tests.test_languages import closed_gate, judged_in

    kim = fleet.center.enroll(fleet.center.create_token(), "kim-pc", "Kim Busy")
    results = judged_in("ko")
    gate = closed_gate(results, "ko")
    content = wire.build_heartbeat(results, gate_open=False, gate_since=time.time() - 60,
                                   gate_reasons=gate.reason_msgs, interval_s=INTERVAL_S,
                                   measured_at=time.time())
    kim.send([wire.identified_heartbeat(content, seq=1)])
    try:
        _read_kim_in_japanese_then_english(page, fleet, kim)
    finally:   # out of the way of the overview tests after this one
        with fleet.center.admin() as admin:
            admin.post(f"/api/v1/agents/{kim.agent_id}/retire").raise_for_status()


def _read_kim_in_japanese_then_english(page, fleet: Fleet,  # type: ignore[no-untyped-def]
                                       kim: Workstation) -> None:
    from agent_kit.center.dashboard_text import ui_text
    from agent_kit.core import i18n

    page.context.add_cookies([{"name": "agent_center_lang", "value": "ja",
                               "url": fleet.center.url}])
    _login(page)
    assert page.get_attribute("html", "lang") == "ja"
    assert "フリート" in page.inner_text(".page-head h1")
    assert page.locator("#lang").input_value() == "ja"
    _shot(page, "ja-fleet")
    page.goto(f"/agents/{kim.agent_id}")
    page.wait_for_selector("#charts[data-drawn]")
    cpu_ja = i18n.render(i18n.M_("CPU {load:.0f} % busy on {cores} cores", load=97.0, cores=4),
                         "ja")
    assert cpu_ja in page.inner_text("#problems")
    assert page.inner_text("#gate .gate-state") == ui_text("ja")["Login is denied."]
    # the overview gives Kim's first reason in Japanese too
    page.goto("/")
    page.wait_for_selector("#agents[data-loaded]")
    kim_row = page.locator(f"tr[data-agent-id='{kim.agent_id}']")
    assert kim_row.locator(".reason-text").inner_text() == cpu_ja
    page.goto(f"/agents/{kim.agent_id}")
    page.wait_for_selector("#charts[data-drawn]")
    body = page.inner_text("main")   # (the language selector names 한국어 itself)
    assert not HANGUL.search(body), "Korean left on a Japanese page"
    assert "現在の問題" in body
    # unit words in the reader's language too (the heartbeat's uptime is in days)
    assert " days" not in body and re.search(r"\d 日", body), body
    _shot(page, "ja-agent")

    page.select_option("#lang", "en")
    page.wait_for_selector("html[lang=en]")
    page.wait_for_selector("#charts[data-drawn]")
    assert "CPU 97 % busy on 4 cores" in page.inner_text("#problems")
    assert page.inner_text("#gate .gate-state") == "Login is denied."
    assert not HANGUL.search(page.inner_text("main"))


def _row(page, ws: Workstation):  # type: ignore[no-untyped-def]
    return page.locator(f"tr[data-agent-id='{ws.agent_id}']")


def test_the_overview_answers_who_cannot_take_calls_and_why_first(page, fleet: Fleet) -> None:
    _login(page)
    rows = _rows(page)
    # online and not ready, the longest first; then offline; then ready, warnings first
    assert rows[:5] == [fleet.vera.agent_id, fleet.bob.agent_id, fleet.quiet.agent_id,
                        fleet.carol.agent_id, fleet.alice.agent_id]
    assert page.get_attribute(f"tr[data-agent-id='{rows[-1]}']", "data-status") == "retired"
    retired = page.locator("tr[data-status=retired] td.reason").all_inner_texts()
    assert retired and set(retired) == {"—"}         # no reason: it takes no calls at all
    assert page.get_attribute("th[data-sort=attention]", "aria-sort") == "other"

    vera = _row(page, fleet.vera)
    assert vera.locator(".badge").all_inner_texts() == ["Not ready"]
    # the first reason in words (the agent's message, rendered by the center), and its check
    assert vera.locator(".reason-text").inner_text() == "no VPN tunnel is up"
    assert vera.locator(".chip").all_inner_texts() == ["VPN tunnel",
                                                       "Center reached through the VPN"]
    since = vera.locator("td.since").inner_text()
    assert re.fullmatch(r"not ready since .*\d\d:\d\d.*\s\(4[01] min\)", since), since
    bob = _row(page, fleet.bob)
    assert bob.locator(".reason-text").inner_text() == "Jitter is 41.5 ms: calls will break up."
    assert bob.locator("td.since").inner_text().startswith("not ready since ")

    # offline: its last state as a past fact, not "not ready" now
    quiet = _row(page, fleet.quiet)
    assert quiet.locator("td.status").inner_text() == "Offline, last: not ready (VPN tunnel)"
    assert quiet.locator("td.since").inner_text().startswith("offline since ")
    assert "past" in (quiet.locator("td.reason").get_attribute("class") or "")
    assert quiet.locator(".reason-text").inner_text() == "no VPN tunnel is up"

    alice = _row(page, fleet.alice)
    assert alice.locator(".badge").all_inner_texts() == ["Ready"]
    assert alice.locator("td.since").inner_text().startswith("ready since ")
    assert alice.locator("td.reason").inner_text() == "—"
    _shot(page, "overview")

    # counts per team, the team with the most not ready first; a team's name filters by it
    teams = page.eval_on_selector_all("#team-rows tr", "rows => rows.map(r => [r.dataset.team,"
                                      " ...[...r.querySelectorAll('td')].map(c => c.innerText)])")
    # (then by offline: the workstations without a team have the offline quiet-pc)
    assert teams == [["tokyo-1", "2", "0", "0", "0"], ["", "0", "1", "0", str(1 + BULK)],
                     ["osaka", "0", "0", "2", "0"]]
    page.click("#team-rows button[data-team=tokyo-1]")
    _wait_loaded(page, team="tokyo-1")
    assert _rows(page) == [fleet.vera.agent_id, fleet.bob.agent_id]
    assert page.input_value("#f-team") == "tokyo-1" and "team=tokyo-1" in page.url
    page.click("#team-rows button[data-team=tokyo-1]")     # again: every team
    _wait_loaded(page)

    # the Status header gives the order back after another sort
    page.click("th[data-sort=hostname] button")
    _wait_loaded(page, sort="hostname")
    assert _rows(page)[0] == fleet.alice.agent_id
    page.click("th[data-sort=attention] button")
    _wait_loaded(page)
    assert _rows(page)[:2] == [fleet.vera.agent_id, fleet.bob.agent_id]
    assert "sort=" not in page.url


def _axis(page, figure: str) -> tuple[float, float, list[float]]:  # type: ignore[no-untyped-def]
    svg = page.locator(f"#{figure} svg.chart-svg")
    ticks = [float(v) for v in page.eval_on_selector_all(
        f"#{figure} .chart-ytick", "ts => ts.map(t => t.dataset.value)")]
    return float(svg.get_attribute("data-y-lo") or "nan"), \
        float(svg.get_attribute("data-y-hi") or "nan"), ticks


def _ms(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp() * 1000


def test_an_agents_page_names_its_devices_and_fits_its_charts(page, fleet: Fleet) -> None:
    _login(page)
    page.goto(f"/agents/{fleet.alice.agent_id}")
    page.wait_for_selector("#charts[data-drawn]")
    assert page.locator("#agent-badges .badge").all_inner_texts() == ["Online", "Ready"]
    assert page.inner_text("[data-device=headset]") == "Jabra Evolve2 40 (USB headset)"
    assert page.inner_text("[data-device=link]") == "wired (eth0 at 1000 Mbit/s)"
    assert page.inner_text("#gate .gate-state") == "Login is allowed."

    # the 1 h period shows the 20 minutes the heartbeats cover, not 40 empty ones before them
    svg = page.locator("#chart-rtt svg.chart-svg")
    assert float(svg.get_attribute("data-t0") or 0) == _ms(fleet.alice_times[0])
    # (to one interval past the last heartbeat: how long its state holds)
    assert float(svg.get_attribute("data-t1") or 0) == _ms(fleet.alice_times[-1]) + \
        INTERVAL_S * 1000
    assert page.locator("#chart-mos .chart-legend li").all_inner_texts() == ["MOS"]
    assert f"{ALICE_BEATS} heartbeats from " in page.inner_text("#history-note")

    # no impossible axes: 0 % loss all along starts at 0, a MOS of 4.5 ends at 4.5
    lo, hi, ticks = _axis(page, "chart-loss")
    assert lo == 0 and hi > 0 and min(ticks) == 0, (lo, hi, ticks)
    lo, hi, ticks = _axis(page, "chart-mos")
    assert 1 <= lo < 4.5 and hi == 4.5 and all(1 <= v <= 4.5 for v in ticks), (lo, hi, ticks)
    for figure in ("chart-rtt", "chart-jitter"):
        lo, _, ticks = _axis(page, figure)
        assert lo == 0 and min(ticks) >= 0, figure
    assert page.inner_text("#chart-mos .chart-latest") == "4.5 MOS"   # not "MOS 4.5 MOS"
    _shot(page, "agent-alice")

    # bob's falling MOS and noise: axes fitted, still inside the physical ranges
    page.goto(f"/agents/{fleet.bob.agent_id}")
    page.wait_for_selector("#charts[data-drawn]")
    lo, hi, ticks = _axis(page, "chart-mos")
    assert 1 <= lo <= 3.4 and 4.3 <= hi <= 4.5, (lo, hi)
    lo, hi, _ = _axis(page, "chart-noise")
    assert lo <= -58 and -52 <= hi <= 0, (lo, hi)

    # the offline agent: what it last was, once
    page.goto(f"/agents/{fleet.quiet.agent_id}")
    page.wait_for_selector("#charts[data-drawn]")
    assert page.locator("#agent-badges .badge").all_inner_texts() == ["Offline, last: not ready"]
    assert "offline" in page.inner_text("#gate")
    _shot(page, "agent-offline")


def _wait_refreshed(page, refreshes: int) -> None:  # type: ignore[no-untyped-def]
    """Until the page has asked the center again by itself (its CSP allows no string eval, so
    no wait_for_function: the attribute is read from here)."""
    deadline = time.monotonic() + 30
    while int(page.get_attribute("#agents", "data-refreshes") or 0) <= refreshes:
        assert time.monotonic() < deadline, "the overview did not refresh itself"
        page.wait_for_timeout(200)


def test_the_overview_refreshes_itself_keeping_filters_scroll_and_focus(page, fleet: Fleet
                                                                        ) -> None:
    """A heartbeat sent while the page is open shows without a reload; the reader's place (the
    scroll position, the focused link, the filters) stays."""
    live = fleet.center.enroll(fleet.center.create_token(), "live-pc", "Liam Live")
    page.set_viewport_size({"width": 1360, "height": 600})
    _login(page)
    refreshes = int(page.get_attribute("#agents", "data-refreshes") or 0)
    assert _row(page, live).locator(".badge").all_inner_texts() == ["Never seen"]
    page.evaluate("window.scrollTo(0, 250)")
    page.focus(f"tr[data-agent-id='{fleet.alice.agent_id}'] a.agent-name")
    before_url = page.url

    live.send([_judged(1, home_results(vpn_up=False))])     # the VPN is down at Liam's
    _wait_refreshed(page, refreshes)
    page.wait_for_selector(f"tr[data-agent-id='{live.agent_id}'][data-status=not_ready]",
                           timeout=30_000)
    row = _row(page, live)
    assert row.locator(".reason-text").inner_text() == "no VPN tunnel is up"
    assert _rows(page)[:3] == [fleet.vera.agent_id, fleet.bob.agent_id, live.agent_id]
    # where the reader was: not back at the top (Chromium's scroll anchoring may move it by
    # what the rows above grew: Liam's row is taller now that it gives a reason)
    assert abs(page.evaluate("window.scrollY") - 250) <= 60
    assert page.evaluate("document.activeElement.closest('tr').dataset.agentId") == \
        fleet.alice.agent_id
    assert page.url == before_url
    assert page.inner_text("#count-not_ready") == "3"
    _shot(page, "overview-live")

    # with a filter: Liam's VPN comes back; the filtered view shows it, the filter stays
    page.select_option("#f-state", "online")
    _wait_loaded(page, state="online")
    refreshes = int(page.get_attribute("#agents", "data-refreshes") or 0)
    live.send([_judged(2, home_results())])
    page.wait_for_selector(f"tr[data-agent-id='{live.agent_id}'][data-status=ready]",
                           timeout=30_000)
    assert int(page.get_attribute("#agents", "data-refreshes") or 0) > refreshes
    assert page.input_value("#f-state") == "online" and "state=online" in page.url
    assert page.inner_text("#count-not_ready") == "2"
