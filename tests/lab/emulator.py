"""Lab part: a link emulator (the lab's netem for TCP and UDP alike) between home and center.

Design (the simplest that works, and why there is no routing loop): one TUN device per side.
The emulator process runs in its own router namespace and creates two TUN devices there, then
moves one into the home namespace and one into the center namespace; the open file descriptors
stay with the process. Home's TUN is a point-to-point link 192.0.2.1 -> 192.0.2.2, center's the
reverse. What home's kernel sends to the center comes out of home's TUN descriptor (``up``);
the emulator writes it into center's TUN descriptor, so center's kernel receives it as if it had
arrived on its own interface, and the reverse for ``down``. No kernel ever forwards a packet,
so nothing is routed back into the TUN it came out of (no ``ip rule`` needed), and each packet
costs one read and one write in user space, nothing more.

Per direction (``down`` = center -> home, ``up`` = home -> center), in this order:

1. loss: random (``loss_pct``) and Gilbert-Elliott bursty loss (state good/bad: ``ge_p`` =
   P(good -> bad), ``ge_r`` = P(bad -> good) per packet, loss probability ``ge_loss_bad`` in bad
   and ``ge_loss_good`` in good; with 1 and 0 the mean burst is 1 / ge_r packets and the loss
   rate ge_p / (ge_p + ge_r));
2. the bottleneck: a FIFO drained by a token bucket (``rate_mbit``, ``burst_bytes``; IP bytes),
   tail drop when the packet's wait in the queue would exceed ``queue_ms`` or when
   ``queue_packets`` packets are already waiting;
3. one-way delay ``delay_ms`` plus jitter: U(0, ``jitter_ms``) extra per packet; without
   ``reorder`` a packet never leaves before the one ahead of it (the extra delay is raised to
   keep FIFO order, as on a real link), with ``reorder`` each packet keeps its own draw and may
   overtake.

Every packet's fate is computed at arrival (when its departure from the token bucket is
already known, FIFO) and appended to compact ``array`` columns: arrival and actual departure
(``time.monotonic``, the machine-wide CLOCK_MONOTONIC, so tests can compare with their own
stamps), the total delay applied, the queue delay and queue depth (packets) it found, the drop
reason, size, protocol and ports. That record is the ground truth; nothing here imports from
``probes/`` or ``agent_kit/``.

Parameters change at run time over a Unix control socket (``Emulator.set``, ``Emulator.reset``)
without touching the namespaces. ``emulated_link()`` builds it all and yields an
``EmulatedLink``, a ``NetnsPair`` whose ``emulator`` is the control client.

Run by hand: ``ip netns exec R python -m tests.lab.emulator --control /tmp/emu.sock --tuns
tunh tunc`` (prints ``ready`` once both TUNs exist); docs/lab.md has the recipe and the rates
it sustains.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import gc
import itertools
import json
import os
import random
import select
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from array import array
from collections import deque
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from heapq import heappop, heappush
from pathlib import Path
from typing import Any

from tests.lab.netns import LabError, NetnsPair, require_tools, sh

ROOT = Path(__file__).resolve().parents[2]
HOME_ADDR = "192.0.2.1"
CENTER_ADDR = "192.0.2.2"
DIRECTIONS = ("down", "up")
# drop reasons in the record
NOT_DROPPED, DROP_RANDOM, DROP_GE, DROP_QUEUE = 0, 1, 2, 3
DROP_REASONS = {NOT_DROPPED: "delivered", DROP_RANDOM: "random loss",
                DROP_GE: "Gilbert-Elliott loss", DROP_QUEUE: "queue full (tail drop)"}
READ_BATCH = 64              # packets read from one TUN before sending what is due
MAX_RECORD = 8_000_000       # packets kept per record (about 300 MB); beyond, not recorded
COLUMNS = (("direction", "b"), ("arrival", "d"), ("departure", "d"), ("delay_ms", "d"),
           ("queue_delay_ms", "d"), ("queue_packets", "I"), ("dropped", "b"), ("size", "H"),
           ("proto", "B"), ("sport", "H"), ("dport", "H"))
_counter = itertools.count()


@dataclass(frozen=True)
class LineSpec:
    """One direction's impairments; the defaults are a perfect link."""

    rate_mbit: float = 0.0          # 0: no rate limit
    burst_bytes: int = 3028         # token bucket depth: two full-size packets
    delay_ms: float = 0.0
    jitter_ms: float = 0.0
    reorder: bool = False
    loss_pct: float = 0.0
    ge_p: float = 0.0               # Gilbert-Elliott P(good -> bad) per packet; 0: off
    ge_r: float = 1.0               # P(bad -> good)
    ge_loss_bad: float = 1.0
    ge_loss_good: float = 0.0
    queue_ms: float | None = None   # tail drop when the wait would exceed this
    queue_packets: int | None = 1000
    seed: int = 1

    def __post_init__(self) -> None:
        if min(self.rate_mbit, self.burst_bytes, self.delay_ms, self.jitter_ms,
               self.loss_pct) < 0 or self.loss_pct > 100:
            raise ValueError(f"line values out of range: {self}")
        for p in (self.ge_p, self.ge_r, self.ge_loss_bad, self.ge_loss_good):
            if not 0 <= p <= 1:
                raise ValueError(f"Gilbert-Elliott probabilities must be in [0, 1]: {self}")
        if self.rate_mbit and self.burst_bytes < 1500:
            raise ValueError("burst_bytes must hold a full-size packet (1500 bytes)")


