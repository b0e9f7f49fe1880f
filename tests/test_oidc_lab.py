"""Single sign-on against a real OpenID provider (npm's ``oidc-provider`` under node,
tests/lab/oidc.py) and a real ``agent-center serve``: the authorization code flow with PKCE,
over HTTP with httpx (a tampered state, a forged or replayed code, a person in no mapped
group) and in a real headless Chromium (the sign-in page's "Sign in with SSO", the
provider's form, the dashboard of the mapped role). Screenshots: test-artifacts/sso-*.png."""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import httpx
import pytest

from tests.center_seed import Center, free_port, heartbeat, run_center
from tests.lab.oidc import LabUnavailable, OidcProvider, lab_unavailable, run_provider
from tests.lab.chromium import ARTIFACTS, chromium_browser

pytestmark = pytest.mark.lab

GOOD = {"vpn.connected": ("pass", None), "audio.headset": ("pass", None),
        "network.rtt": ("pass", 20.0)}
ACCOUNTS = {
    "sue": {"name": "Sue Lead", "email": "sue@example.com", "groups": ["cc-north-leads"]},
    "vic": {"name": "Vic Watch", "email": "vic@example.com", "groups": ["cc-observers", "x"]},
    "nora": {"name": "Nora Else", "email": "nora@example.com", "groups": ["marketing"]},
}
GROUPS = ["cc-north-leads=supervisor:team-a", "cc-observers=viewer", "it-admins=admin"]


@dataclass(frozen=True)
class Lab:
    center: Center
    provider: OidcProvider
    team_a: tuple[str, ...]
    team_b: tuple[str, ...]


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    port = free_port()
    redirect = f"http://127.0.0.1:{port}/auth/oidc/callback"
    data_dir = Path(tempfile.mkdtemp(prefix="sso-center-"))
    try:
        try:
            provider_cm = run_provider(redirect, ACCOUNTS)
            provider = provider_cm.__enter__()
        except LabUnavailable as exc:
            lab_unavailable(str(exc))
        try:
            args = ["--udp-port", "0", "--oidc-issuer", provider.issuer,
                    "--oidc-client-id", provider.client_id, "--oidc-redirect-url", redirect,
                    "--oidc-scopes", "openid profile email groups"]
            for rule in GROUPS:
                args += ["--oidc-group", rule]
            with run_center(data_dir, extra_args=args, port=port, env={
                    "AGENT_CENTER_OIDC_CLIENT_SECRET": provider.client_secret}) as center:
                a = center.create_token(uses=2, team="team-a")
                b = center.create_token(uses=1, team="team-b")
                agents = {}
                for token, host in ((a, "a-one"), (a, "a-two"), (b, "b-one")):
                    ws = center.enroll(token, host)
                    ws.send([heartbeat(1, datetime.now(UTC), GOOD, interval_s=60)])
                    agents[host] = ws.agent_id
                yield Lab(center, provider, (agents["a-one"], agents["a-two"]),
                          (agents["b-one"],))
                log = (data_dir / "center.log").read_text(errors="replace")
                assert provider.client_secret not in log, "the client secret was logged"
        finally:
            provider_cm.__exit__(None, None, None)
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


# -- over HTTP --------------------------------------------------------------------------------
def _to_callback(client: httpx.Client, login: str) -> str:
    """Start at the center, sign in at the provider as ``login``: the callback URL the
    provider sends the browser to (not yet visited)."""
    started = client.get("/auth/oidc/login")
    assert started.status_code == 303, started.text
    url = started.headers["location"]
    assert "code_challenge_method=S256" in url and "nonce=" in url and "state=" in url
    form = client.get(url, follow_redirects=True)
    assert form.status_code == 200 and 'id="login"' in form.text, form.text
    action = re.search(r'action="([^"]+)"', form.text)
    assert action is not None
    answer = client.post(str(form.url.join(action.group(1))), data={"login": login})
    for _ in range(10):
        assert answer.status_code in (302, 303), answer.text
        location = str(answer.url.join(answer.headers["location"]))
        if "/auth/oidc/callback" in location:
            return location
        answer = client.get(location)
    raise AssertionError("the provider never sent the browser back")


