"""Every language all the way: what is stored or sent (results, heartbeats, the monitor's state
file, gate reasons) carries message ids + parameters, and each reader renders them in its own
language: ``status --lang``, the center's API and dashboard (a Korean agent's messages read in
English on an English page, in Swedish with a decimal comma on a Swedish one)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from agent_kit.core import i18n
from agent_kit.core.policy import load_policy
from agent_kit.core.results import CheckResult
from agent_kit.core.wire import heartbeat as wire
from agent_kit.evaluate.network import evaluate_network
from agent_kit.evaluate.system import evaluate_system
from agent_kit.link.state_folder import Enrollment, save_enrollment
from agent_kit.loop.hysteresis import Gate, GateState
from agent_kit.loop.state_file import MonitorState, read_state, write_state
from probes.network.path import PathReading
from probes.system import PowerReading, SystemReading
from tests.center_seed import run_center

ROOT = Path(__file__).resolve().parents[1]
NOW = 1_800_000_000.0

BUSY = SystemReading(cpu_load_pct=97.0, logical_cores=4, physical_cores=2,
                     memory_available_mb=5120.0, memory_total_mb=8192.0, disk_free_gb=76.6,
                     disk_path="/", uptime_days=0.4,
                     power=PowerReading(has_battery=False, on_battery=False, charge_pct=None,
                                        minutes_left=None))


def judged_in(lang: str) -> list[CheckResult]:
    """The system checks of a busy computer, judged by a monitor running in ``lang``; the
    path checks' reflector gave up (a message inside a message)."""
    try:
        i18n.set_language(lang)
        policy = load_policy(None)
        silent = PathReading(
            target="10.8.0.1:8751", sent=100, received=0, duplicates=0, rtt_ms_samples=(),
            rtt_median_ms=None, rtt_p95_ms=None, rtt_min_ms=None, jitter_ms=None,
            jitter_up_ms=None, jitter_down_ms=None, jitter_up_steady_ms=None,
            jitter_down_steady_ms=None, loss_pct=100.0, burst_loss_pct=100.0, burst_ratio=1.0,
            reordered_up=0, reordered_down=0, duration_s=6.0, packet_interval_ms=20.0,
            payload_bytes=160, kernel_timestamps=True, problem=None)
        return [*evaluate_system(BUSY, policy), *evaluate_network(silent, policy)]
    finally:
        i18n.set_language("en")


def closed_gate(results: list[CheckResult], lang: str) -> GateState:
    """The gate of a monitor running in ``lang`` after one full check of ``results``."""
    try:
        i18n.set_language(lang)
        gate = Gate(clock=lambda: NOW)
        return gate.observe(results, full=True, at=NOW)
    finally:
        i18n.set_language("en")


def test_a_heartbeat_carries_ids_parameters_and_english_whatever_the_monitor_speaks() -> None:
    results = judged_in("ko")
    gate = closed_gate(results, "ko")
    assert not gate.open and any("CPU" in r for r in gate.reasons)
    assert re.search("[\uac00-\ud7a3]", gate.reasons[0])   # the monitor's own words: Korean
    body = wire.build_heartbeat(results, gate_open=gate.open, gate_since=gate.since,
                                gate_reasons=gate.reason_msgs, interval_s=15, measured_at=NOW)
    cpu = next(c for c in body["checks"] if c["id"] == "system.cpu")
    assert cpu["message"] == "CPU 97 % busy on 4 cores"                     # English text
    assert cpu["message_id"] == "CPU {load:.0f} % busy on {cores} cores"
    assert cpu["message_params"] == {"load": 97.0, "cores": 4}
    assert cpu["fix"] and cpu["fix_id"] == cpu["fix"]          # no parameters: id = English
    rtt = next(c for c in body["checks"] if c["id"] == "network.rtt")
    assert rtt["message"] == ("the path test to the center did not run: no packet came back "
                              "from the reflector")
    assert rtt["message_params"] == {"reason": {"id": "no packet came back from the reflector",
                                                "params": {}}}
    reasons = body["gate"]["reasons"]
    assert all(not re.search("[\uac00-\ud7a3]", r) for r in reasons)
    assert len(body["gate"]["reason_messages"]) == len(reasons)
    # the center accepts it: its strict models derive from the same declarations
    from agent_kit.center import models

    models.Heartbeat.model_validate_json(json.dumps(
        {**body, "id": "0" * 8 + "-0000-4000-8000-" + "0" * 12, "seq": 1}))


def test_message_params_are_bounded_and_finite() -> None:
    deep = i18n.M_("{a}", a=i18n.M_("{b}", b=i18n.M_("{c}", c=i18n.M_("{d}", d=i18n.M_(
        "{e} and {f}", e=float("nan"), f="x" * 2000)))))
    ref = wire.message_ref(deep)
    depth, node = 0, ref
    while isinstance(node, dict) and node["params"]:
        node = next(iter(node["params"].values()))
        depth += 1
    assert depth <= 4 and isinstance(node, str) and len(node) <= wire.MAX_TEXT_CHARS


