"""Hostile: files and secrets at rest, on the center and on the workstation.

The attacks that worked (issue 15): the center's database was world-readable (0644, with its
``-wal``) in an existing data dir and held the center key and the Ed25519 signing key in plain,
so a local user derived a workstation's secret from it (point 3); a read-only state folder
crashed the monitor with a traceback (11); the enrollment token sat in the process list
(``agent-kit enroll --token``, 12).

Real parts: ``agent-center serve`` as a subprocess (SQLite, and PostgreSQL from tests/lab), the
real ``agent-kit`` commands, another local user (``setpriv`` to uid 65534), mount namespaces
(``unshare -m``) for a read-only or full state folder.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import stat
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from agent_kit.center.clearance import SECRET_NAME, ClearanceSigner, new_private_pem
from agent_kit.center.credentials import derive_secret
from agent_kit.center.database import Database
from agent_kit.center.store import Store
from tests.center_seed import Workstation, free_port, heartbeat
from tests.lab.netns import LabError
from tests.lab.postgres import postgres_cluster
from tests.test_monitor_faults import LENIENT, wait_for

pytestmark = pytest.mark.lab

GOOD = {"vpn.connected": ("pass", None), "audio.headset": ("pass", None),
        "network.jitter": ("pass", 4.0)}
NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--"]


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def with_umask(umask: int, cmd: Sequence[str]) -> list[str]:
    """``cmd`` started under ``umask`` (the center and the agent must not depend on it)."""
    return ["sh", "-c", f'umask {umask:03o} && exec "$@"', "sh", *cmd]


CENTER_CMD = [sys.executable, "-c", "from agent_kit.center.cli import main; main()"]
AGENT_CMD = [sys.executable, "-m", "agent_kit.face.cli"]


@dataclass
class Served:
    url: str
    admin_token: str
    data_dir: Path
    log: Path
    process: subprocess.Popen[bytes]

    def admin(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30.0,
                            headers={"Authorization": f"Bearer {self.admin_token}"})

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


def serve_args(data_dir: Path, port: int, extra: Sequence[str]) -> list[str]:
    return [*CENTER_CMD, "serve", "--data-dir", str(data_dir), "--host", "127.0.0.1", "--port",
            str(port), "--udp-port", "0", *extra]


@contextlib.contextmanager
def served(data_dir: Path, extra: Sequence[str] = (), env: dict[str, str] | None = None,
           umask: int = 0o000, admin_token: str | None = None) -> Iterator[Served]:
    """``agent-center serve`` under ``umask`` (000 by default: the worst one)."""
    port = free_port()
    token = admin_token or "admin-" + uuid.uuid4().hex
    log = data_dir.parent / f"{data_dir.name}-{port}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            with_umask(umask, serve_args(data_dir, port, extra)),
            env={**os.environ, "AGENT_CENTER_ADMIN_TOKEN": token, **(env or {})},
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                raise AssertionError(f"serve exited {process.returncode}: "
                                     f"{log.read_text(errors='replace')}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise AssertionError("serve did not start: " + log.read_text(errors="replace"))
            time.sleep(0.1)
        yield Served(url, token, data_dir, log, process)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=15)


def serve_refused(data_dir: Path, extra: Sequence[str] = (),
                  env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``agent-center serve`` expected to refuse to start (it must exit by itself)."""
    return subprocess.run(serve_args(data_dir, free_port(), extra), capture_output=True,
                          text=True, timeout=60,
                          env={**os.environ, "AGENT_CENTER_ADMIN_TOKEN": "refused-" + "x" * 32,
                               **(env or {})})


@pytest.fixture(scope="module")
def pg_cluster() -> Iterator[str]:
    with postgres_cluster() as url:
        yield url


