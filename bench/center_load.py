"""Load on the center: N enrolled workstations heartbeating (signed requests, batches of 1) against
a real ``agent-center serve``, on SQLite or PostgreSQL; then the fleet overview with 100,000
workstations.

    python3 bench/center_load.py --db sqlite --agents 1000 --duration 20 --workers 2
    python3 bench/center_load.py --db postgresql ...   (a throwaway cluster, as in LAB.md)

Prints sustained heartbeats/s (acknowledged = committed), p50/p99 latency, and the
``GET /api/v1/agents`` time (first page, counts) for 100,000 agents. Targets (issue 6):
>= 5,000 heartbeats/s, p99 < 100 ms, overview < 300 ms.

The load generator shares the machine with the server, so it costs as little as it can per
request: every request is made and signed *before* the timed window (each a distinct heartbeat,
its own uuid and the next seq of its workstation, timestamp of the moment it was made: well
inside the center's 300 s window), then sent over keep-alive connections by ``wrk`` (Debian
package, C, a tiny Lua script hands it the prepared requests: ``--client wrk``, the default when
installed) or by a lean asyncio client (``--client python``). Honesty check after the run: the
center's own ``heartbeats_stored`` counter must equal the acknowledged requests (plus at most the
ones in flight when the window closed), so every counted answer stored one new heartbeat that
the server verified, validated and committed.

Each heartbeat is the realistic one of ``tests.center_seed.typical_heartbeat``: every check of
the catalogue with the agent's message, and the gate, built by the agent's own builder
(``agent_kit.core.wire.heartbeat``), about 3 KB of JSON; requests are signed by
``agent_kit.core.wire.signing``. The prepared requests are held in memory (and in wrk's): about
``--max-rate`` x (``--warmup`` + ``--duration``) x 3 KB, so lower ``--max-rate`` for a short
run on a small machine.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import os
import random
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx  # noqa: E402

from agent_kit.core.wire import heartbeat as wire_heartbeat  # noqa: E402
from agent_kit.core.wire import signing  # noqa: E402
from tests.center_seed import run_center, typical_heartbeat  # noqa: E402

PATH = wire_heartbeat.PATH


def _uuid4() -> str:
    b = bytearray(os.urandom(16))
    b[6] = (b[6] & 0x0F) | 0x40
    b[8] = (b[8] & 0x3F) | 0x80
    h = b.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def heartbeat_template(at: datetime) -> tuple[str, str]:
    """The realistic heartbeat (``tests.center_seed.typical_heartbeat``: every catalogue check
    with its message, built by the agent's builder) as JSON text before and after its id and seq,
    so each prepared request costs a string join, not a ``json.dumps``."""
    one = typical_heartbeat(1, at)
    text = json.dumps(one)
    # identified_heartbeat puts id and seq last, after what was measured
    cut = text.rindex(', "id": ')
    head, tail = text[:cut] + ', "id": "', "}"
    made_id = _uuid4()
    assert json.loads(f'{head}{made_id}", "seq": 7{tail}') == {**one, "id": made_id, "seq": 7}
    return head, tail


def presign(host: str, port: int, agents: list[tuple[str, str]], first_seq: int, count: int,
            batch: int) -> list[bytes]:
    """``count`` complete HTTP requests, round-robin over the agents, each a distinct batch of
    ``batch`` heartbeats with the next seqs of its agent, signed as docs/center-api.md says."""
    out = []
    n = len(agents)
    head, tail = heartbeat_template(datetime.now(UTC))
    for k in range(count):
        agent_id, secret = agents[k % n]
        seq = first_seq + (k // n) * batch
        body = ('{"heartbeats": [' + ", ".join(
            f'{head}{_uuid4()}", "seq": {s}{tail}' for s in range(seq, seq + batch))
            + "]}").encode()
        headers = signing.signature_headers(agent_id, secret, "POST", PATH, body,
                                            int(time.time()))
        out.append((f"POST {PATH} HTTP/1.1\r\nHost: {host}:{port}\r\n"
                    f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
                    + "".join(f"{name}: {value}\r\n" for name, value in headers.items())
                    + "\r\n").encode() + body)
    return out


# ---- the lean Python client ---------------------------------------------------------------
async def _connection(host: str, port: int, requests: list[bytes], stop_at: float,
                      latencies: list[float], errors: list[int]) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    for data in requests:
        if time.monotonic() >= stop_at:
            break
        t0 = time.monotonic()
        writer.write(data)
        head = await reader.readuntil(b"\r\n\r\n")
        i = head.find(b"content-length:")
        length = int(head[i + 15:head.index(b"\r\n", i)]) if i >= 0 else 0
        await reader.readexactly(length)
        if head.startswith(b"HTTP/1.1 200"):
            latencies.append(time.monotonic() - t0)
        else:
            errors.append(int(head.split()[1]))
    else:
        errors.append(-1)  # ran out of prepared requests before the window closed
    writer.close()


def _python_client(args: tuple[str, int, list[bytes], int, float]) -> tuple[
        list[float], list[int], float]:
    host, port, requests, connections, duration = args
    latencies: list[float] = []
    errors: list[int] = []

    async def main() -> float:
        start = time.monotonic()
        await asyncio.gather(*(_connection(host, port, requests[i::connections],
                                           start + duration, latencies, errors)
                               for i in range(connections)))
        return time.monotonic() - start

    with contextlib.suppress(ImportError):
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    elapsed = asyncio.run(main())
    return latencies, errors, elapsed


def python_load(host: str, port: int, requests: list[bytes], clients: int, connections: int,
                duration: float) -> dict[str, float]:
    share = [requests[i::clients] for i in range(clients)]
    with multiprocessing.get_context("spawn").Pool(clients) as pool:
        parts = pool.map(_python_client, [(host, port, s, connections // clients, duration)
                                          for s in share])
    lat = sorted(x for p in parts for x in p[0])
    errors = [e for p in parts for e in p[1]]
    elapsed = max(p[2] for p in parts)
    return {"ok": len(lat), "errors": len(errors), "elapsed_s": elapsed,
            "p50_ms": 1000 * lat[len(lat) // 2], "p99_ms": 1000 * lat[int(len(lat) * 0.99)]}


# ---- wrk ----------------------------------------------------------------------------------
WRK_SCRIPT = r"""
local threads, made = {}, 0
function setup(thread)
  made = made + 1
  thread:set("tid", made)
  table.insert(threads, thread)
end
function init(args)
  local f = assert(io.open(args[1] .. "." .. tid, "rb"))
  local data = f:read("*a")
  f:close()
  reqs, n, i, exhausted = {}, 0, 0, 0
  local pos = 1
  while pos <= #data do
    local nl = string.find(data, "\n", pos, true)
    local len = tonumber(string.sub(data, pos, nl - 1))
    n = n + 1
    reqs[n] = string.sub(data, nl + 1, nl + len)
    pos = nl + 1 + len
  end
  healthz = wrk.format("GET", "/healthz")
end
function request()
  i = i + 1
  if i > n then
    exhausted = exhausted + 1
    return healthz
  end
  return reqs[i]
end
function done(summary, latency, requests)
  local ex = 0
  for _, t in ipairs(threads) do ex = ex + t:get("exhausted") end
  io.write(string.format("RESULT requests=%d status_errors=%d socket_errors=%d " ..
    "timeouts=%d duration_us=%d p50_us=%d p99_us=%d exhausted=%d\n", summary.requests,
    summary.errors.status, summary.errors.connect + summary.errors.read + summary.errors.write,
    summary.errors.timeout, summary.duration, latency:percentile(50), latency:percentile(99), ex))
end
"""


def wrk_load(url: str, requests: list[bytes], threads: int, connections: int,
             duration: float, workdir: Path) -> dict[str, float]:
    script = workdir / "presigned.lua"
    script.write_text(WRK_SCRIPT)
    prefix = workdir / f"requests-{time.monotonic_ns()}"
    for t in range(threads):
        with open(f"{prefix}.{t + 1}", "wb") as f:
            for r in requests[t::threads]:
                f.write(b"%d\n" % len(r) + r)
    out = subprocess.run(["wrk", "-t", str(threads), "-c", str(connections),
                          "-d", f"{duration:.0f}s", "--timeout", "10s", "-s", str(script),
                          url, "--", str(prefix)], capture_output=True, text=True, check=True)
    for t in range(threads):
        os.unlink(f"{prefix}.{t + 1}")
    m = re.search(r"RESULT (.*)", out.stdout)
    if not m:
        raise RuntimeError(f"wrk said: {out.stdout} {out.stderr}")
    r = {k: int(v) for k, v in (kv.split("=") for kv in m.group(1).split())}
    if r["exhausted"]:
        raise RuntimeError(f"wrk ran out of prepared requests ({r['exhausted']} more wanted): "
                           "raise --max-rate")
    return {"ok": r["requests"] - r["status_errors"],
            "errors": r["status_errors"] + r["socket_errors"] + r["timeouts"],
            "elapsed_s": r["duration_us"] / 1e6, "p50_ms": r["p50_us"] / 1000,
            "p99_ms": r["p99_us"] / 1000}


def group_cpu_s(pgid: int) -> dict[int, float]:
    """CPU seconds (user + system) so far of every process in the center's process group."""
    tick = os.sysconf("SC_CLK_TCK")
    out = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:  # fields[0] is the state; pgrp is the 5th field of stat
            out[int(entry)] = (int(fields[11]) + int(fields[12])) / tick
    return out


def machine_busy() -> tuple[float, float]:
    """(busy, total) CPU time of the whole machine so far, from /proc/stat (every process:
    the center, the load generator, PostgreSQL, and anyone else's work)."""
    with open("/proc/stat") as f:
        values = [float(v) for v in f.readline().split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return sum(values) - idle, sum(values)


def stored_counter(url: str, token: str) -> int:
    text = httpx.get(f"{url}/metrics", headers={"Authorization": f"Bearer {token}"},
                     timeout=30).text
    m = re.search(r"^agent_center_heartbeats_stored_total (\d+)", text, re.M)
    assert m, text[:500]
    return int(m.group(1))


def heartbeat_load(url: str, token: str, pgid: int, agents: list[tuple[str, str]], client: str,
                   clients: int, connections: int, duration: float, warmup: float, batch: int,
                   max_rate: float, workdir: Path) -> dict[str, float]:
    """A warm-up window, then the timed window, each with its own prepared requests."""
    host, port_text = url.split("//")[1].rsplit(":", 1)
    port = int(port_text)
    before = stored_counter(url, token)
    sent = 0
    seq = 1
    result: dict[str, float] = {}
    for window in (warmup, duration):
        count = int(max_rate * window / batch) + connections
        t0 = time.monotonic()
        requests = presign(host, port, agents, seq, count, batch)
        result["presign_s"] = time.monotonic() - t0
        seq += batch * (count // len(agents) + 1)
        cpu0, own0 = group_cpu_s(pgid), resource.getrusage(resource.RUSAGE_CHILDREN)
        busy0 = machine_busy()
        if client == "wrk":
            result.update(wrk_load(url, requests, clients, connections, window, workdir))
        else:
            result.update(python_load(host, port, requests, clients, connections, window))
        cpu1, own1 = group_cpu_s(pgid), resource.getrusage(resource.RUSAGE_CHILDREN)
        busy1 = machine_busy()
        sent += int(result["ok"])
    stored = stored_counter(url, token) - before
    # Answers in flight when a window closed are stored but not counted: at most one per
    # connection per window.
    result["stored"] = stored
    result["honest"] = float(sent * batch <= stored <= (sent + 2 * connections) * batch)
    result["heartbeats_per_s"] = batch * result["ok"] / result["elapsed_s"]
    # CPU per acknowledged request in the timed window: the center's processes, and the client.
    per = {pid: cpu1[pid] - cpu0.get(pid, 0.0) for pid in cpu1}
    result["server_ms_per_request"] = 1000 * sum(per.values()) / max(result["ok"], 1)
    result["server_cores"] = sum(per.values()) / result["elapsed_s"]
    result["process_cores"] = sorted((v / result["elapsed_s"] for v in per.values()),
                                     reverse=True)  # type: ignore[assignment]
    client_s = (own1.ru_utime + own1.ru_stime) - (own0.ru_utime + own0.ru_stime)
    result["client_ms_per_request"] = 1000 * client_s / max(result["ok"], 1)
    result["machine_busy"] = (busy1[0] - busy0[0]) / (busy1[1] - busy0[1])
    return result


def seed_fleet(db_url: str, n: int) -> None:
    """Put ``n`` workstations with a latest state straight into the database (enrolling 100,000
    over HTTP would take longer than the point of this measurement)."""
    from agent_kit.center.database import Database
    from agent_kit.center.fleet import deadline

    db = Database(db_url)
    now = time.time()
    rows = []
    rnd = random.Random(7)
    for i in range(n):
        seen = now - rnd.uniform(0, 120)
        ready = 1 if rnd.random() < 0.9 else 0
        rows.append((f"seed-{i:06d}", f"home-{i:06d}", None, "00", now - 86400, seen,
                     deadline(seen, 15), rnd.randint(1, 5000), 15.0, "0.1.0",
                     "pass" if ready else "fail", ready, datetime.now(UTC).isoformat(),
                     "" if ready else ",network.jitter,"))
    with db.transaction(write=True) as tx:
        tx.executemany("INSERT INTO agents (agent_id, hostname, display_name, nonce, enrolled_at,"
                       " last_seen, deadline, last_seq, interval_s, agent_version, verdict, ready,"
                       " ready_since, failing) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                       rows)
    db.close()


def seed_workstations(db_url: str, data_dir: Path, n: int) -> list[tuple[str, str]]:
    """``n`` more enrolled workstations written straight into the database, as
    ``Store.enroll`` writes them (an id and a nonce), with the secrets the center derives from
    its key (sealed in the database, opened with the running center's ``secrets.key``): a fleet
    of tens of thousands without enrolling each over HTTP. Their first requests miss the
    center's credential cache (a database read each), as a real large fleet's do every 30 s."""
    import secrets as random_secrets

    from agent_kit.center.credentials import derive_secret
    from agent_kit.center.database import Database
    from agent_kit.center.runtime import CENTER_KEY
    from agent_kit.center.sealed_secrets import load_secrets_key

    db = Database(db_url)
    with db.transaction() as tx:
        row = tx.one("SELECT value FROM center_secrets WHERE name = ?", (CENTER_KEY,))
    assert row is not None
    key = bytes.fromhex(load_secrets_key(data_dir).unseal(CENTER_KEY, str(row[0])))
    now = time.time()
    made = [(f"ws-seed{i:07d}", random_secrets.token_hex(16)) for i in range(n)]
    with db.transaction(write=True) as tx:
        tx.executemany("INSERT INTO agents (agent_id, hostname, nonce, enrolled_at) "
                       "VALUES (?, ?, ?, ?)", [(a, f"seed-{a}", nonce, now) for a, nonce in made])
    db.close()
    return [(a, derive_secret(key, a, nonce)) for a, nonce in made]


def overview_times(url: str, token: str, repeat: int = 7) -> dict[str, float]:
    out = {}
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"},
                      timeout=60) as client:
        for name, params in [("first page", {}), ("state=offline", {"state": "offline"}),
                             ("ready=false", {"ready": "false"}),
                             ("q=home-0999", {"q": "home-0999"}),
                             ("sort=-last_seen", {"sort": "-last_seen"})]:
            times = []
            for _ in range(repeat):
                t0 = time.perf_counter()
                r = client.get("/api/v1/agents", params=params)
                times.append(time.perf_counter() - t0)
                r.raise_for_status()
            out[name] = 1000 * statistics.median(times)
        assert r.json()["counts"]["online"] + r.json()["counts"]["offline"] >= 100_000
    return out



def main() -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    p.add_argument("--agents", type=int, default=1000)
    p.add_argument("--duration", type=float, default=20)
    p.add_argument("--warmup", type=float, default=3)
    p.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    p.add_argument("--client", choices=["wrk", "python"],
                   default="wrk" if shutil.which("wrk") else "python")
    p.add_argument("--clients", type=int, default=1,
                   help="load-generator threads (wrk) or processes (python)")
    p.add_argument("--connections", type=int, default=64)
    p.add_argument("--batch", type=int, default=1, help="heartbeats per request (1..500)")
    p.add_argument("--max-rate", type=float, default=12_000,
                   help="heartbeats/s prepared for (the run fails if the client runs out)")
    p.add_argument("--seeded-agents", type=int, default=0,
                   help="more workstations, written into the database (a large fleet)")
    p.add_argument("--overview-agents", type=int, default=100_000)
    p.add_argument("--profile", metavar="SVG_OR_TXT", help="py-spy record the center during "
                   "the timed window (--format raw for .txt)")
    args = p.parse_args()
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        extra = ["--workers", str(args.workers)]
        db_url = f"sqlite:///{tmp / 'center' / 'center.db'}"
        if args.db == "postgresql":
            from tests.lab.postgres import postgres_cluster

            db_url = stack.enter_context(postgres_cluster())
            extra += ["--db", db_url]
        center = stack.enter_context(run_center(tmp / "center", extra_args=extra))
        token = center.create_token(uses=args.agents)
        agents = []
        for i in range(args.agents):
            ws = center.enroll(token, f"load-{i}")
            agents.append((ws.agent_id, ws.secret))
        if args.seeded_agents:
            agents += seed_workstations(db_url, tmp / "center", args.seeded_agents)
            random.Random(3).shuffle(agents)
        if args.profile:
            fmt = ["--format", "raw"] if args.profile.endswith(".txt") else []
            spy = subprocess.Popen(["py-spy", "record", "--nonblocking", "-r", "100", "-s",
                                    "-o", args.profile, "-p", str(center.process.pid), *fmt,
                                    "-d", str(int(args.warmup + args.duration + 10))],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        load = os.getloadavg()
        result = heartbeat_load(center.url, center.admin_token, center.process.pid, agents,
                                args.client, args.clients, args.connections, args.duration,
                                args.warmup, args.batch, args.max_rate, tmp)
        if args.profile:
            spy.wait()
        print(f"{args.db}, {args.workers} worker(s), client {args.client} x{args.clients}, "
              f"{args.connections} connections, {len(agents)} agents, batches of {args.batch}, "
              f"{result['elapsed_s']:.1f} s (load average at start {load[0]:.2f}): "
              f"{result['heartbeats_per_s']:.0f} heartbeats/s, p50 {result['p50_ms']:.1f} ms, "
              f"p99 {result['p99_ms']:.1f} ms, errors {result['errors']:.0f}; stored "
              f"{result['stored']:.0f} (counter check "
              f"{'ok' if result['honest'] else 'FAILED'}); requests signed in "
              f"{result['presign_s']:.1f} s before the window")
        cores = " + ".join(f"{c:.2f}" for c in result["process_cores"] if c >= 0.01)
        print(f"CPU per request: center {result['server_ms_per_request']:.3f} ms "
              f"({result['server_cores']:.2f} cores: {cores}), client "
              f"{result['client_ms_per_request']:.3f} ms; machine busy "
              f"{100 * result['machine_busy']:.0f} % of {os.cpu_count()} cores")
        if not result["honest"]:
            return 1
        if args.overview_agents:
            seed_fleet(db_url, args.overview_agents)
            for name, ms in overview_times(center.url, center.admin_token).items():
                print(f"{args.db}: GET /api/v1/agents ({name}) with "
                      f"{args.overview_agents + args.agents} agents: {ms:.1f} ms (median of 7)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
