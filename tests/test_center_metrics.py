"""``/metrics`` of one center process (agent_kit/center/metrics.py) on a real SQLite database and
intake writer: the intake counters follow what was stored and resent, the fleet gauges are read
from the database at each scrape, the exposition parses as Prometheus text and as OpenMetrics,
and a process that imported prometheus_client before its metrics folder was named refuses to
start rather than silently report only itself. (Several workers: tests/test_center_workers.py.)
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime

import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families as openmetrics
from prometheus_client.parser import text_string_to_metric_families

from agent_kit.center.metrics import CenterMetrics
from agent_kit.center.models import Heartbeat
from agent_kit.center.runtime import build_runtime
from agent_kit.center.settings import MULTIPROC_ENV, CenterSettings
from tests.center_seed import heartbeat

GOOD = {"vpn.connected": ("pass", None), "audio.headset": ("pass", None)}
BAD = {**GOOD, "network.jitter": ("fail", 45.0)}


def samples(text: str, parse=text_string_to_metric_families) -> dict[tuple[str, tuple], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in parse(text) for s in family.samples}


@pytest.fixture
def rt(tmp_path, monkeypatch):
    monkeypatch.setenv("AGENT_CENTER_ADMIN_TOKEN", "adm-test-" + "0" * 32)
    runtime = build_runtime(CenterSettings(db_url=f"sqlite:///{tmp_path / 'center.db'}",
                                           data_dir=str(tmp_path)))
    runtime.intake.start()
    yield runtime
    runtime.close()


def enroll(rt, hostname: str) -> str:
    token, _, _ = rt.store.create_token(1, 3600, None, rt.now)
    agent_id, _ = rt.store.enroll(token, hostname, None, rt.now)
    return agent_id


def store(rt, agent_id: str, *bodies: dict) -> list:
    batch = [Heartbeat.model_validate_json(json.dumps(b)) for b in bodies]  # as from the wire
    return asyncio.run(rt.intake.store(agent_id, batch, rt.now))


def test_intake_counters_and_fleet_gauges(rt):
    good, bad = enroll(rt, "good"), enroll(rt, "bad")
    enroll(rt, "never")
    now = datetime.now(UTC)
    first = heartbeat(1, now, GOOD, interval_s=60)
    store(rt, good, first, heartbeat(2, now, GOOD, interval_s=60))
    store(rt, good, first)                                    # a resend: a duplicate
    store(rt, bad, heartbeat(1, now, BAD, interval_s=60))

    body, content_type = rt.metrics.render(None)
    assert content_type == "text/plain; version=0.0.4; charset=utf-8"
    got = samples(body.decode())
    assert got[("agent_center_intake_heartbeats_total", (("status", "stored"),))] == 3
    assert got[("agent_center_intake_heartbeats_total", (("status", "duplicate"),))] == 1
    assert got[("agent_center_intake_commits_total", ())] >= 1
    assert got[("agent_center_heartbeats_stored_total", ())] == 3
    assert got[("agent_center_agents", (("state", "online"),))] == 2
    assert got[("agent_center_agents", (("state", "never_seen"),))] == 1
    assert got[("agent_center_agents_ready", (("ready", "true"),))] == 1
    assert got[("agent_center_agents_ready", (("ready", "false"),))] == 1
    assert got[("agent_center_failing_checks", (("check", "network.jitter"),))] == 1

    rt.store.retire(bad, rt.now)                              # read again at the next scrape
    again = samples(rt.metrics.render(None)[0].decode())
    assert again[("agent_center_agents", (("state", "retired"),))] == 1
    assert ("agent_center_failing_checks", (("check", "network.jitter"),)) not in again


def test_openmetrics_when_the_scraper_asks_for_it(rt):
    body, content_type = rt.metrics.render(
        "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5")
    assert content_type.startswith("application/openmetrics-text; version=1.0.0")
    assert body.endswith(b"# EOF\n")
    got = samples(body.decode(), openmetrics)
    assert got[("agent_center_intake_heartbeats_total", (("status", "stored"),))] == 0
    assert got[("agent_center_heartbeats_stored_total", ())] == 0


@pytest.mark.parametrize("accept", ["text/plain; version=abc",
                                    "application/openmetrics-text; version=x.y", ";;,", ""])
def test_an_accept_header_it_cannot_read_gets_the_plain_text(rt, accept):
    body, content_type = rt.metrics.render(accept)
    assert content_type == "text/plain; version=0.0.4; charset=utf-8"
    assert ("agent_center_heartbeats_stored_total", ()) in samples(body.decode())


def test_a_metrics_folder_named_after_the_import_is_refused(rt, tmp_path, monkeypatch):
    # This test process imported prometheus_client with no folder named: its counters are
    # in memory, and naming one now cannot change that.
    monkeypatch.setenv(MULTIPROC_ENV, str(tmp_path))
    with pytest.raises(RuntimeError, match="set after prometheus_client was imported"):
        CenterMetrics(rt.store, rt.settings.now)