def _state(state: GateState, agent_id: str) -> MonitorState:
    """The state file as the monitor writes it (``Monitor.write_state``)."""
    return MonitorState(agent_id=agent_id, pid=os.getpid(), updated_at=NOW, interval_s=15,
                        gate_open=False, gate_since=state.since, reasons=state.reasons,
                        reason_messages=tuple(r.to_json() for r in state.reason_msgs),
                        blocking=tuple(b.check_id for b in state.blockers), watching=(),
                        awaiting_full_check=False, full_check_at=NOW)


def test_status_lang_shows_the_reasons_in_its_own_language(tmp_path: Path) -> None:
    """The monitor ran in Korean: ``status --lang sv`` is Swedish, ``--lang en`` English."""
    env = {**os.environ, "AGENT_KIT_HOME": str(tmp_path)}
    os.environ["AGENT_KIT_HOME"] = str(tmp_path)
    try:
        save_enrollment(Enrollment(center_url="http://127.0.0.1:9", agent_id="ws-lang",
                                   secret="s" * 32))
        state = _state(closed_gate(judged_in("ko"), "ko"), "ws-lang")
        import time

        write_state(MonitorState(**{**state.__dict__, "updated_at": time.time()}))
        stored = read_state()
        assert stored is not None and stored.reason_messages
    finally:
        os.environ.pop("AGENT_KIT_HOME", None)
    out = {}
    for lang in ("sv", "en", "ja"):
        run = subprocess.run([sys.executable, "-m", "agent_kit.face.cli", "status", "--lang",
                              lang], env=env, capture_output=True, text=True, timeout=60)
        assert run.returncode == 1, run.stderr
        out[lang] = run.stdout
    sv = i18n.render(i18n.M_("CPU {load:.0f} % busy on {cores} cores", load=97.0, cores=4),
                     "sv")
    assert sv in out["sv"] and "CPU 97 % busy on 4 cores" not in out["sv"]
    assert "CPU 97 % busy on 4 cores" in out["en"]
    for text in out.values():
        assert not re.search("[\uac00-\ud7a3]", text), text   # no Korean left anywhere
    assert re.search("[\u3040-\u30ff]", out["ja"])


def test_an_older_state_file_without_ids_still_reads() -> None:
    state = MonitorState(agent_id="a", pid=1, updated_at=NOW, interval_s=15, gate_open=False,
                         gate_since=NOW, reasons=("kept as written",), blocking=(), watching=(),
                         awaiting_full_check=False, full_check_at=None)
    assert state.reasons_in("sv") == ("kept as written",)


@pytest.fixture(scope="module")
def center(tmp_path_factory):
    with run_center(tmp_path_factory.mktemp("center-lang")) as running:
        yield running


def test_the_center_renders_a_korean_agents_messages_in_the_readers_language(center) -> None:
    ws = center.enroll(center.create_token(), "home-ko")
    results = judged_in("ko")
    gate = closed_gate(results, "ko")
    content = wire.build_heartbeat(results, gate_open=False, gate_since=NOW,
                                   gate_reasons=gate.reason_msgs, interval_s=15,
                                   measured_at=datetime.now(UTC).timestamp())
    ws.send([wire.identified_heartbeat(content, seq=1)])
    path = f"/api/v1/agents/{ws.agent_id}"

    def cpu_message(**kw: object) -> tuple[str, list[str]]:
        with center.admin() as admin:
            latest = admin.get(path, **kw).raise_for_status().json()["latest"]  # type: ignore
        cpu = next(c for c in latest["checks"] if c["id"] == "system.cpu")
        return cpu["message"], latest["gate"]["reasons"]

    english, reasons_en = cpu_message(headers={"Accept-Language": "en-US,en;q=0.9"})
    assert english == "CPU 97 % busy on 4 cores"
    assert not any(re.search("[\uac00-\ud7a3]", r) for r in reasons_en)
    japanese, reasons_ja = cpu_message(params={"lang": "ja"})
    assert japanese == i18n.render(i18n.M_("CPU {load:.0f} % busy on {cores} cores",
                                           load=97.0, cores=4), "ja")
    assert all(re.search("[\u3040-\u30ff\u4e00-\u9fff]", r) for r in reasons_ja)
    swedish, _ = cpu_message(headers={"Accept-Language": "ja",   # the selector's cookie wins
                                      "Cookie": "agent_center_lang=sv"})
    assert swedish == i18n.render(i18n.M_("CPU {load:.0f} % busy on {cores} cores", load=97.0,
                                          cores=4), "sv") != english
    with center.admin() as admin:
        latest = admin.get(path, headers={"Cookie": "agent_center_lang=sv"}).json()["latest"]
    disk = next(c for c in latest["checks"] if c["id"] == "system.disk")["message"]
    assert "76,6" in disk and "76.6" not in disk   # Swedish decimal comma (Babel)
    # the history too, and the login gate's reasons (what the ACD shows its agent)
    with center.admin() as admin:
        rows = admin.get(path + "/heartbeats", headers={"Accept-Language": "sv-SE"}).json()
        assert next(c for c in rows["heartbeats"][0]["checks"]
                    if c["id"] == "system.cpu")["message"] == swedish
        decision = admin.get(f"/api/v1/gate/{ws.agent_id}", params={"lang": "ko"}).json()
        assert not decision["allowed"] and all(re.search("[\uac00-\ud7a3]", r)
                                               for r in decision["reasons"])
    # the workstation's own ``agent-kit login`` asks in the language it speaks
    from agent_kit.link.clearance import new_nonce
    from agent_kit.link.client import CenterClient

    try:
        i18n.set_language("sv")
        with CenterClient(Enrollment(center_url=center.url, agent_id=ws.agent_id,
                                     secret=ws.secret)) as client:
            answer = client.gate(new_nonce())
    finally:
        i18n.set_language("en")
    assert not answer["allowed"] and any(swedish in r for r in answer["reasons"])


