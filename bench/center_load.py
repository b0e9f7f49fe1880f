"""Load on the center: N enrolled workstations heartbeating (signed requests, batches of 1) against
a real ``agent-center serve``, on SQLite or PostgreSQL; then the fleet overview with 100,000
workstations.

    python3 bench/center_load.py --db sqlite --agents 1000 --duration 20 --workers 2
    python3 bench/center_load.py --db postgresql ...   (a throwaway cluster, as in LAB.md)

Prints sustained heartbeats/s (acknowledged = committed), p50/p99 latency, and the
``GET /api/v1/agents`` time (first page, counts) for 100,000 agents. Targets (issue 6):
>= 5,000 heartbeats/s, p99 < 100 ms, overview < 300 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import hmac
import json
import multiprocessing
import random
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx  # noqa: E402

from tests.center_seed import run_center  # noqa: E402

CHECKS = [{"id": "network.rtt", "status": "pass", "value": 23.0, "unit": "ms"},
          {"id": "network.jitter", "status": "pass", "value": 4.2, "unit": "ms"},
          {"id": "network.loss", "status": "pass", "value": 0.1, "unit": "%"},
          {"id": "network.mos", "status": "pass", "value": 4.3, "unit": None},
          {"id": "audio.noise", "status": "warn", "value": -52.0, "unit": "dBFS(A)"}]


def _request(host: str, port: int, agent_id: str, secret: str, seq: int, batch: int) -> bytes:
    body = json.dumps({"heartbeats": [{
        "id": str(uuid.uuid4()), "seq": s, "measured_at": datetime.now(UTC).isoformat(),
        "interval_s": 15, "agent_version": "0.1.0", "verdict": "warn",
        "gate": {"open": True, "reasons": []}, "checks": CHECKS}
        for s in range(seq, seq + batch)]}).encode()
    ts = str(int(time.time()))
    msg = f"POST\n/api/v1/heartbeats\n{ts}\n{hashlib.sha256(body).hexdigest()}".encode()
    sig = hmac.new(secret.encode(), msg, hashlib.sha256).hexdigest()
    head = (f"POST /api/v1/heartbeats HTTP/1.1\r\nHost: {host}:{port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            f"X-Agent-Id: {agent_id}\r\nX-Agent-Timestamp: {ts}\r\n"
            f"X-Agent-Signature: {sig}\r\n\r\n")
    return head.encode() + body


async def _connection(host: str, port: int, agents: list[tuple[str, str]], stop_at: float,
                      warm_until: float, latencies: list[float], errors: list[int],
                      batch: int) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    seqs = {a: 0 for a, _ in agents}
    i = 0
    while time.monotonic() < stop_at:
        agent_id, secret = agents[i % len(agents)]
        i += 1
        data = _request(host, port, agent_id, secret, seqs[agent_id] + 1, batch)
        seqs[agent_id] += batch
        t0 = time.monotonic()
        writer.write(data)
        head = await reader.readuntil(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        await reader.readexactly(length)
        t1 = time.monotonic()
        if t0 >= warm_until:
            if head.startswith(b"HTTP/1.1 200"):
                latencies.append(t1 - t0)
            else:
                errors.append(int(head.split()[1]))
    writer.close()


def _client(args: tuple[str, int, list[tuple[str, str]], int, float, float, int]) -> tuple[
        list[float], list[int]]:
    host, port, agents, connections, duration, warmup, batch = args
    latencies: list[float] = []
    errors: list[int] = []

    async def main() -> None:
        start = time.monotonic()
        share = [agents[i::connections] for i in range(connections)]
        await asyncio.gather(*(_connection(host, port, s, start + warmup + duration,
                                           start + warmup, latencies, errors, batch)
                               for s in share if s))

    asyncio.run(main())
    return latencies, errors


def heartbeat_load(url: str, agents: list[tuple[str, str]], clients: int, connections: int,
                   duration: float, warmup: float = 3.0, batch: int = 1) -> dict[str, float]:
    host, port = url.split("//")[1].rsplit(":", 1)
    share = [agents[i::clients] for i in range(clients)]
    with multiprocessing.get_context("spawn").Pool(clients) as pool:
        parts = pool.map(_client, [(host, int(port), s, connections // clients, duration,
                                    warmup, batch) for s in share])
    lat = sorted(x for p in parts for x in p[0])
    errors = [e for p in parts for e in p[1]]
    return {"heartbeats_per_s": batch * len(lat) / duration, "p50_ms": 1000 * lat[len(lat) // 2],
            "p99_ms": 1000 * lat[int(len(lat) * 0.99)], "errors": len(errors),
            "count": len(lat)}


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
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    p.add_argument("--agents", type=int, default=1000)
    p.add_argument("--duration", type=float, default=20)
    p.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    p.add_argument("--clients", type=int, default=1, help="load-generator processes")
    p.add_argument("--connections", type=int, default=64)
    p.add_argument("--batch", type=int, default=1, help="heartbeats per request (1..500)")
    p.add_argument("--overview-agents", type=int, default=100_000)
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
        result = heartbeat_load(center.url, agents, args.clients, args.connections,
                                args.duration, batch=args.batch)
        print(f"{args.db}, {args.workers} worker(s), {args.clients} client process(es), "
              f"{args.connections} connections, {args.agents} agents, batches of {args.batch}, "
              f"{args.duration:.0f} s: "
              f"{result['heartbeats_per_s']:.0f} heartbeats/s, p50 {result['p50_ms']:.1f} ms, "
              f"p99 {result['p99_ms']:.1f} ms, errors {result['errors']}")
        if args.overview_agents:
            seed_fleet(db_url, args.overview_agents)
            for name, ms in overview_times(center.url, center.admin_token).items():
                print(f"{args.db}: GET /api/v1/agents ({name}) with "
                      f"{args.overview_agents + args.agents} agents: {ms:.1f} ms (median of 7)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
