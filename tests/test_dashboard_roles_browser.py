"""Roles in the dashboard, in a real headless Chromium against a real ``agent-center serve``:
a supervisor of team-a signs in with their key and sees only team-a's workstations (another
team's agent page says it does not exist); a viewer sees every team but may change nothing
(the API answers the page's own write 403) nor read the audit log; an admin user reads the
audit log, filters it, and reads it in Japanese. Screenshots: test-artifacts/roles-*.png."""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.center_seed import Center, heartbeat, run_center
from tests.lab.chromium import ARTIFACTS, chromium_browser

pytestmark = pytest.mark.lab

GOOD = {"vpn.connected": ("pass", None), "audio.headset": ("pass", None),
        "network.rtt": ("pass", 20.0)}


@dataclass(frozen=True)
class Lab:
    center: Center
    keys: dict[str, str]
    team_a: tuple[str, ...]
    team_b: tuple[str, ...]


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    data_dir = Path(tempfile.mkdtemp(prefix="roles-center-"))
    try:
        with run_center(data_dir, extra_args=["--udp-port", "0"]) as center:
            keys = {}
            with center.admin() as admin:
                for name, role, teams in (("ada", "admin", None),
                                          ("sue", "supervisor", ["team-a"]),
                                          ("vic", "viewer", None)):
                    made = admin.post("/api/v1/users", json={"name": name, "role": role,
                                                              "teams": teams})
                    made.raise_for_status()
                    keys[name] = made.json()["key"]
            a = center.create_token(uses=2, team="team-a")
            b = center.create_token(uses=1, team="team-b")
            agents = {}
            for token, host in ((a, "a-one"), (a, "a-two"), (b, "b-one")):
                ws = center.enroll(token, host)
                ws.send([heartbeat(1, datetime.now(UTC), GOOD, interval_s=60)])
                agents[host] = ws.agent_id
            yield Lab(center, keys, (agents["a-one"], agents["a-two"]), (agents["b-one"],))
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with chromium_browser() as chromium:
        yield chromium


@pytest.fixture()
def page(browser, lab: Lab):  # type: ignore[no-untyped-def]
    context = browser.new_context(viewport={"width": 1360, "height": 900},
                                  base_url=lab.center.url)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    # expected: the 401 before signing in, 403 of what a role may not, 404 of another team's
    page.on("console", lambda msg: errors.append(msg.text)
            if msg.type == "error" and not re.search(r"status of 40[134]", msg.text) else None)
    yield page
    context.close()
    assert not errors, f"errors in the browser: {errors}"


def _sign_in(page, key: str, path: str = "/") -> None:  # type: ignore[no-untyped-def]
    page.goto(path)
    page.wait_for_selector("#login:not([hidden])")
    page.fill("#login-token", key)
    page.click("#login-form button[type=submit]")
    page.wait_for_selector("#login", state="hidden")


def _shot(page, name: str) -> None:  # type: ignore[no-untyped-def]
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"roles-{name}.png"), full_page=True)


def _rows(page) -> list[str]:  # type: ignore[no-untyped-def]
    page.wait_for_selector("#agents[data-loaded]")
    return page.eval_on_selector_all("#agent-rows tr", "rows => rows.map(r => r.dataset.agentId)")


def _write_from_the_page(page, path: str) -> int:  # type: ignore[no-untyped-def]
    """A write the page itself sends with its session (same origin): the answer's status."""
    return int(page.evaluate("async (path) => (await fetch(path, {method: 'POST', "
                             "credentials: 'same-origin'})).status", path))


def test_a_supervisor_sees_only_their_team(page, lab: Lab) -> None:
    _sign_in(page, lab.keys["sue"])
    assert sorted(_rows(page)) == sorted(lab.team_a)
    assert page.inner_text("#count-online") == "2"
    assert lab.team_b[0] not in page.content()
    _shot(page, "supervisor-fleet")
    page.goto(f"/agents/{lab.team_b[0]}")
    page.wait_for_selector("text=Agent not found")
    _shot(page, "supervisor-other-team")
    page.goto(f"/agents/{lab.team_a[0]}")
    page.wait_for_selector("text=a-one")
    assert _write_from_the_page(page, f"/api/v1/agents/{lab.team_b[0]}/retire") == 404


def test_a_viewer_sees_every_team_and_changes_nothing(page, lab: Lab) -> None:
    _sign_in(page, lab.keys["vic"])
    assert sorted(_rows(page)) == sorted(lab.team_a + lab.team_b)
    _shot(page, "viewer-fleet")
    assert _write_from_the_page(page, f"/api/v1/agents/{lab.team_a[0]}/retire") == 403
    assert _write_from_the_page(page, "/api/v1/tokens") in (403, 422)
    page.goto("/audit")
    page.wait_for_selector("#banner:not([hidden])")
    assert "Only an admin" in page.inner_text("#banner")
    assert page.locator("#event-rows tr").count() == 0
    _shot(page, "viewer-audit")
    with lab.center.admin() as admin:
        state = admin.get(f"/api/v1/agents/{lab.team_a[0]}").json()["state"]
    assert state == "online", "the viewer's write changed nothing"


def test_an_admin_reads_and_filters_the_audit_log_in_their_language(page, lab: Lab) -> None:
    _sign_in(page, lab.keys["ada"], "/audit")
    page.wait_for_selector("#event-rows tr")
    actions = page.eval_on_selector_all("#event-rows td[data-action]",
                                        "cells => cells.map(c => c.dataset.action)")
    assert {"user.create", "token.create", "login"} <= set(actions)
    assert "Signed in" in page.inner_text("#event-rows")
    _shot(page, "admin-audit")
    page.select_option("#f-action", "user.create")
    page.wait_for_function("() => [...document.querySelectorAll('#event-rows td[data-action]')]"
                           ".every(c => c.dataset.action === 'user.create')")
    assert page.locator("#event-rows tr").count() == 3
    assert "action=user.create" in page.url
    assert "action=user.create" in (page.get_attribute("#export-csv", "href") or "")
    page.context.add_cookies([{"name": "agent_center_lang", "value": "ja",
                               "url": lab.center.url}])
    page.reload()
    page.wait_for_selector("#event-rows tr")
    assert page.inner_text("#app h1") == "監査ログ"
    assert "ユーザーの作成" in page.inner_text("#event-rows")
    _shot(page, "admin-audit-ja")