class Emulator:
    """Control client: ``set`` lines, ``reset``, read the ``record`` (see the module doc)."""

    def __init__(self, control_path: str) -> None:
        self.control_path = control_path

    def _call(self, request: dict[str, Any], timeout: float = 30) -> dict[str, Any]:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(self.control_path)
            sock.sendall(json.dumps(request).encode() + b"\n")
            data = b""
            while not data.endswith(b"\n"):
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
        answer: dict[str, Any] = json.loads(data)
        if "error" in answer:
            raise LabError(f"emulator: {answer['error']}")
        return answer

    def set(self, down: LineSpec | None = None, up: LineSpec | None = None) -> None:
        """Replace the given directions' lines (queued packets keep their fate); the record
        goes on."""
        self._call({"op": "set", **{k: asdict(v) for k, v in (("down", down), ("up", up))
                                     if v is not None}})

    def reset(self) -> None:
        """Both directions back to a perfect link, queues and loss state cleared, record
        emptied."""
        self._call({"op": "reset"})

    def clear_record(self) -> None:
        """Empty the record only (the lines stay as set)."""
        self._call({"op": "clear"})

    def stats(self) -> dict[str, Any]:
        """Packets seen per direction, CPU seconds the emulator used, its clock."""
        return self._call({"op": "stats"})

    def record(self) -> Record:
        """The per-packet ground truth so far (numpy arrays)."""
        import numpy as np

        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "record.npz")
            self._call({"op": "record", "path": path})
            with np.load(path) as data:
                return Record(**{name: data[name] for name, _ in COLUMNS})


@dataclass(frozen=True)
class Record:
    """The emulator's per-packet record, one numpy array per column, in arrival order per
    direction (0 down, 1 up). ``departure`` is NaN for a dropped packet (or one still
    queued); ``dropped`` holds the reason (``DROP_REASONS``)."""

    direction: Any
    arrival: Any
    departure: Any
    delay_ms: Any
    queue_delay_ms: Any
    queue_packets: Any
    dropped: Any
    size: Any
    proto: Any
    sport: Any
    dport: Any

    def select(self, direction: str, *, proto: int | None = None,
               dport: int | None = None, sport: int | None = None) -> Any:
        """Boolean mask of one direction's packets, optionally of one protocol and port."""
        mask = self.direction == DIRECTIONS.index(direction)
        if proto is not None:
            mask &= self.proto == proto
        if dport is not None:
            mask &= self.dport == dport
        if sport is not None:
            mask &= self.sport == sport
        return mask


# ---------------------------------------------------------------------------------------------
# the emulator process