def fresh_pg_database(cluster_url: str) -> str:
    import psycopg

    name = "c" + uuid.uuid4().hex[:12]
    with psycopg.connect(cluster_url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return cluster_url.rsplit("/", 1)[0] + "/" + name


# ------------------------------------------------------------------ a center of the last version

@dataclass
class LegacyCenter:
    data_dir: Path
    db_url: str
    center_key_hex: str
    private_pem: str
    agent_id: str
    secret: str          # as that version handed it out at enrollment


def make_legacy_center(data_dir: Path, db_url: str | None) -> LegacyCenter:
    """A center as the version before this one left it: made under umask 022 (data dir 0755,
    ``center.db`` 0644), its center key and its clearance private key in plain in
    ``center_secrets`` (written by ``Store.secret``, as that version's ``build_runtime`` did),
    and one workstation enrolled with the secret that version handed out (derived from that
    key)."""
    data_dir.mkdir(mode=0o755)
    os.chmod(data_dir, 0o755)
    url = db_url or f"sqlite:///{data_dir / 'center.db'}"
    db = Database(url)
    store = Store(db)
    store.setup()
    now = time.time()
    key_hex, pem = secrets.token_hex(32), new_private_pem()
    assert store.secret("center_key_hex", lambda: key_hex, now) == key_hex
    assert store.secret(SECRET_NAME, lambda: pem, now) == pem
    token, _, _ = store.create_token(1, 3600, "before the upgrade", now)
    enrolled = store.enroll(token, "home-legacy", None, now)
    assert enrolled is not None
    agent_id, nonce = enrolled
    db.close()
    if db_url is None:
        for name in ("center.db", "center.db-wal", "center.db-shm"):
            with contextlib.suppress(FileNotFoundError):
                os.chmod(data_dir / name, 0o644)
    secret = derive_secret(bytes.fromhex(key_hex), agent_id, nonce)
    return LegacyCenter(data_dir, url, key_hex, pem, agent_id, secret)


def stored_secrets(db_url: str) -> dict[str, str]:
    db = Database(db_url)
    try:
        with db.transaction() as tx:
            return {str(n): str(v) for n, v in tx.all("SELECT name, value FROM center_secrets")}
    finally:
        db.close()


def pem_body(pem: str) -> bytes:
    return "".join(pem.strip().splitlines()[1:-1]).encode()


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_a_center_of_the_last_version_is_sealed_and_its_workstations_keep_working(
        dialect, tmp_path, request):
    db_url = fresh_pg_database(request.getfixturevalue("pg_cluster")) \
        if dialect == "postgresql" else None
    data_dir = tmp_path / "center"
    legacy = make_legacy_center(data_dir, db_url)
    extra = ["--db", db_url] if db_url else []
    with served(data_dir, extra) as center:
        ws = Workstation(center_url=center.url, agent_id=legacy.agent_id,
                         secret=legacy.secret)
        # the workstation enrolled before the upgrade is accepted with its old secret
        assert ws.send([heartbeat(1, datetime.now(UTC), GOOD)])["results"][0]["status"] == \
            "stored"
        # clearances are signed with the same key pair as before the upgrade
        with center.admin() as admin:
            served_key = admin.get("/api/v1/clearance-key").json()["public_key_pem"]
        assert served_key == ClearanceSigner.from_pem(legacy.private_pem).public_pem
        first_log = center.log_text()
    rows = stored_secrets(legacy.db_url)
    assert rows["center_key_hex"].startswith("sealed:v1:")
    assert rows[SECRET_NAME].startswith("sealed:v1:")
    assert "sealed center_key_hex and clearance_ed25519_private_pem of an older center" in \
        first_log, first_log
    key_file = data_dir / "secrets.key"
    assert mode(key_file) == 0o600 and mode(data_dir) == 0o700
    if dialect == "sqlite":
        assert "other users could read the center's data" in first_log
        assert first_log.count("other users could read") == 1     # one line
        # no copy of either plain secret anywhere in the database's files
        for path in data_dir.glob("center.db*"):
            raw = path.read_bytes()
            assert legacy.center_key_hex.encode() not in raw, path
            assert pem_body(legacy.private_pem) not in raw, path
            assert mode(path) == 0o600, path
    # a second start reads the sealed secrets with the key file: nothing more to say
    with served(data_dir, extra) as again:
        ws = Workstation(center_url=again.url, agent_id=legacy.agent_id,
                         secret=legacy.secret)
        assert ws.send([heartbeat(2, datetime.now(UTC), GOOD)])["results"][0]["status"] == \
            "stored"
        assert "sealed" not in again.log_text() and "other users" not in again.log_text()


def test_another_local_user_cannot_read_the_database_nor_derive_a_secret(tmp_path):
    """The attack: a local user reads the center's database and derives a workstation's
    secret from the center key in it. Now the files are the owner's only, even in a data dir
    that was open (0755) before and under umask 000; and a copy of the database (a backup, a
    leak) holds the key only sealed."""
    data_dir = tmp_path / "center"
    data_dir.mkdir(mode=0o755)
    os.chmod(data_dir, 0o755)
    os.chmod(tmp_path, 0o755)         # the attacker can reach the data dir's parent
    with served(data_dir) as center:
        with center.admin() as admin:
            token = admin.post("/api/v1/tokens", json={"uses": 1, "ttl_s": 600}).json()["token"]
        made = httpx.post(f"{center.url}/api/v1/enroll",
                          json={"token": token, "hostname": "home-victim"}).json()
        ws = Workstation(center_url=center.url, agent_id=made["agent_id"],
                         secret=made["secret"])
        ws.send([heartbeat(1, datetime.now(UTC), GOOD)])
        assert mode(data_dir) == 0o700
        files = sorted(data_dir.glob("center.db*")) + [data_dir / "secrets.key"]
        assert {p.name for p in files} >= {"center.db", "center.db-wal", "center.db-shm",
                                           "secrets.key"}
        for path in files:
            assert mode(path) == 0o600, path
            attacker = subprocess.run([*NOBODY, "cat", str(path)], capture_output=True,
                                      timeout=30)
            assert attacker.returncode != 0 and b"Permission denied" in attacker.stderr, path
        # a copy of the database alone: the center key is sealed, nothing to derive from
        copy = tmp_path / "leaked.db"
        db = Database(f"sqlite:///{data_dir / 'center.db'}")
        try:
            with db.transaction() as tx:
                nonce = tx.one("SELECT nonce FROM agents WHERE agent_id = ?", (ws.agent_id,))
        finally:
            db.close()
        # the backup docs/operations.md describes: a consistent copy taken while it runs
        subprocess.run(["sqlite3", str(data_dir / "center.db"), f".backup '{copy}'"],
                       check=True, timeout=60)
        leaked = stored_secrets(f"sqlite:///{copy}")["center_key_hex"]
        assert leaked.startswith("sealed:v1:")
        with pytest.raises(ValueError):
            bytes.fromhex(leaked)
        # whatever the attacker makes of the sealed text, the center refuses the signature
        guess = derive_secret(leaked.encode(), ws.agent_id, str(nonce[0]))
        forged = Workstation(center_url=center.url, agent_id=ws.agent_id, secret=guess)
        refused = forged.request("POST", "/api/v1/heartbeats",
                                 {"heartbeats": [heartbeat(2, datetime.now(UTC), GOOD)]})
        assert refused.status_code == 401


def test_several_hosts_on_one_postgresql_need_the_same_key(tmp_path, pg_cluster):
    """Host B with its own data dir and no key refuses to start (one line naming both keys)
    instead of making new secrets that would lock every workstation out; given the key (a copy
    of A's file, or ``AGENT_CENTER_SECRETS_KEY``) it serves A's workstations."""
    db_url = fresh_pg_database(pg_cluster)
    with served(tmp_path / "a", ["--db", db_url]) as a:
        with a.admin() as admin:
            token = admin.post("/api/v1/tokens", json={"uses": 1, "ttl_s": 600}).json()["token"]
        made = httpx.post(f"{a.url}/api/v1/enroll",
                          json={"token": token, "hostname": "shared"}).json()
        key_text = (tmp_path / "a" / "secrets.key").read_text()
        # B: a fresh data dir, no key
        refused = serve_refused(tmp_path / "b", ["--db", db_url])
        assert refused.returncode == 2, refused.stderr
        lines = [line for line in refused.stderr.splitlines() if line.startswith("agent-center:")
                 and "sealed with the key" in line]
        assert len(lines) == 1, refused.stderr
        assert "Traceback" not in refused.stderr
        assert not (tmp_path / "b" / "secrets.key").exists()   # no wrong key left in the way
        # B with a copy of A's key file
        (tmp_path / "b").mkdir(exist_ok=True)
        (tmp_path / "b" / "secrets.key").write_text(key_text)
        with served(tmp_path / "b", ["--db", db_url]) as b:
            ws = Workstation(center_url=b.url, agent_id=made["agent_id"], secret=made["secret"])
            assert ws.send([heartbeat(1, datetime.now(UTC), GOOD)])["results"][0]["status"] \
                == "stored"
        # C with the key in the environment, nothing in its data dir
        with served(tmp_path / "c", ["--db", db_url],
                    env={"AGENT_CENTER_SECRETS_KEY": key_text.strip()}) as c:
            ws = Workstation(center_url=c.url, agent_id=made["agent_id"], secret=made["secret"])
            assert ws.send([heartbeat(2, datetime.now(UTC), GOOD)])["results"][0]["status"] \
                == "stored"
        assert not (tmp_path / "c" / "secrets.key").exists()
    bad = serve_refused(tmp_path / "d", ["--db", db_url],
                        env={"AGENT_CENTER_SECRETS_KEY": "not-a-key"})
    assert bad.returncode == 2 and "64 hexadecimal characters" in bad.stderr, bad.stderr
    assert "Traceback" not in bad.stderr


# ------------------------------------------------------------------ the workstation's files

def agent(home: Path, *args: str, umask: int = 0o000, stdin: str | None = None,
          timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(with_umask(umask, [*AGENT_CMD, *args]),
                          env={**os.environ, "AGENT_KIT_HOME": str(home)}, input=stdin,
                          capture_output=True, text=True, timeout=timeout)


def new_token(center: Served) -> str:
    with center.admin() as admin:
        r = admin.post("/api/v1/tokens", json={"uses": 1, "ttl_s": 600})
    r.raise_for_status()
    return str(r.json()["token"])


@pytest.fixture
def center(tmp_path) -> Iterator[Served]:
    (tmp_path / "fleet.toml").write_text(LENIENT)
    with served(tmp_path / "center", ["--policy", str(tmp_path / "fleet.toml")]) as c:
        yield c


def start_monitor(home: Path, policy: Path, *, umask: int = 0o000,
                  wrap: Sequence[str] = ()) -> subprocess.Popen[str]:
    log = (home.parent / f"{home.name}-monitor.log").open("a")
    cmd = [*wrap, *with_umask(umask, [*AGENT_CMD, "monitor", "--interval", "1", "--only",
                                       "system", "--policy", str(policy)])]
    proc = subprocess.Popen(cmd, env={**os.environ, "AGENT_KIT_HOME": str(home)}, stdout=log,
                            stderr=subprocess.STDOUT, text=True)
    log.close()
    return proc


def monitor_log(home: Path) -> str:
    return (home.parent / f"{home.name}-monitor.log").read_text(errors="replace")


def heartbeats_of(center: Served, agent_id: str) -> list[int]:
    with center.admin() as admin:
        r = admin.get(f"/api/v1/agents/{agent_id}/heartbeats", params={"since_seq": 0})
    return [int(h["seq"]) for h in r.json()["heartbeats"]]


def stop_process(proc: subprocess.Popen[str]) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    return proc.wait(timeout=30)


def test_the_agent_s_files_are_the_user_s_only_whatever_the_umask(center, tmp_path):
    home = tmp_path / "agent"
    home.mkdir(mode=0o755)
    os.chmod(home, 0o755)                   # an existing, open state folder
    # a spool an older agent left readable (0644), from a previous enrollment
    old_spool = home / "spool.db"
    subprocess.run(["sqlite3", str(old_spool), "CREATE TABLE t(x)"], check=True)
    os.chmod(old_spool, 0o644)
    enrolled = agent(home, "enroll", "--center", center.url, "--token", new_token(center))
    assert enrolled.returncode == 0, enrolled.stderr
    assert mode(home) == 0o700
    assert mode(home / "enrollment.json") == 0o600
    policy = tmp_path / "lenient.toml"
    policy.write_text(LENIENT)
    agent_id = json.loads((home / "enrollment.json").read_text())["agent_id"]
    monitor = start_monitor(home, policy)
    try:
        wait_for(lambda: len(heartbeats_of(center, agent_id)) >= 2, 60, "heartbeats",
                 lambda: monitor_log(home))
        for name in ("spool.db", "spool.db-wal", "spool.db-shm"):
            assert mode(home / name) == 0o600, name
        assert mode(home) == 0o700
    finally:
        assert stop_process(monitor) == 0, monitor_log(home)
    names = {p.name for p in home.iterdir()}
    assert {"gate.json", "monitor.lock", "clearance_key.pem", "spool.db"} <= names
    for path in home.iterdir():   # nothing in the state folder is open to other users
        assert mode(path) & 0o077 == 0, (path, oct(mode(path)))


def test_the_enrollment_token_stays_out_of_the_process_list(center, tmp_path):
    """``--token VALUE`` shows the token to every local user (``ps``, /proc/PID/cmdline) while
    it runs; ``--token -`` (standard input) and ``--token-file`` do not."""
    token = new_token(center)
    home = tmp_path / "stdin"
    proc = subprocess.Popen([*AGENT_CMD, "enroll", "--center", center.url, "--token", "-"],
                            env={**os.environ, "AGENT_KIT_HOME": str(home)},
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        cmdline = Path(f"/proc/{proc.pid}/cmdline").read_bytes()
        # another local user's view of it: the process list
        seen = subprocess.run([*NOBODY, "cat", f"/proc/{proc.pid}/cmdline"],
                              capture_output=True, timeout=30).stdout
        out, err = proc.communicate(token + "\n", timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert token.encode() not in cmdline and token.encode() not in seen and b"enroll" in seen
    assert (home / "enrollment.json").exists()
    # from a file (0600, made by IT's deployment tool), first line
    token_file = tmp_path / "token"
    token_file.write_text(new_token(center) + "\n")
    os.chmod(token_file, 0o600)
    by_file = agent(tmp_path / "file", "enroll", "--center", center.url, "--token-file",
                    str(token_file))
    assert by_file.returncode == 0, by_file.stderr
    # the old way keeps working
    by_value = agent(tmp_path / "value", "enroll", "--center", center.url, "--token",
                     new_token(center))
    assert by_value.returncode == 0, by_value.stderr
    # a token file that cannot be read: one line, exit 2
    missing = agent(tmp_path / "missing", "enroll", "--center", center.url, "--token-file",
                    str(tmp_path / "nope"))
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1, missing.stderr
    assert "cannot read the enrollment token" in missing.stderr


# ------------------------------------------------------------------ an unwritable state folder

def in_mount_namespace(setup: str) -> list[str]:
    """Run the rest of the command line in a new mount namespace after ``setup`` (sh), so a
    read-only or full state folder is this process's view only."""
    if shutil.which("unshare") is None or shutil.which("nsenter") is None or os.geteuid() != 0:
        raise LabError("mount namespaces need root, unshare and nsenter (util-linux)")
    return ["unshare", "-m", "--propagation", "private", "sh", "-c", f'{setup} && exec "$@"',
            "sh"]


def nsenter(pid: int, *cmd: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(["nsenter", "-t", str(pid), "-m", "--", *cmd], capture_output=True,
                          text=True, timeout=60)
    if done.returncode != 0:
        raise LabError(f"{' '.join(cmd)} in the monitor's namespace: {done.stderr.strip()}")
    return done


def enrolled_home(center: Served, home: Path) -> str:
    made = agent(home, "enroll", "--center", center.url, "--token", new_token(center))
    assert made.returncode == 0, made.stderr
    return str(json.loads((home / "enrollment.json").read_text())["agent_id"])


def test_a_read_only_state_folder_is_one_line_and_a_retry_not_a_traceback(center, tmp_path):
    home = tmp_path / "agent"
    agent_id = enrolled_home(center, home)
    policy = tmp_path / "lenient.toml"
    policy.write_text(LENIENT)
    h = str(home)
    monitor = start_monitor(home, policy, wrap=in_mount_namespace(
        f"mount --bind {h} {h} && mount -o remount,bind,ro {h}"))
    try:
        wait_for(lambda: "cannot be written" in monitor_log(home), 60, "the one line",
                 lambda: monitor_log(home))
        time.sleep(3)      # a few retries (every interval): still one line, still running
        assert monitor.poll() is None, monitor_log(home)
        log = monitor_log(home)
        assert log.count("cannot be written") == 1 and "Traceback" not in log, log
        assert "Read-only file system" in log
        assert not heartbeats_of(center, agent_id)
        nsenter(monitor.pid, "mount", "-o", "remount,bind,rw", h)     # writable again
        wait_for(lambda: len(heartbeats_of(center, agent_id)) >= 3, 60, "heartbeats",
                 lambda: monitor_log(home))
        assert "can be written again" in monitor_log(home)
    finally:
        code = stop_process(monitor)
    assert code == 0, monitor_log(home)
    assert "Traceback" not in monitor_log(home)


def test_a_state_folder_that_fills_up_mid_shift_is_said_once_and_recovers(center, tmp_path):
    """Mid-shift the folder cannot take a byte more (a full disk: a read-only remount is not
    possible while the spool is open): the monitor keeps its gate, says so once, and its
    heartbeats resume when there is room again."""
    source = tmp_path / "enrolled"
    agent_id = enrolled_home(center, source)
    home = tmp_path / "agent"
    home.mkdir()
    policy = tmp_path / "lenient.toml"
    policy.write_text(LENIENT)
    h = str(home)
    monitor = start_monitor(home, policy, wrap=in_mount_namespace(
        f"mount -t tmpfs -o size=8m tmpfs {h} && cp {source}/enrollment.json "
        f"{source}/clearance_key.pem {h}/"))
    try:
        wait_for(lambda: len(heartbeats_of(center, agent_id)) >= 3, 60, "heartbeats",
                 lambda: monitor_log(home))
        # fill it up (dd stops at "No space left on device")
        subprocess.run(["nsenter", "-t", str(monitor.pid), "-m", "--", "dd", "if=/dev/zero",
                        f"of={h}/filler", "bs=64k"], capture_output=True, timeout=60)
        wait_for(lambda: "cannot be written" in monitor_log(home), 60, "the one line",
                 lambda: monitor_log(home))
        time.sleep(3)
        assert monitor.poll() is None, monitor_log(home)
        nsenter(monitor.pid, "rm", f"{h}/filler")
        wait_for(lambda: "can be written again" in monitor_log(home), 60, "recovery",
                 lambda: monitor_log(home))
        before = len(heartbeats_of(center, agent_id))
        wait_for(lambda: len(heartbeats_of(center, agent_id)) >= before + 3, 60,
                 "heartbeats after the recovery", lambda: monitor_log(home))
        log = monitor_log(home)
        assert log.count("cannot be written") == 1 and "Traceback" not in log, log
        assert "No space left on device" in log or "full" in log, log
    finally:
        code = stop_process(monitor)
    assert code == 0, monitor_log(home)
    seqs = heartbeats_of(center, agent_id)
    assert seqs == sorted(set(seqs))       # each stored once


def test_enroll_and_login_in_a_read_only_state_folder_are_one_line(center, tmp_path):
    h = tmp_path / "agent"
    h.mkdir()
    read_only = in_mount_namespace(f"mount --bind {h} {h} && mount -o remount,bind,ro {h}")
    token = new_token(center)
    env = {**os.environ, "AGENT_KIT_HOME": str(h)}
    refused = subprocess.run([*read_only, *AGENT_CMD, "enroll", "--center", center.url,
                              "--token", token], env=env, capture_output=True, text=True,
                             timeout=60)
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1, refused.stderr
    assert "nothing was sent to the center" in refused.stderr
    # the token was not spent: it enrolls once the folder can be written
    agent_id = enrolled_home_with(center, h, token)
    policy = tmp_path / "lenient.toml"
    policy.write_text(LENIENT)
    monitor = start_monitor(h, policy)
    try:
        wait_for(lambda: agent(h, "status").returncode == 0, 60, "gate open",
                 lambda: monitor_log(h))
        # the key was pinned at enrollment; login must still work where it cannot write
        # (it keeps the last accepted clearance there when it can)
        login = subprocess.run([*read_only, *AGENT_CMD, "login", "--", "true"], env=env,
                               capture_output=True, text=True, timeout=60)
    finally:
        assert stop_process(monitor) == 0, monitor_log(h)
    assert login.returncode == 0, login.stderr
    assert "Traceback" not in login.stderr and "cleared by the center" in login.stderr
    assert agent_id


def enrolled_home_with(center: Served, home: Path, token: str) -> str:
    made = agent(home, "enroll", "--center", center.url, "--token", token)
    assert made.returncode == 0, made.stderr
    return str(json.loads((home / "enrollment.json").read_text())["agent_id"])
