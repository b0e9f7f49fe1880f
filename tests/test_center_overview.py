"""The fleet overview's answer to "who cannot take calls, and why", through the API of a real
``agent-center serve`` on SQLite and on PostgreSQL: the attention order, each row's first
reason in the reader's language, offline workstations as a past fact (not counted as not
ready), "since" saying since what, and an agent's devices."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from agent_kit.core import i18n
from agent_kit.core.results import CheckResult
from tests.center_seed import Center, Workstation, home_results, run_center, sent_heartbeat
from tests.lab.postgres import postgres_cluster

pytestmark = pytest.mark.lab

INTERVAL_S = 60      # online for the whole module (60 s + 120 s grace)
QUIET_S = 1          # offline 11 s after its heartbeat (1 s + the 10 s minimum grace)


@dataclass(frozen=True)
class Fleet:
    center: Center
    by_name: dict[str, Workstation]
    not_ready_since: dict[str, datetime]

    def id(self, name: str) -> str:
        return self.by_name[name].agent_id


def _send(ws: Workstation, results: list[CheckResult], *, interval_s: float = INTERVAL_S,
          gate_since: datetime | None = None, seq: int = 1) -> None:
    at = datetime.now(UTC)
    reasons = [r.msg for r in results if r.blocks and r.msg is not None]
    ws.send([sent_heartbeat(seq, results, at, interval_s=interval_s, reasons=reasons,  # type: ignore[arg-type]
                            gate_since=gate_since or at)])


def _seed(center: Center) -> Fleet:
    token = center.create_token(uses=20)
    site = center.create_token(uses=20, team="lund")
    names = ("new", "retired", "fine", "warned", "gone_ok", "gone_vpn", "cell", "vpn_long")
    in_lund = {"vpn_long", "gone_vpn", "fine", "retired"}
    ws = {name: center.enroll(site if name in in_lund else token, f"{name}-pc", name.title())
          for name in names}
    now = datetime.now(UTC)
    since = {"vpn_long": now - timedelta(minutes=40), "cell": now - timedelta(minutes=5)}
    # offline ones first (their silence starts now); the last to drop out is the most recent
    _send(ws["gone_ok"], home_results(), interval_s=QUIET_S)
    _send(ws["gone_vpn"], home_results(vpn_up=False), interval_s=QUIET_S,
          gate_since=now - timedelta(minutes=3))
    _send(ws["vpn_long"], home_results(vpn_up=False), gate_since=since["vpn_long"])
    _send(ws["cell"], home_results(link=("wwan0", "cellular", None)), gate_since=since["cell"])
    _send(ws["warned"], home_results(link=("wlan0", "wifi", 300), speaker="HDMI out"))
    _send(ws["fine"], home_results())
    _send(ws["retired"], home_results())
    with center.admin() as admin:
        admin.post(f"/api/v1/agents/{ws['retired'].agent_id}/retire").raise_for_status()
        deadline = time.monotonic() + 30
        while {admin.get(f"/api/v1/agents/{ws[n].agent_id}").json()["state"]
               for n in ("gone_ok", "gone_vpn")} != {"offline"}:
            assert time.monotonic() < deadline, "the quiet workstations never went offline"
            time.sleep(0.5)
    return Fleet(center, ws, since)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def fleet(request, tmp_path_factory) -> Iterator[Fleet]:  # type: ignore[no-untyped-def]
    if request.param == "sqlite":
        with run_center(tmp_path_factory.mktemp("overview-sqlite")) as center:
            yield _seed(center)
        return
    with postgres_cluster() as url, run_center(
            tmp_path_factory.mktemp("overview-pg"), extra_args=["--db", url],
            env={"AGENT_CENTER_SECRETS_KEY": "7a" * 32}) as center:
        yield _seed(center)


def _agents(fleet: Fleet, **params: str) -> dict:  # type: ignore[type-arg]
    with fleet.center.admin() as admin:
        response = admin.get("/api/v1/agents", params=params)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def test_attention_order_puts_who_cannot_take_calls_first(fleet: Fleet) -> None:
    rows = _agents(fleet, sort="attention")["agents"]
    order = [fleet.id(n) for n in ("vpn_long", "cell",     # online, not ready: longest first
                                   "gone_vpn", "gone_ok",  # offline: most recent first
                                   "warned", "fine",       # ready: with a warning first
                                   "new", "retired")]
    assert [r["agent_id"] for r in rows] == order
    assert [r["status"] for r in rows] == ["not_ready", "not_ready", "offline", "offline",
                                           "ready", "ready", "never_seen", "retired"]
    # the order holds across pages, and with a filter
    assert [r["agent_id"] for r in _agents(fleet, sort="attention", limit="3",
                                           offset="2")["agents"]] == order[2:5]
    assert [r["agent_id"] for r in _agents(fleet, sort="attention",
                                           ready="false")["agents"]] == order[:2]


def test_each_not_ready_row_says_why_in_the_readers_language(fleet: Fleet) -> None:
    vpn_ids = {fleet.id("vpn_long"), fleet.id("gone_vpn")}
    for lang in ("en", "ja", "sv"):
        rows = {r["agent_id"]: r for r in _agents(fleet, sort="attention", lang=lang)["agents"]}
        for agent_id in vpn_ids:   # the first failing check: the tunnel, before its route
            assert rows[agent_id]["reason"] == {
                "check": "vpn.connected",
                "text": i18n.render(i18n.M_("no VPN tunnel is up"), lang)}
        cell = rows[fleet.id("cell")]["reason"]
        assert cell == {"check": "network.link", "text": i18n.render(
            i18n.M_("mobile data ({interface})", interface="wwan0"), lang)}
        for name in ("fine", "warned", "gone_ok", "new", "retired"):
            assert rows[fleet.id(name)]["reason"] is None, name
    assert i18n.render(i18n.M_("no VPN tunnel is up"), "ja") != "no VPN tunnel is up"


def test_an_offline_workstation_is_a_past_fact_not_counted_as_not_ready(fleet: Fleet) -> None:
    page = _agents(fleet)
    assert page["counts"] == {"online": 4, "offline": 2, "never_seen": 1, "retired": 1,
                              "ready": 2, "not_ready": 2}
    rows = {r["agent_id"]: r for r in page["agents"]}
    gone = rows[fleet.id("gone_vpn")]
    assert (gone["state"], gone["status"], gone["ready"], gone["last_ready"]) == \
        ("offline", "offline", None, False)
    assert gone["failing"] == ["vpn.connected", "vpn.route"]
    gone_ok = rows[fleet.id("gone_ok")]
    assert (gone_ok["ready"], gone_ok["last_ready"]) == (None, True)
    # "since" is since the status: offline since it went quiet, not since it was not ready
    went_quiet = datetime.fromisoformat(gone["last_seen"])
    assert datetime.fromisoformat(gone["since"]) - went_quiet == timedelta(seconds=11)
    # the counts' filters give the counted rows
    assert _agents(fleet, ready="false")["total"] == page["counts"]["not_ready"]
    assert _agents(fleet, state="offline")["total"] == page["counts"]["offline"]
    with fleet.center.admin() as admin:
        exported = admin.get("/api/v1/agents.csv", params={"state": "offline"}).text
    assert "status" in exported.splitlines()[0] and "last_ready" in exported.splitlines()[0]


def test_counts_per_team_count_like_the_fleet(fleet: Fleet) -> None:
    teams = _agents(fleet)["teams"]
    # lund: vpn_long not ready, gone_vpn offline, fine ready (retired not counted); the rest
    # have no team. Equal counts: a named team before the workstations without one.
    assert teams == [
        {"team": "lund", "online": 2, "offline": 1, "never_seen": 0, "ready": 1,
         "not_ready": 1},
        {"team": None, "online": 2, "offline": 1, "never_seen": 1, "ready": 1,
         "not_ready": 1}]
    lund = _agents(fleet, team="lund", sort="attention")["agents"]
    assert [r["agent_id"] for r in lund] == [fleet.id(n) for n in ("vpn_long", "gone_vpn",
                                                                   "fine", "retired")]


def test_since_says_since_when_not_ready(fleet: Fleet) -> None:
    rows = {r["agent_id"]: r for r in _agents(fleet)["agents"]}
    for name, since in fleet.not_ready_since.items():
        row = rows[fleet.id(name)]
        assert row["status"] == "not_ready"
        assert datetime.fromisoformat(row["since"]) == since.replace(microsecond=0)
    fine = rows[fleet.id("fine")]
    assert fine["status"] == "ready" and fine["since"] is not None
    assert rows[fleet.id("new")]["since"] is None


def test_an_agent_names_its_headset_and_link(fleet: Fleet) -> None:
    with fleet.center.admin() as admin:
        warned = admin.get(f"/api/v1/agents/{fleet.id('warned')}", params={"lang": "sv"}).json()
        cell = admin.get(f"/api/v1/agents/{fleet.id('cell')}").json()
        new = admin.get(f"/api/v1/agents/{fleet.id('new')}").json()
    assert warned["devices"]["headset"] == {
        "check": "audio.headset", "status": "warn", "microphone": "Jabra Evolve2 40",
        "speaker": "HDMI out", "kind": None}
    assert warned["devices"]["link"] == {
        "check": "network.link", "status": "warn", "interface": "wlan0", "speed_mbps": 300.0,
        "text": i18n.render(i18n.M_("Wi-Fi ({interface})", interface=i18n.M_(
            "{interface} at {speed} Mbit/s", interface="wlan0", speed=300)), "sv")}
    assert warned["reason"] is None
    headset = cell["devices"]["headset"]
    assert (headset["microphone"], headset["speaker"], headset["kind"]) == \
        ("Jabra Evolve2 40", None, "USB headset")
    assert cell["devices"]["link"]["interface"] == "wwan0"
    assert cell["devices"]["link"]["speed_mbps"] is None
    assert cell["reason"]["check"] == "network.link"
    assert new["devices"] == {"headset": None, "link": None}


def test_a_sort_the_center_does_not_know_is_refused(fleet: Fleet) -> None:
    with fleet.center.admin() as admin:
        response = admin.get("/api/v1/agents", params={"sort": "mood"})
    assert response.status_code == 422 and response.json()["error"] == "validation_error"