@pytest.mark.parametrize(("lang", "word"), [("ja", "フリート"), ("ko", "전체 현황"),
                                            ("sv", "Översikt"), ("en", "Fleet")])
def test_the_dashboard_pages_come_in_the_readers_language(center, lang: str, word: str) -> None:
    page = httpx.get(center.url + "/", headers={"Cookie": f"agent_center_lang={lang}"},
                     timeout=30)
    assert page.status_code == 200 and f'<html lang="{lang}">' in page.text
    block = re.search(r'<script type="application/json" id="ui-text">(.*?)</script>', page.text)
    assert block is not None
    data = json.loads(block.group(1))
    assert data["lang"] == lang and [c for c, _n in data["languages"]] == list(i18n.SUPPORTED)
    assert word == "Fleet" if lang == "en" else data["text"]["Fleet"] == word
    by_header = httpx.get(center.url + "/", headers={"Accept-Language": f"{lang};q=0.8, xx"},
                          timeout=30)
    assert f'<html lang="{lang}">' in by_header.text


def test_accept_language_picks_the_best_supported_language() -> None:
    from agent_kit.center.viewer_language import accepted_language

    assert accepted_language("fr-FR, sv;q=0.5, ja;q=0.7") == "ja"
    assert accepted_language("ko-KR") == "ko"
    assert accepted_language("fr, de;q=0.9") is None and accepted_language(None) is None
    assert accepted_language("sv;q=0, en;q=0.1") == "en"


def test_every_dashboard_word_is_in_the_catalogs() -> None:
    """Each text of the pages and each ``t("...")`` of the scripts is listed in
    ``center.dashboard_text.UI_TEXT`` (so extracted and translated), or is no word at all
    (numbers, punctuation, the product's and the variable's names)."""
    from html.parser import HTMLParser

    from agent_kit.center.dashboard_text import UI_TEXT, _catalogue_text

    static = ROOT / "agent_kit" / "center" / "static"
    known = set(UI_TEXT) | set(_catalogue_text())

    class Texts(HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.found: list[str] = []
            self.skip = 0

        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            self.skip += tag in ("script", "style", "code")
            self.found += [v for k, v in attrs if k in ("placeholder", "aria-label", "title")
                           and v]

        def handle_endtag(self, tag: str) -> None:
            self.skip -= tag in ("script", "style", "code")

        def handle_data(self, data: str) -> None:
            text = " ".join(data.split())
            if text and not self.skip:
                self.found.append(text)

    missing = []
    for name in ("index.html", "agent.html", "audit.html", "sso.html"):
        parser = Texts()
        parser.feed((static / name).read_text("utf-8"))
        missing += [f"{name}: {t!r}" for t in parser.found
                    if t not in known and re.search("[A-Za-z]{2,}", t) and t != "agent-center"]
    for script in static.glob("*.js"):
        code = script.read_text("utf-8")
        for literal in re.findall(r'\bt\(\s*"((?:[^"\\]|\\.)*)"(?:\s*\+\s*"((?:[^"\\]|\\.)*)")?',
                                  code):
            text = "".join(literal)
            if text not in known:
                missing.append(f"{script.name}: {text!r}")
    assert not missing, f"dashboard words not in center/dashboard_text.py: {missing}"


def test_the_value_column_is_in_the_readers_format() -> None:
    """The terminal's (and the report's) value column: Swedish decimal comma, words for units
    and states, in the reader's language."""
    from agent_kit.face.terminal import format_value

    results = {r.id: r for r in judged_in("en")}
    try:
        i18n.set_language("sv")
        assert format_value(results["system.disk"]) == "76,6 GB"
        assert format_value(results["system.uptime"]) == "0,4 dagar"
    finally:
        i18n.set_language("en")
    assert format_value(results["system.disk"]) == "76.6 GB"
    assert format_value(results["system.uptime"]) == "0.4 days"
