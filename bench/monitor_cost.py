"""What `agent-kit monitor` costs the agent's PC: CPU (% of one core) and resident memory.

Runs a real `agent-center serve` on loopback, enrolls a throwaway workstation, starts
`agent-kit monitor --interval 15` with every probe group, and samples the monitor process with
psutil every 5 s for the whole run (default 10 minutes). CPU includes the monitor's waited-for
children (pactl and the like). Targets (issue 7): <= 1 % of one core on average, <= 80 MB RSS.

The center advertises a pass-through UDP relay (``tests/lab/relay.py``, no impairment) in front
of its reflector, so the output can show, from the relay's record, the path-test bursts the
monitor really sent; it also prints what the center stored per check (``network.*`` must have
values: the run fails otherwise) and the machine's load averages.

With the audio lab's virtual headset (tests/lab/pulse.py) present, the monitor's audio unit
captures from it; without it the audio group reports unknown (no sound card) and costs less
than it would on a real PC: the output says which.

    python bench/monitor_cost.py [--minutes 10] [--interval 15] [--only GROUPS]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.lab.relay import Record, Relay, Spec  # noqa: E402 - the repository's lab helpers


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_center(work: Path, admin: str, udp: int,
                 advertise: tuple[str, int]) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    log = (work / "center.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-c", "from agent_kit.center.cli import main; main()", "serve",
         "--data-dir", str(work / "center"), "--host", "127.0.0.1", "--port", str(port),
         "--udp-port", str(udp), "--advertise-reflector", f"{advertise[0]}:{advertise[1]}"],
        env={**os.environ, "AGENT_CENTER_ADMIN_TOKEN": admin}, stdout=log,
        stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return proc, url
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    raise SystemExit("the center did not start: " + (work / "center.log").read_text()[-2000:])


@contextlib.contextmanager
def virtual_headset():
    """The audio lab's PulseAudio headset (tests/lab/pulse.py) with a quiet room's pink noise
    looping into its microphone; None when that lab part is not there."""
    if not (ROOT / "tests" / "lab" / "pulse.py").exists():
        yield None
        return
    import numpy as np

    from tests.lab.pulse import RATE, pulse_server

    with pulse_server(set_process_env=False) as server:
        feed = server.add_microphone("headset_mic", "Jabra Evolve2 40", bus="usb",
                                     form_factor="headset", default=True)
        server.add_speaker("headset_out", "Jabra Evolve2 40", bus="usb", form_factor="headset",
                           default=True)
        white = np.random.default_rng(1).normal(0, 1, 10 * RATE)
        pink = np.cumsum(white) - np.convolve(np.cumsum(white), np.ones(400) / 400, "same")
        feed.set_background(0.003 * pink / np.std(pink))   # about -50 dBFS of room noise
        yield server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--interval", type=float, default=15.0)
    parser.add_argument("--only", default=None, help="probe groups (default: all)")
    parser.add_argument("--without-center", action="store_true",
                        help="enroll against a closed port: no delivery, no path/bandwidth "
                             "test (heartbeats pile up in the spool)")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="monitor-cost-"))
    admin = "admin-" + uuid.uuid4().hex
    env = {**os.environ, "AGENT_KIT_HOME": str(work / "agent")}
    center = None
    relay = None
    if args.without_center:
        (work / "agent").mkdir()
        (work / "agent" / "enrollment.json").write_text(json.dumps(
            {"center_url": f"http://127.0.0.1:{free_port()}", "agent_id": "ws-bench",
             "secret": uuid.uuid4().hex, "heartbeat_interval_s": args.interval}))
    else:
        # the path test goes through a pass-through relay (tests/lab/relay.py, no impairment)
        # in this process: its record counts the path-test packets, so the figures are known
        # to include the path bursts against the center's reflector
        udp = free_port(socket.SOCK_DGRAM)
        relay = Relay(("127.0.0.1", 0), ("127.0.0.1", udp), Spec())
        threading.Thread(target=relay.serve, name="relay", daemon=True).start()
        center, url = start_center(work, admin, udp, relay.address)
    try:
        if center is not None:
            token = httpx.post(f"{url}/api/v1/tokens", json={"uses": 1, "ttl_s": 600},
                               headers={"Authorization": f"Bearer {admin}"}).json()["token"]
            subprocess.run([sys.executable, "-m", "agent_kit.face.cli", "enroll", "--center", url,
                            "--token", token], env=env, check=True, capture_output=True)
        with virtual_headset() as headset:
            if headset is not None and hasattr(headset, "env"):
                env.update(headset.env)
            cmd = [sys.executable, "-m", "agent_kit.face.cli", "monitor", "--interval",
                   str(args.interval)]
            if args.only:
                cmd += ["--only", args.only]
            log = (work / "monitor.log").open("wb")
            monitor = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
            proc = psutil.Process(monitor.pid)
            t0, c0 = time.monotonic(), proc.cpu_times()
            load0 = os.getloadavg()
            rss: list[float] = []
            cpu_after_warmup = None
            deadline = t0 + args.minutes * 60
            while time.monotonic() < deadline and monitor.poll() is None:
                rss.append(proc.memory_info().rss / 2**20)
                if cpu_after_warmup is None and time.monotonic() - t0 >= 60:
                    cpu_after_warmup = (time.monotonic(), proc.cpu_times())
                time.sleep(5)
            t1, c1 = time.monotonic(), proc.cpu_times()
            load1 = os.getloadavg()
            full = proc.memory_full_info()
            uss, pss = full.uss / 2**20, full.pss / 2**20
            alive = monitor.poll() is None
            monitor.send_signal(signal.SIGTERM)
            monitor.wait(timeout=30)
            log.close()
        if center is not None:
            agent_id = json.loads((work / "agent" / "enrollment.json").read_text())["agent_id"]
            heartbeats = httpx.get(f"{url}/api/v1/agents/{agent_id}/heartbeats",
                                   params={"limit": 1000},
                                   headers={"Authorization": f"Bearer {admin}"},
                                   timeout=30).json()["heartbeats"]
    finally:
        if relay is not None:
            relay.close()
        if center is not None:
            center.send_signal(signal.SIGTERM)
            center.wait(timeout=30)

    def busy(c: psutil._common.pcputimes) -> float:  # type: ignore[name-defined]
        return float(c.user + c.system + c.children_user + c.children_system)

    state = json.loads((work / "agent" / "gate.json").read_text())
    print(f"machine: {platform.node()} {platform.platform()}, {psutil.cpu_count()} cores, "
          f"Python {platform.python_version()}")
    print("machine load (1/5/15-min averages): at the start "
          f"{' '.join(f'{x:.2f}' for x in load0)}, at the end {' '.join(f'{x:.2f}' for x in load1)}"
          " (the monitor's CPU is its own CPU time, whatever else runs)")
    print(f"center: {'none (--without-center)' if args.without_center else 'agent-center serve'}")
    print(f"run: {(t1 - t0) / 60:.1f} min, interval {args.interval:g} s, groups "
          f"{args.only or 'all'}, virtual headset: {'yes' if headset else 'no (audio unknown)'}"
          f", monitor alive at the end: {alive}")
    print(f"cpu: {100 * (busy(c1) - busy(c0)) / (t1 - t0):.2f} % of one core on average "
          f"(whole run, first full check included)")
    if cpu_after_warmup is not None:
        tw, cw = cpu_after_warmup
        print(f"cpu: {100 * (busy(c1) - busy(cw)) / (t1 - tw):.2f} % of one core after the "
              f"first minute")
    print(f"rss: max {max(rss):.1f} MB, mean {sum(rss) / len(rss):.1f} MB "
          f"({len(rss)} samples); at the end uss {uss:.1f} MB (private), pss {pss:.1f} MB")
    print(f"heartbeats: {state['delivery']['next_seq'] - 1} spooled, "
          f"{state['delivery']['pending']} pending at the end; gate open: {state['gate_open']}")
    if center is not None:
        print(f"checks in the {len(heartbeats)} heartbeats the center stored (status counts; "
              f"distinct values = measurements):")
        for check_id, line in check_summary(heartbeats):
            print(f"  {check_id}: {line}")
    if relay is not None:
        print(f"path test at the reflector (relay's record): {burst_summary(relay.records)}")
    print(f"files kept in {work}")
    if center is not None and not measured(heartbeats, "network.rtt"):
        raise SystemExit("the path test never measured network.rtt against the center's "
                         "reflector: the figures above do not include it")


def check_summary(heartbeats: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """Per check id: how many heartbeats carried each status, and how many distinct values
    (each burst of a unit gives a new value; a cached result repeats the last one)."""
    statuses: dict[str, dict[str, int]] = {}
    values: dict[str, set[float]] = {}
    for beat in heartbeats:
        for check in beat["checks"]:
            counts = statuses.setdefault(check["id"], {})
            counts[check["status"]] = counts.get(check["status"], 0) + 1
            if check.get("value") is not None:
                values.setdefault(check["id"], set()).add(check["value"])
    lines = []
    for check_id, counts in statuses.items():
        distinct = values.get(check_id, set())
        shown = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
        span = f"; {len(distinct)} distinct values, {min(distinct):g}..{max(distinct):g}" \
            if distinct else "; no value"
        lines.append((check_id, shown + span))
    return lines


def burst_summary(records: list[Record]) -> str:
    """Path-test packets (AKPT) the monitor sent, grouped into bursts (a gap over 5 s)."""
    times = sorted(r.rx_ns / 1e9 for r in records if r.direction == "up" and r.seq is not None)
    if not times:
        return "no path-test packet at all"
    bursts: list[list[float]] = [[times[0]]]
    for t in times[1:]:
        if t - bursts[-1][-1] > 5.0:
            bursts.append([])
        bursts[-1].append(t)
    lengths = sorted(b[-1] - b[0] for b in bursts)
    gaps = [b[0] - a[0] for a, b in zip(bursts, bursts[1:], strict=False)]
    every = f", one every {sum(gaps) / len(gaps):.0f} s on average" if gaps else ""
    return (f"{len(times)} packets in {len(bursts)} bursts{every}, burst length median "
            f"{lengths[len(lengths) // 2]:.1f} s (a bandwidth test's latency probes count too)")


def measured(heartbeats: list[dict[str, Any]], check_id: str) -> bool:
    return any(c["id"] == check_id and c.get("value") is not None
               for beat in heartbeats for c in beat["checks"])


if __name__ == "__main__":
    main()