class _Loop:
    """The forwarding loop: one thread, select on both TUNs and the control socket."""

    def __init__(self, tun_names: tuple[str, str], control_path: str) -> None:
        import pytun

        flags = pytun.IFF_TUN | pytun.IFF_NO_PI
        # index 0: home's TUN (packets home sends: up), 1: center's (down)
        self.tuns = [pytun.TunTapDevice(name=name, flags=flags) for name in tun_names]
        self.fds = [t.fileno() for t in self.tuns]
        for fd in self.fds:
            os.set_blocking(fd, False)
        # out_fd: up goes into the center's TUN, down into home's
        self.dirs = [_DirState(0, self.fds[0]), _DirState(1, self.fds[1])]
        self.ctl = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.ctl.bind(control_path)
        self.ctl.listen(4)
        self.ctl.setblocking(False)
        self.gen = 0
        self._new_record()

    def _new_record(self) -> None:
        self.gen += 1
        self.cols = {name: array(code) for name, code in COLUMNS}
        self.count = 0
        self.unrecorded = 0
        for d in self.dirs:
            d.bind_record(self.cols, self.gen)

    def serve(self) -> None:
        home_fd, center_fd = self.fds
        ctl_fd = self.ctl.fileno()
        watched = [home_fd, center_fd, ctl_fd]
        up, down = self.dirs[1], self.dirs[0]
        mono, wait_readable = time.monotonic, select.select
        while True:
            now = mono()
            due = min(down.next_due, up.next_due)
            timeout = min(0.2, max(0.0, due - now)) if due < float("inf") else 0.2
            # select, not epoll: its timeout is in microseconds (epoll_wait's in whole
            # milliseconds would add up to 1 ms to every delay)
            for fd in wait_readable(watched, [], [], timeout)[0]:
                if fd == home_fd:
                    up.ingest(home_fd)
                elif fd == center_fd:
                    down.ingest(center_fd)
                elif self._control():
                    return
            now = mono()
            if down.next_due <= now:
                down.flush(now)
            if up.next_due <= now:
                up.flush(now)

    def _control(self) -> bool:
        """Answer one control request; True to stop."""
        try:
            conn, _ = self.ctl.accept()
        except BlockingIOError:
            return False
        with conn:
            conn.settimeout(5)
            data = b""
            while not data.endswith(b"\n"):
                chunk = conn.recv(65536)
                if not chunk:
                    break
                data += chunk
            stop = False
            try:
                request = json.loads(data)
                op = request["op"]
                answer: dict[str, Any] = {"ok": True}
                if op == "set":
                    for name in DIRECTIONS:
                        if name in request:
                            self.dirs[DIRECTIONS.index(name)].configure(
                                LineSpec(**request[name]))
                elif op == "reset":
                    for d in self.dirs:
                        d.configure(LineSpec())
                        d.release_all()
                    self._new_record()
                elif op == "clear":
                    self._new_record()
                elif op == "stats":
                    usage = os.times()
                    answer.update(cpu_s=usage.user + usage.system, clock=time.monotonic(),
                                  packets={n: self.dirs[i].seen
                                           for i, n in enumerate(DIRECTIONS)},
                                  recorded=len(self.cols["arrival"]))
                elif op == "record":
                    self._dump(request["path"])
                elif op == "stop":
                    stop = True
                else:
                    answer = {"error": f"unknown op {op!r}"}
            except (ValueError, KeyError, TypeError) as exc:
                answer = {"error": f"{type(exc).__name__}: {exc}"}
            conn.sendall(json.dumps(answer).encode() + b"\n")
            return stop

    def _dump(self, path: str) -> None:
        import numpy as np

        columns: dict[str, Any] = {
            name: np.frombuffer(col, dtype=col.typecode) if len(col) else
            np.zeros(0, dtype=col.typecode) for name, col in self.cols.items()}
        np.savez(path, **columns)