def _with_query(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    return urlunsplit(parts._replace(query=urlencode({**query, **changes})))


def _client(lab: Lab) -> httpx.Client:
    return httpx.Client(base_url=lab.center.url, timeout=30.0)


def _audit(lab: Lab, action: str) -> list[dict[str, object]]:
    with lab.center.admin() as admin:
        answer = admin.get("/api/v1/audit", params={"action": action, "limit": 200})
    answer.raise_for_status()
    return list(answer.json()["events"])


def test_a_supervisor_group_signs_in_as_supervisor_of_their_team(lab: Lab) -> None:
    with _client(lab) as client:
        callback = _to_callback(client, "sue")
        done = client.get(callback)
        assert done.status_code == 303 and done.headers["location"] == "/"
        assert "agent_center_session" in client.cookies
        me = client.get("/api/v1/session").json()
        assert me == {"subject": "oidc:sue", "role": "supervisor", "teams": ["team-a"]}
        seen = {a["agent_id"] for a in client.get("/api/v1/agents").json()["agents"]}
        assert seen == set(lab.team_a)
    logins = [e for e in _audit(lab, "login") if e["actor"] == "oidc:sue"]
    assert logins and logins[0]["detail"]["method"] == "openid connect"
    assert logins[0]["detail"]["teams"] == ["team-a"]


def test_a_wrong_state_is_refused_400_and_audited(lab: Lab) -> None:
    with _client(lab) as client:
        callback = _to_callback(client, "sue")
        forged = client.get(_with_query(callback, state="forged-" + "x" * 20))
        assert forged.status_code == 400 and forged.json()["error"] == "bad_state"
        assert "agent_center_session" not in client.cookies
    with _client(lab) as other:   # the right state, but not this browser's login cookie
        assert other.get(callback).status_code == 400
    assert any(e["detail"].get("reason") == "bad_state" for e in _audit(lab, "login_failed"))


def test_a_replayed_or_forged_code_is_refused(lab: Lab) -> None:
    with _client(lab) as client:
        callback = _to_callback(client, "sue")
        login_cookie = client.cookies["agent_center_oidc"]
        forged = client.get(_with_query(callback, code="not-a-code-" + "y" * 30))
        assert forged.status_code == 401 and forged.json()["error"] == "oidc_refused"
    with _client(lab) as client:
        callback = _to_callback(client, "sue")
        login_cookie = client.cookies["agent_center_oidc"]
        assert client.get(callback).status_code == 303
    with _client(lab) as replay:   # the same answer again, with the same login cookie
        replay.cookies.set("agent_center_oidc", login_cookie, domain="127.0.0.1",
                           path="/auth/oidc")
        again = replay.get(callback)
        assert again.status_code == 401 and again.json()["error"] == "oidc_refused"
        assert "agent_center_session" not in replay.cookies


def test_a_person_in_no_mapped_group_is_refused_403_and_audited(lab: Lab) -> None:
    with _client(lab) as client:
        refused = client.get(_to_callback(client, "nora"))
        assert refused.status_code == 403 and refused.json()["error"] == "no_role"
        assert client.get("/api/v1/session").status_code == 401
    events = [e for e in _audit(lab, "login_failed") if e["actor"] == "oidc:nora"]
    assert events and events[0]["detail"] == {"method": "openid connect", "reason": "no_role"}


def test_the_admin_token_still_signs_in(lab: Lab) -> None:
    with _client(lab) as client:
        assert client.post("/api/v1/session",
                           json={"token": lab.center.admin_token}).status_code == 204
        assert client.get("/api/v1/session").json()["role"] == "admin"


# -- in a browser -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def browser(lab: Lab) -> Iterator[object]:
    with chromium_browser() as chromium:
        yield chromium


@pytest.fixture()
def page(browser, lab: Lab):  # type: ignore[no-untyped-def]
    context = browser.new_context(viewport={"width": 1360, "height": 900},
                                  base_url=lab.center.url)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    # expected: the 401 before signing in, the 403s of what a role or a refusal is; the lab
    # provider has no favicon (its 404 is logged by the browser as a console error too)
    page.on("console", lambda msg: errors.append(msg.text)
            if msg.type == "error" and not re.search(r"status of 40[13]", msg.text)
            and not page.url.startswith(lab.provider.issuer) else None)
    page.on("response", lambda r: errors.append(f"{r.status} {r.url}")
            if r.status == 404 and not r.url.startswith(lab.provider.issuer + "/favicon")
            else None)
    yield page
    context.close()
    assert not errors, f"errors in the browser: {errors}"


def _shot(page, name: str) -> None:  # type: ignore[no-untyped-def]
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"sso-{name}.png"), full_page=True)


def _sso(page, login: str, lab: Lab, shoot: str | None = None) -> None:  # type: ignore[no-untyped-def]
    page.goto("/")
    page.wait_for_selector("#sso:not([hidden]) #sso-link")
    if shoot:
        _shot(page, shoot)
    page.click("#sso-link")
    page.wait_for_selector("#login")   # the provider's form
    assert page.url.startswith(lab.provider.issuer)
    page.fill("#login", login)
    page.click("#submit")
    page.wait_for_url(re.compile("^" + re.escape(lab.center.url)))


def _rows(page) -> list[str]:  # type: ignore[no-untyped-def]
    page.wait_for_selector("#agents[data-loaded]")
    return page.eval_on_selector_all("#agent-rows tr", "rows => rows.map(r => r.dataset.agentId)")


def test_browser_a_supervisor_signs_in_with_sso_and_sees_only_their_team(page, lab: Lab) -> None:
    _sso(page, "sue", lab, shoot="sign-in")
    page.wait_for_selector("#login", state="hidden")
    assert sorted(_rows(page)) == sorted(lab.team_a)
    assert lab.team_b[0] not in page.content()
    _shot(page, "supervisor-fleet")


def test_browser_a_viewer_may_not_retire(page, lab: Lab) -> None:
    _sso(page, "vic", lab)
    assert sorted(_rows(page)) == sorted(lab.team_a + lab.team_b)
    status = page.evaluate("async (path) => (await fetch(path, {method: 'POST', "
                           "credentials: 'same-origin'})).status",
                           f"/api/v1/agents/{lab.team_a[0]}/retire")
    assert status == 403
    _shot(page, "viewer-fleet")


def test_browser_a_person_in_no_group_reads_why_in_their_language(page, lab: Lab) -> None:
    page.context.add_cookies([{"name": "agent_center_lang", "value": "ja",
                               "url": lab.center.url}])
    _sso(page, "nora", lab)
    reason = page.wait_for_selector("#refused-reason[data-error=no_role]")
    assert "グループ" in reason.inner_text()          # translated on the page
    assert "サインインの拒否" in page.inner_text("h1")
    _shot(page, "no-group-ja")
    page.click("text=サインインに戻る")
    page.wait_for_selector("#sso:not([hidden])")
    assert page.context.request.get(f"{lab.center.url}/api/v1/session").status == 401
