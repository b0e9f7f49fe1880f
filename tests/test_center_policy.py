"""Policy from the center: versions edited through the admin API and the CLI of a real
``agent-center serve``, a real ``agent-kit monitor`` following them at its next heartbeat without
a restart, teams' overrides reaching only their team, the gate judging each workstation by its
effective policy, and the active version surviving a restart of the center."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from agent_kit.core.policy import load_policy_layers
from agent_kit.link.client import CenterClient, CenterUnavailable
from agent_kit.link.state_folder import Enrollment
from agent_kit.loop.center_policy import cached_center_policy, fetch_center_policy
from agent_kit.loop.monitor import Monitor, MonitorDeps
from agent_kit.loop.spool import Spool
from agent_kit.run.units import UNITS, ProbeContext
from tests.center_seed import Center, heartbeat, run_center

pytestmark = pytest.mark.lab

# The fleet's policy for a system-only workstation (as tests/test_monitor_faults.py's): the
# system checks never fail, no VPN or headset is required, and the gate follows one sample.
LENIENT = """
name = "lab fleet"
version = "1"
[checks."system.cpu"]
warn = "none"
fail = "none"
min_cores = 1
[checks."system.memory"]
warn = 0
fail = 0
[checks."system.disk"]
warn = 0
fail = 0
[checks."system.uptime"]
warn = "none"
[checks."system.power"]
warn = 0
fail = 0
[checks."vpn.connected"]
unknown_blocks = false
[checks."audio.headset"]
unknown_blocks = false
[gate]
window = 3
fail_to_block = 1
pass_to_open = 1
block_after_s = 1
reopen_after_s = 1
"""
# The same with a free-disk level no computer meets: system.disk fails.
STRICT_DISK = LENIENT.replace('version = "1"', 'version = "2"').replace(
    '[checks."system.disk"]\nwarn = 0\nfail = 0',
    '[checks."system.disk"]\nwarn = 1000000000\nfail = 1000000000')


def wait_for(predicate: Callable[[], Any], timeout_s: float, what: str,
             diag: Callable[[], str] = lambda: "") -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = predicate()
        if found:
            return found
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what}\n{diag()}")


def new_version(center: Center, toml: str | None, team: str | None = None,
                comment: str | None = None) -> httpx.Response:
    with center.admin() as admin:
        return admin.post("/api/v1/policy/versions",
                          json={"team": team, "toml": toml, "comment": comment})


def versions(center: Center, **params: Any) -> list[dict[str, Any]]:
    with center.admin() as admin:
        r = admin.get("/api/v1/policy/versions", params=params)
    r.raise_for_status()
    return list(r.json()["versions"])


def fleet_document(center: Center, team: str | None = None) -> dict[str, Any]:
    with center.admin() as admin:
        r = admin.get("/api/v1/policy", params={"team": team} if team else {})
    r.raise_for_status()
    return dict(r.json())


def center_cli(data_dir: Path, *args: str, stdin: str | None = None
               ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", "from agent_kit.center.cli import main; main()",
                           *args, "--data-dir", str(data_dir)], input=stdin,
                          capture_output=True, text=True, timeout=60)


# -- versions: validation, history, rollback, restart ------------------------------------------
def test_versions_are_validated_recorded_rolled_back_and_kept_across_restarts(tmp_path):
    fleet_file = tmp_path / "fleet.toml"
    fleet_file.write_text(LENIENT)
    data = tmp_path / "center"
    token = "admin-" + uuid.uuid4().hex
    with run_center(data, token, ["--policy", str(fleet_file)]) as center:
        seeded = versions(center)
        assert [(v["version_id"], v["author"], v["active"]) for v in seeded] == \
            [(1, "serve --policy", True)]
        first = fleet_document(center)
        assert first["name"] == "lab fleet" and first["toml"] == LENIENT
        assert [layer["version_id"] for layer in first["layers"]] == [1]

        # malformed TOML, an unknown check id, a bad level: 422 with the parser's reason
        for bad, reason in (("[checks.\"system.disk\"\nwarn = 1", "not valid TOML"),
                            ('[checks."network.rttt"]\nwarn = 1', "unknown check id"),
                            ('[checks."network.rtt"]\nwarn = 300\nfail = 100',
                             "must not be below warn"),
                            ("[gate]\nwindow = 2\nfail_to_block = 3", "gate.window")):
            refused = new_version(center, bad)
            assert refused.status_code == 422, refused.text
            assert refused.json()["error"] == "invalid_policy"
            assert reason in refused.json()["detail"], refused.json()
        # not the admin: refused
        anonymous = httpx.post(f"{center.url}/api/v1/policy/versions",
                               json={"toml": STRICT_DISK}, timeout=30)
        assert anonymous.status_code == 401
        assert len(versions(center)) == 1                       # nothing stored

        made = new_version(center, STRICT_DISK, comment="disks must be huge")
        assert made.status_code == 201, made.text
        assert made.json()["version_id"] == 2 and made.json()["author"] == "admin-token"
        strict = fleet_document(center)
        assert strict["tag"] != first["tag"] and strict["version"] == "2"
        with center.admin() as admin:
            diff = admin.get("/api/v1/policy/diff", params={"from": 1, "to": 2}).json()["diff"]
            assert "-fail = 0" in diff and "+fail = 1000000000" in diff
            back = admin.post("/api/v1/policy/rollback",
                              json={"version_id": 1, "comment": "too strict"})
            assert back.status_code == 201, back.text
            assert back.json()["rollback_of"] == 1 and back.json()["toml"] == LENIENT
            assert admin.post("/api/v1/policy/rollback",
                              json={"version_id": 99}).status_code == 404
            one = admin.get("/api/v1/policy/versions/2").json()
            assert one["toml"] == STRICT_DISK and one["active"] is False
        # the same text again: the same tag (workstations have nothing to fetch)
        assert fleet_document(center)["tag"] == first["tag"]
        history = versions(center)
        assert [v["version_id"] for v in history] == [3, 2, 1]
        assert [v["active"] for v in history] == [True, False, False]
        new_version(center, STRICT_DISK).raise_for_status()      # version 4, strict

    # a restart with the same --policy file: it differs from the active version, so it
    # becomes a new one, recorded as from serve
    with run_center(data, token, ["--policy", str(fleet_file)]) as center:
        history = versions(center)
        assert [(v["version_id"], v["author"]) for v in history[:2]] == \
            [(5, "serve --policy"), (4, "admin-token")]
        # every change in the audit log, with who, what and the version it made
        with center.admin() as admin:
            events = admin.get("/api/v1/audit", params={"limit": 100}).json()["events"]
        policy_events = [(e["actor"], e["action"], e["target"], e["detail"]["version_id"])
                         for e in events if e["action"].startswith("policy.")]
        assert sorted(policy_events, key=lambda e: e[3]) == [
            ("serve --policy", "policy.change", "fleet", 1),
            ("admin-token", "policy.change", "fleet", 2),
            ("admin-token", "policy.rollback", "fleet", 3),
            ("admin-token", "policy.change", "fleet", 4),
            ("serve --policy", "policy.change", "fleet", 5)]
        assert not any(e["action"].startswith("policy.") and e["detail"].get("version_id") is
                       None for e in events)      # the refused ones left no event
        assert fleet_document(center)["toml"] == LENIENT
        new_version(center, STRICT_DISK).raise_for_status()      # version 6
    # a restart with it again, and one without --policy: the active version stays
    with run_center(data, token, ["--policy", str(STRICT_FILE(tmp_path))]) as center:
        assert len(versions(center)) == 6
        assert fleet_document(center)["toml"] == STRICT_DISK
    with run_center(data, token) as center:
        assert len(versions(center)) == 6
        assert fleet_document(center)["version"] == "2"


def STRICT_FILE(tmp_path: Path) -> Path:   # noqa: N802 - reads as the constant it writes
    path = tmp_path / "strict.toml"
    path.write_text(STRICT_DISK)
    return path


def test_the_cli_shows_sets_lists_and_rolls_back(tmp_path):
    data = tmp_path / "center"
    with run_center(data) as center:
        pass   # a database with its schema
    policy_file = tmp_path / "p.toml"
    policy_file.write_text(LENIENT)
    shown = center_cli(data, "policy", "show")
    assert shown.returncode == 0 and "shipped default" in shown.stderr
    assert center_cli(data, "policy", "set", str(policy_file), "--comment", "lab").returncode == 0
    bad = center_cli(data, "policy", "set", "-", stdin='[checks."no.such"]\nwarn = 1\n')
    assert bad.returncode == 2 and "unknown check id 'no.such'" in bad.stderr
    team = center_cli(data, "policy", "set", "-", "--team", "tokyo-1",
                      stdin='[checks."system.disk"]\nwarn = 10\nfail = 5\n')
    assert team.returncode == 0, team.stderr
    effective = json.loads(center_cli(data, "policy", "show", "--effective", "--team",
                                      "tokyo-1", "--json").stdout)
    assert [layer["scope"] for layer in effective["layers"]] == ["fleet", "team"]
    assert center_cli(data, "policy", "set", str(policy_file), "--team", "Not A Team"
                      ).returncode == 2
    history = json.loads(center_cli(data, "policy", "history", "--all", "--json").stdout)
    assert [(h["version_id"], h["team"]) for h in history] == [(2, "tokyo-1"), (1, None)]
    assert history[1]["author"].startswith("cli:")
    rolled = center_cli(data, "policy", "rollback", "1")
    assert rolled.returncode == 0 and "version 3 active" in rolled.stdout
    assert center_cli(data, "policy", "rollback", "42").returncode == 2
    assert center_cli(data, "policy", "unset", "--team", "tokyo-1").returncode == 0
    assert "override removed" in center_cli(data, "policy", "show", "--team", "tokyo-1").stdout
    assert center_cli(data, "policy", "show").stdout.strip() == LENIENT.strip()


# -- a real monitor follows the change at its next heartbeat -------------------------------------
def agent_cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "agent_kit.face.cli", *args],
                          env={**os.environ, "AGENT_KIT_HOME": str(home)},
                          capture_output=True, text=True, timeout=60)


def latest_heartbeat(center: Center, agent_id: str) -> dict[str, Any] | None:
    with center.admin() as admin:
        r = admin.get(f"/api/v1/agents/{agent_id}")
    r.raise_for_status()
    latest: dict[str, Any] | None = r.json()["latest"]
    return latest


def check_of(beat: dict[str, Any], check_id: str) -> dict[str, Any]:
    return next(c for c in beat["checks"] if c["id"] == check_id)


def gate_allows(center: Center, agent_id: str) -> bool:
    with center.admin() as admin:
        return bool(admin.get(f"/api/v1/gate/{agent_id}").json()["allowed"])


def test_a_running_monitor_applies_a_new_policy_at_its_next_heartbeat_and_a_rollback(tmp_path):
    fleet_file = tmp_path / "fleet.toml"
    fleet_file.write_text(LENIENT)
    home = tmp_path / "agent"
    with run_center(tmp_path / "center", extra_args=["--policy", str(fleet_file)]) as center:
        enrolled = agent_cli(home, "enroll", "--center", center.url, "--token",
                             center.create_token(uses=1))
        assert enrolled.returncode == 0, enrolled.stderr
        agent_id = json.loads((home / "enrollment.json").read_text())["agent_id"]
        lenient_tag = fleet_document(center)["tag"]
        log = (home / "monitor.log").open("a")
        monitor = subprocess.Popen([sys.executable, "-m", "agent_kit.face.cli", "monitor",
                                    "--interval", "1", "--only", "system"],
                                   env={**os.environ, "AGENT_KIT_HOME": str(home)},
                                   stdout=log, stderr=subprocess.STDOUT)
        log.close()

        def diag() -> str:
            return (home / "monitor.log").read_text(errors="replace")[-3000:]

        def beat_with(tag: str, disk: str, gate_open: bool) -> dict[str, Any] | None:
            beat = latest_heartbeat(center, agent_id)
            if beat is None or (beat.get("policy") or {}).get("tag") != tag:
                return None
            ok = check_of(beat, "system.disk")["status"] == disk \
                and beat["gate"]["open"] is gate_open
            return beat if ok else None

        try:
            first = wait_for(lambda: beat_with(lenient_tag, "pass", True), 60,
                             "a heartbeat judged by the fleet's policy", diag)
            assert first["policy"] == {"name": "lab fleet", "version": "1", "tag": lenient_tag}
            assert gate_allows(center, agent_id)

            new_version(center, STRICT_DISK, comment="huge disks").raise_for_status()
            strict_tag = fleet_document(center)["tag"]
            # the next acknowledgement names the new tag; the monitor fetches and applies it:
            # system.disk, passing before, fails the new level and its gate closes
            strict = wait_for(lambda: beat_with(strict_tag, "fail", False), 60,
                              "a heartbeat judged by the new policy", diag)
            assert strict["policy"]["version"] == "2"
            with center.admin() as admin:
                assert "system.disk" in admin.get(f"/api/v1/agents/{agent_id}").json()["failing"]
            assert not gate_allows(center, agent_id)
            assert monitor.poll() is None                         # no restart
            cached = json.loads((home / "center_policy.json").read_text())
            assert cached["tag"] == strict_tag

            with center.admin() as admin:
                admin.post("/api/v1/policy/rollback", json={"version_id": 1}).raise_for_status()
            wait_for(lambda: beat_with(lenient_tag, "pass", True), 60,
                     "a heartbeat judged by the rolled-back policy", diag)
            assert gate_allows(center, agent_id)
            assert monitor.poll() is None
        finally:
            if monitor.poll() is None:
                monitor.send_signal(signal.SIGTERM)
            assert monitor.wait(timeout=30) == 0, diag()


def test_an_outage_keeps_the_running_policy_and_its_cache(tmp_path):
    """The monitor's own code with a real client: a new tag it cannot fetch (the center went
    away) leaves the policy it runs and the cache in place, and is asked for again later."""
    fleet_file = tmp_path / "fleet.toml"
    fleet_file.write_text(LENIENT)
    cache = tmp_path / "center_policy.json"
    mono = [1000.0]
    fetches: list[float] = []
    with run_center(tmp_path / "center", extra_args=["--policy", str(fleet_file)]) as center:
        ws = center.enroll(center.create_token(), "ws-outage")
        client = CenterClient(Enrollment(center.url, ws.agent_id, ws.secret))
        running = fetch_center_policy(client, cache)
        system = tuple(u for u in UNITS if u.group == "system")
        monitor = Monitor(MonitorDeps(
            units=system, policy=running.policy, policy_tag=running.tag,
            enrollment=client.enrollment, context_factory=lambda p: ProbeContext(policy=p),
            client=client, spool=Spool(tmp_path / "spool.db", ws.agent_id),
            notify=lambda *_: None, monotonic=lambda: mono[0],
            state_file=tmp_path / "gate.json",
            fetch_policy=lambda: (fetches.append(mono[0]), fetch_center_policy(client, cache))[1]),
            interval_s=1)
        monitor.cycle()
        assert client.center_policy_tag == running.tag and monitor.policy_tag == running.tag
        new_version(center, STRICT_DISK).raise_for_status()
        # any acknowledgement names the tag (a heartbeat after the monitor's own)
        client.post_heartbeats([heartbeat(10_000, datetime.now(UTC),
                                          {"system.cpu": ("pass", 5.0)})])
        assert client.center_policy_tag != running.tag
    # the center is gone
    before = cache.read_text()
    assert monitor.follow_center_policy() is False
    assert monitor.policy_tag == running.tag and monitor.policy.version == "1"
    assert cache.read_text() == before
    assert cached_center_policy(cache).tag == running.tag
    assert fetches == [1000.0]
    mono[0] += 10           # within the retry delay: not even tried
    assert monitor.follow_center_policy() is False and fetches == [1000.0]
    mono[0] += 60           # after it: tried again (and still no center)
    assert monitor.follow_center_policy() is False and fetches == [1000.0, 1070.0]
    assert monitor.policy_tag == running.tag
    with pytest.raises(CenterUnavailable):
        client.policy_document()
    client.close()
    monitor.deps.spool.close()


# -- teams' overrides -----------------------------------------------------------------------------
def test_a_team_override_reaches_only_that_team_and_the_gate_judges_by_it(tmp_path):
    fleet_file = tmp_path / "fleet.toml"
    fleet_file.write_text(LENIENT)
    with run_center(tmp_path / "center", extra_args=["--policy", str(fleet_file)]) as center:
        with center.admin() as admin:
            r = admin.post("/api/v1/tokens", json={"uses": 5, "ttl_s": 3600, "team": "tokyo-1"})
            r.raise_for_status()
            tokyo_token = r.json()["token"]
        tokyo = center.enroll(tokyo_token, "tokyo-ws")
        other = center.enroll(center.create_token(), "osaka-ws")
        clients = {name: CenterClient(Enrollment(center.url, ws.agent_id, ws.secret))
                   for name, ws in (("tokyo", tokyo), ("other", other))}
        seqs = {"tokyo": 0, "other": 0}

        def send(name: str, disk_gb: float) -> str | None:
            seqs[name] += 1
            beat = heartbeat(seqs[name], datetime.now(UTC), {
                "system.cpu": ("pass", 5.0), "system.memory": ("pass", 4000.0),
                "system.disk": ("pass", disk_gb), "system.power": ("pass", None),
                "system.uptime": ("pass", 0.5)}, interval_s=60)
            clients[name].post_heartbeats([beat])
            return clients[name].center_policy_tag

        fleet_tag = fleet_document(center)["tag"]
        assert send("tokyo", 50.0) == fleet_tag and send("other", 50.0) == fleet_tag
        assert gate_allows(center, tokyo.agent_id) and gate_allows(center, other.agent_id)

        override = '[checks."system.disk"]\nwarn = 200\nfail = 100\n'
        made = new_version(center, override, team="tokyo-1", comment="tokyo keeps recordings")
        assert made.status_code == 201, made.text
        tokyo_tag = send("tokyo", 50.0)
        assert tokyo_tag != fleet_tag
        assert send("other", 50.0) == fleet_tag              # not the other team's
        document = clients["tokyo"].policy_document()
        tokyo_policy = load_policy_layers(document.layers)
        assert document.tag == tokyo_tag and len(document.layers) == 2
        assert tokyo_policy.check("system.disk").fail == 100
        assert tokyo_policy.check("system.cpu").fail is None       # the fleet's, kept
        assert load_policy_layers(clients["other"].policy_document().layers
                                  ).check("system.disk").fail == 0
        # 50 GB reported as passing fails tokyo's policy: the center's gate denies it alone
        with center.admin() as admin:
            denied = admin.get(f"/api/v1/gate/{tokyo.agent_id}").json()
        assert denied["allowed"] is False
        assert any("system.disk" in reason for reason in denied["reasons"]), denied
        assert gate_allows(center, other.agent_id)

        # a fleet change that would break tokyo's merge is refused, naming the team
        clash = LENIENT.replace('[checks."system.disk"]\nwarn = 0\nfail = 0',
                                '[checks."system.disk"]\nwarn = 50\nfail = 10')
        clash = clash + '[checks."network.rtt"]\nwarn = 400\nfail = 500\n'
        tokyo_rtt = new_version(center, override + '[checks."network.rtt"]\nfail = 350\n',
                                team="tokyo-1")
        assert tokyo_rtt.status_code == 201, tokyo_rtt.text
        refused = new_version(center, clash)
        assert refused.status_code == 422 and "team tokyo-1" in refused.json()["detail"]

        # moved to no team: the fleet's policy from the next heartbeat on
        with center.admin() as admin:
            admin.patch(f"/api/v1/agents/{tokyo.agent_id}", json={"team": None}
                        ).raise_for_status()
        assert send("tokyo", 50.0) == fleet_tag
        assert gate_allows(center, tokyo.agent_id)
        # the override removed: tokyo's history says so
        assert new_version(center, None, team="tokyo-1").status_code == 201
        listed = versions(center, team="tokyo-1")
        assert [v["removed"] for v in listed] == [True, False, False]
        assert fleet_document(center, "tokyo-1")["layers"][-1]["scope"] == "fleet"
        for client in clients.values():
            client.close()


# -- storage on both databases ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def pg_url():
    from tests.lab.postgres import postgres_cluster

    with postgres_cluster() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request, tmp_path):
    from agent_kit.center.database import Database
    from agent_kit.center.store import Store

    url = f"sqlite:///{tmp_path / 'center.db'}" if request.param == "sqlite" \
        else request.getfixturevalue("pg_url")
    database = Database(url)
    Store(database).setup()
    with database.transaction(write=True) as tx:
        tx.execute("DELETE FROM policy_versions")
        tx.execute("DELETE FROM agents")
        tx.execute("INSERT INTO agents (agent_id, hostname, nonce, enrolled_at, team) "
                   "VALUES ('ws-t', 'ws-t', '00', 1.0, 'tokyo-1')")
    yield database
    database.close()


def test_versions_on_sqlite_and_postgresql_concurrent_changes_and_the_book(db, tmp_path):
    import threading

    from agent_kit.center import policy_versions as pv
    from agent_kit.center.store import Store

    seed = tmp_path / "seed.toml"
    seed.write_text(LENIENT)
    first = pv.seed_from_serve(db, str(seed), now=1.0)
    assert first is not None and first.author == "serve --policy" and first.team is None
    assert pv.seed_from_serve(db, str(seed), now=2.0) is None        # same text: nothing
    # eight changes at once: each its own version, none lost
    errors: list[BaseException] = []

    def change(i: int) -> None:
        try:
            pv.add_version(db, None, LENIENT.replace('version = "1"', f'version = "c{i}"'),
                           author="admin", comment=f"change {i}", now=10.0 + i)
        except BaseException as exc:   # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=change, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    history = pv.list_versions(db)
    assert len({v.version_id for v in history}) == 9
    assert sorted(v.comment for v in history if v.comment and v.comment.startswith("change")) \
        == [f"change {i}" for i in range(8)]
    with pytest.raises(pv.PolicyRefused, match="not valid TOML"):
        pv.add_version(db, None, "[[[", author="admin", comment=None, now=30.0)
    assert len(pv.list_versions(db)) == 9

    book = pv.PolicyBook(db, Store(db).agent_team)
    fleet = book.for_agent("ws-unknown")
    override = pv.add_version(db, "tokyo-1", '[checks."system.disk"]\nwarn = 20\nfail = 10\n',
                              author="admin", comment=None, now=40.0)
    assert override is not None
    book.changed()
    tokyo = book.for_agent("ws-t")
    assert tokyo.tag != fleet.tag and tokyo.policy.check("system.disk").fail == 10
    assert book.cached_for_agent("ws-t") == tokyo
    back = pv.roll_back(db, first.version_id, author="admin", comment=None, now=50.0)
    assert back.rollback_of == first.version_id and back.toml == LENIENT
    book.changed()
    assert book.for_agent("ws-unknown").policy.version == "1"
    assert pv.effective_for(db, None).tag == pv.effective_tag(
        (pv.PolicyLayer("fleet", None, back.version_id, LENIENT),))


def test_a_stored_version_this_center_cannot_read_falls_back_to_the_newest_readable(tmp_path):
    """A row a newer agent-center wrote (a check id this one does not know): served are the
    newest versions this center's gate can judge by, not a 500 on every heartbeat."""
    from agent_kit.center import policy_versions as pv
    from agent_kit.center.database import Database
    from agent_kit.center.store import Store

    database = Database(f"sqlite:///{tmp_path / 'center.db'}")
    Store(database).setup()
    readable = pv.add_version(database, None, LENIENT, author="admin", comment=None, now=1.0)
    assert readable is not None
    newer = '[checks."network.future_check"]\nwarn = 1\n'
    with database.transaction(write=True) as tx:
        tx.execute("INSERT INTO policy_versions (team, toml, tag, author, created_at) "
                   "VALUES (NULL, ?, ?, 'a newer center', 2.0)", (newer, pv.text_tag(newer)))
    effective = pv.effective_for(database, None)
    assert [layer.version_id for layer in effective.layers] == [readable.version_id]
    assert effective.policy.name == "lab fleet"
    database.close()