class _DirState:
    """One direction in the emulator process (see the module doc for the stages)."""

    def __init__(self, code: int, out_fd: int) -> None:
        self.code, self.out_fd = code, out_fd
        self.seen = 0
        self.next_due = float("inf")
        self.fifo: deque[tuple[float, bytes, int, int]] = deque()   # (out time, packet, gen, i)
        self.heap: list[tuple[float, int, bytes, int, int]] = []    # reordering: (out, n, ...)
        self.cols: dict[str, array[Any]] = {}
        self.gen = 0
        self.last_out = 0.0       # scheduled time of the last FIFO packet
        self.spec = LineSpec()
        self.configure(self.spec)

    def bind_record(self, cols: dict[str, array[Any]], gen: int) -> None:
        self.cols, self.gen = cols, gen

    def configure(self, spec: LineSpec) -> None:
        was_reordering = self.spec.reorder
        self.spec = spec
        self.rng = random.Random(f"{spec.seed}:{DIRECTIONS[self.code]}")
        self.rate_Bps = spec.rate_mbit * 1e6 / 8
        self.bucket_at = 0.0                # the bucket's state is as of this time
        self.tokens = float(spec.burst_bytes)
        self.queued: deque[float] = deque()  # bottleneck departure times still ahead
        self.ge_bad = False
        if was_reordering and not spec.reorder:
            self.release_all()

    def release_all(self) -> None:
        """Send every scheduled packet now (a reset or a switch of the scheduling)."""
        now = time.monotonic()
        self._flush_fifo(float("inf"), now)
        while self.heap:
            _out, _n, packet, gen, i = heappop(self.heap)
            self._send(packet, gen, i, now)
        self.next_due = float("inf")
        self.last_out = 0.0

    def _send(self, packet: bytes, gen: int, i: int, now: float) -> None:
        try:
            os.write(self.out_fd, packet)
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.EIO, errno.EINVAL):
                raise
            return   # the TUN is not up (yet): the packet is lost like on a dead link
        if gen == self.gen and i >= 0:
            self.cols["departure"][i] = now

    def ingest(self, fd: int) -> None:
        """Read up to READ_BATCH packets and give each its fate."""
        spec, rng, cols = self.spec, self.rng, self.cols
        rate, burst = self.rate_Bps, spec.burst_bytes
        mono, read, rnd = time.monotonic, os.read, rng.random
        queued = self.queued
        loss_p = spec.loss_pct / 100
        ge_p, ge_r = spec.ge_p, spec.ge_r
        qlim_s = None if spec.queue_ms is None else spec.queue_ms / 1000
        qlim_n = spec.queue_packets
        delay_s, jitter_s, reorder = spec.delay_ms / 1000, spec.jitter_ms / 1000, spec.reorder
        c_dir, c_arr, c_dep, c_delay = (cols["direction"], cols["arrival"], cols["departure"],
                                        cols["delay_ms"])
        c_qd, c_qn, c_drop, c_size = (cols["queue_delay_ms"], cols["queue_packets"],
                                      cols["dropped"], cols["size"])
        c_proto, c_sport, c_dport = cols["proto"], cols["sport"], cols["dport"]
        code, gen, nan = self.code, self.gen, float("nan")
        for _ in range(READ_BATCH):
            try:
                packet = read(fd, 65536)
            except BlockingIOError:
                break
            now = mono()
            self.seen += 1
            size = len(packet)
            # stage 1: loss
            reason = NOT_DROPPED
            if loss_p and rnd() < loss_p:
                reason = DROP_RANDOM
            if ge_p:
                # transition first, then the state's loss draw (always drawn: fixed order)
                if self.ge_bad:
                    if rnd() < ge_r:
                        self.ge_bad = False
                elif rnd() < ge_p:
                    self.ge_bad = True
                lost = rnd() < (spec.ge_loss_bad if self.ge_bad else spec.ge_loss_good)
                if lost and reason == NOT_DROPPED:
                    reason = DROP_GE
            # stage 2: the token bucket's FIFO
            while queued and queued[0] <= now:
                queued.popleft()
            depth = len(queued)
            if rate:
                start = self.bucket_at if self.bucket_at > now else now
                tokens = self.tokens + (start - self.bucket_at) * rate
                if tokens > burst:
                    tokens = burst
                if tokens >= size:
                    leave, left = start, tokens - size
                else:
                    leave, left = start + (size - tokens) / rate, 0.0
            else:
                leave, left = now, 0.0
            wait = leave - now
            if reason == NOT_DROPPED and ((qlim_n is not None and depth >= qlim_n)
                                          or (qlim_s is not None and wait > qlim_s)):
                reason = DROP_QUEUE
            if reason == NOT_DROPPED and rate:
                self.bucket_at, self.tokens = leave, left
                if leave > now:
                    queued.append(leave)
            i = len(c_arr)
            if i < MAX_RECORD:
                c_dir.append(code)
                c_arr.append(now)
                c_dep.append(nan)
                c_qd.append(wait * 1000)
                c_qn.append(depth)
                c_drop.append(reason)
                c_size.append(size if size < 65536 else 65535)
                proto = packet[9] if size >= 20 else 0
                c_proto.append(proto)
                ihl = (packet[0] & 15) * 4
                if proto in (6, 17) and size >= ihl + 4:
                    c_sport.append(packet[ihl] << 8 | packet[ihl + 1])
                    c_dport.append(packet[ihl + 2] << 8 | packet[ihl + 3])
                else:
                    c_sport.append(0)
                    c_dport.append(0)
            else:
                i = -1
            if reason != NOT_DROPPED:
                if i >= 0:
                    c_delay.append(nan)
                continue
            # stage 3: delay and jitter
            out = leave + delay_s
            if jitter_s:
                out += rnd() * jitter_s
            if reorder:
                heappush(self.heap, (out, self.seen, packet, gen, i))
                if out < self.next_due:
                    self.next_due = out
            else:
                if out < self.last_out:
                    out = self.last_out    # no overtaking: wait for the packet ahead
                self.last_out = out
                self.fifo.append((out, packet, gen, i))
                if self.next_due == float("inf"):
                    self.next_due = out
            if i >= 0:
                c_delay.append((out - now) * 1000)
            if out <= now:
                self.flush(now)

    def _flush_fifo(self, until: float, now: float) -> None:
        fifo, send = self.fifo, self._send
        while fifo and fifo[0][0] <= until:
            _out, packet, gen, i = fifo.popleft()
            send(packet, gen, i, now)

    def flush(self, now: float) -> None:
        """Send every packet whose time has come; set ``next_due``."""
        self._flush_fifo(now, now)
        heap = self.heap
        while heap and heap[0][0] <= now:
            _out, _n, packet, gen, i = heappop(heap)
            self._send(packet, gen, i, now)
        nxt = self.fifo[0][0] if self.fifo else float("inf")
        if heap and heap[0][0] < nxt:
            nxt = heap[0][0]
        self.next_due = nxt


def _main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--control", required=True, help="Unix socket path for the control")
    parser.add_argument("--tuns", nargs=2, required=True, metavar=("HOME_TUN", "CENTER_TUN"))
    parser.add_argument("--no-realtime", dest="realtime", action="store_false",
                        help="run at normal priority (timing then follows the machine's load)")
    args = parser.parse_args()
    loop = _Loop((args.tuns[0], args.tuns[1]), args.control)
    # nothing here makes reference cycles; a collector pass over the queued packets' tuples
    # would stall the link for milliseconds
    gc.disable()
    if args.realtime:
        # A link's timing must not wait for the scheduler: on a loaded machine a plain process
        # wakes up to 5 ms late. SCHED_FIFO runs it as soon as its timer fires; it sleeps in
        # select whenever nothing is due, and the kernel's RT throttling bounds it anyway.
        with contextlib.suppress(OSError):
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(10))
    print("ready", flush=True)
    loop.serve()


# ---------------------------------------------------------------------------------------------
# the lab part


@dataclass
class EmulatedLink(NetnsPair):
    """A ``NetnsPair`` whose home and center talk through the emulator (``emulator``)."""

    router: str = ""
    emulator: Emulator = field(default_factory=lambda: Emulator(""))


@contextlib.contextmanager
def emulated_link(*, txqueuelen: int = 1000) -> Iterator[EmulatedLink]:
    """Build home, router and center namespaces with the emulator between them; always torn
    down. Home is 192.0.2.1, the center 192.0.2.2; the link starts perfect."""
    require_tools("ip")
    tag = f"{os.getpid() % 100000}e{next(_counter)}"
    home, center, router = f"akh{tag}", f"akc{tag}", f"akr{tag}"
    tun_home, tun_center = f"th{tag}", f"tc{tag}"
    tmp = tempfile.mkdtemp(prefix="akemu")
    control = os.path.join(tmp, "control.sock")
    proc: subprocess.Popen[str] | None = None
    log = open(os.path.join(tmp, "emulator.log"), "w+", encoding="utf-8")  # noqa: SIM115
    try:
        for ns in (home, center, router):
            sh("ip", "netns", "add", ns)
        proc = subprocess.Popen(["ip", "netns", "exec", router, sys.executable, "-m",
                                 "tests.lab.emulator", "--control", control, "--tuns",
                                 tun_home, tun_center],
                                stdout=subprocess.PIPE, stderr=log, text=True, cwd=str(ROOT))
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if line.strip() != "ready":
            proc.kill()
            proc.communicate(timeout=5)
            raise LabError(f"emulator did not start: {line!r} "
                           f"{Path(log.name).read_text('utf-8', 'replace')[-2000:]}")
        for tun, ns, local, peer in ((tun_home, home, HOME_ADDR, CENTER_ADDR),
                                     (tun_center, center, CENTER_ADDR, HOME_ADDR)):
            sh("ip", "-n", router, "link", "set", tun, "netns", ns)
            sh("ip", "-n", ns, "addr", "add", local, "peer", peer, "dev", tun)
            sh("ip", "-n", ns, "link", "set", tun, "txqueuelen", str(txqueuelen), "up")
            sh("ip", "-n", ns, "link", "set", "lo", "up")
        yield EmulatedLink(home=home, center=center, home_if=tun_home, center_if=tun_center,
                           router=router, emulator=Emulator(control))
    finally:
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(LabError, OSError, ValueError):
                Emulator(control)._call({"op": "stop"}, timeout=5)
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        if proc is not None and proc.stdout is not None:
            proc.stdout.close()
        log.close()
        for ns in (home, center, router):
            sh("ip", "netns", "del", ns, check=False)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    _main()
