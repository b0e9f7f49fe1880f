"""Download and upload speed, and latency under load, with speedtest-cli's protocol and plumbing.

The server is the contact center's own endpoint (speedtest-cli's "mini server" protocol, served
by ``agent-center serve`` under ``/speedtest/``), so the test measures the path calls take and
needs no internet test service; speedtest.net's public servers stay an option (``public=True``).

speedtest-cli (2.1.3) is used for what it does well: the mini-server handshake
(``set_mini_server``), its HTTP latency figure (``get_best_server``), its request builder (cache
busters) and HTTP(S) handlers (source address, timeouts), and, with ``public=True``, the
speedtest.net configuration and server selection. Two of its weaknesses are designed around
(STANDARDS.md):

- it fetches speedtest.net's configuration in ``Speedtest.__init__`` even for a mini server:
  ``_OfflineSpeedtest`` supplies that configuration itself, so no internet is needed;
- it under-reports fast lines (its issues #649, #730): its figure is all bytes over all the time,
  TCP slow start, connection set-up and the tail of many short requests included. Here a few
  long-lived parallel streams carry the load; a byte counter is sampled every 100 ms (uploads:
  the bytes the receiver acknowledged, Linux ``TCP_INFO``); the warm-up (until the rate stops
  rising, and past the refill of any early loss) is excluded; the rate is the least-squares
  slope of the byte count over a window that stops as soon as it is steady
  (``steady_window``), so a steady line is done in about 1.5-2 s per direction and the whole
  phase stays within ``max_duration_s`` (8 s by default).

Latency under load (bufferbloat) is the path probe's RTT to the center's UDP reflector measured
while each direction is loaded, minus the idle RTT measured just before (``probes.network.path``).
"""

from __future__ import annotations

import contextlib
import os
import socket
import statistics
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

SAMPLE_S = 0.1                # byte counter sampling period
MIN_WARMUP_S = 0.4            # never trust the first 0.4 s (connection set-up, slow start)
MIN_MEASURE_S = 1.0           # shortest measured window after warm-up ...
MIN_MEASURE_BYTES = 768 * 1024  # ... and it holds at least this much (1.3 s at 5 Mbit/s)
STEADY_TOLERANCE = 0.04       # the two halves of the window agree within 4 %: steady
SPIKE_RATIO = 0.4            # a 100 ms sample 40 % above the median ...
SPIKE_MIN_BYTES = 64 * 1024  # ... and 64 KiB above it is a refilled hole, not noise
LOADED_REPLY_WAIT_S = 0.6    # echoes may sit in a bloated queue: wait this long for them
IDLE_RTT_S = 0.6              # idle path test before loading
CENTER_DOWNLOAD_SIDE = 7000   # random7000x7000.jpg: 98 MB, so a stream rarely reconnects
PUBLIC_DOWNLOAD_SIDE = 4000   # the largest file speedtest.net servers carry
CENTER_UPLOAD_BYTES = 256 * 1024 * 1024   # declared per upload request; cut short when done
PUBLIC_UPLOAD_BYTES = 7340032  # the largest upload speedtest-cli makes
NOTSENT_LOWAT = 16 * 1024     # bytes queued unsent per socket: upload counts what left, not RAM
LOAD_CONGESTION_CONTROL = b"reno"  # classic slow start: fills the queue fast (see _opener)

# What speedtest.net's configuration would say, so that a mini server needs no internet: the
# values of speedtest.net's usual configuration (threadcount 4, download threadsperurl 4,
# upload ratio 5, maxchunkcount 50, threads 2, testlength 10 s). ``stock`` tests use them as is.
STOCK_CONFIG: dict[str, Any] = {
    "client": {"ip": "", "lat": "0", "lon": "0", "isp": "", "country": ""},
    "ignore_servers": [],
    "sizes": {"upload": [524288, 1048576, 7340032],
              "download": [350, 500, 750, 1000, 1500, 2000, 2500, 3000, 3500, 4000]},
    "counts": {"upload": 17, "download": 4},
    "threads": {"upload": 2, "download": 8},
    "length": {"upload": 10, "download": 10},
    "upload_max": 51,
}


class BandwidthError(Exception):
    """The bandwidth endpoint could not be used; ``str()`` says why in one line."""


@dataclass(frozen=True)
class DirectionReading:
    """One direction's throughput: bytes counted over the steady window after warm-up."""

    mbit_s: float | None          # None when nothing was measured
    measured_bytes: int           # bytes in the measured window
    measured_s: float             # length of the measured window
    warmup_s: float               # excluded start (connection set-up, slow start)
    elapsed_s: float              # wall time of the whole direction
    total_bytes: int              # everything transferred, warm-up included
    streams: int
    steady: bool                  # stopped because the rate was steady (not the time limit)
    stream_errors: int = 0
    problem: str | None = None
    trace_mbit_s: tuple[float, ...] = ()   # rate in each 100 ms sample, warm-up included
    counted: str = "read"         # "read" by the app, "acked" by the receiver, or "sent"


@dataclass(frozen=True)
class BandwidthReading:
    server_url: str
    download: DirectionReading
    upload: DirectionReading
    http_latency_ms: float | None          # speedtest-cli's own figure (get_best_server)
    idle_rtt_ms: float | None              # path probe, link idle
    loaded_rtt_down_ms: float | None       # path probe while downloading
    loaded_rtt_up_ms: float | None         # path probe while uploading
    latency_problem: str | None            # why there is no latency-under-load figure
    duration_s: float
    rtt_samples: dict[str, int] = field(default_factory=dict)

    @property
    def latency_increase_ms(self) -> float | None:
        """The worse direction's RTT increase under load (bufferbloat), in ms."""
        from probes.bandwidth.bufferbloat import latency_increase_ms

        if self.idle_rtt_ms is None:
            return None
        loaded = [v for v in (self.loaded_rtt_down_ms, self.loaded_rtt_up_ms) if v is not None]
        if not loaded:
            return None
        return latency_increase_ms(self.idle_rtt_ms, max(loaded))


def _speedtest_module() -> Any:
    import speedtest  # type: ignore[import-untyped]  # no stubs: 2.1.3 is unmaintained

    return speedtest


def _offline_speedtest_class() -> type[Any]:
    speedtest = _speedtest_module()

    class _OfflineSpeedtest(speedtest.Speedtest):  # type: ignore[misc, name-defined]
        """speedtest-cli's client with the configuration supplied here, not downloaded."""

        def get_config(self) -> dict[str, Any]:
            self.config.update({k: (dict(v) if isinstance(v, dict) else v)
                                for k, v in STOCK_CONFIG.items()})
            self.lat_lon = (0.0, 0.0)
            config: dict[str, Any] = self.config
            return config

    return _OfflineSpeedtest


def make_speedtest(*, public: bool = False, timeout_s: float = 10.0,
                   source_address: str | None = None) -> Any:
    """A ``speedtest.Speedtest``: offline-configured for a mini server, stock for public."""
    speedtest = _speedtest_module()
    cls = speedtest.Speedtest if public else _offline_speedtest_class()
    return cls(timeout=timeout_s, source_address=source_address)


def _opener(timeout_s: float, source_address: str | None) -> Any:
    """speedtest-cli's opener, with connections that keep little unsent data queued.

    ``TCP_NOTSENT_LOWAT`` (Linux, macOS) makes a send return only when little is left unsent,
    so the upload's byte count follows what the line carried, not what the kernel buffered.
    ``TCP_CONGESTION`` (Linux) asks for Reno, allowed to every user: the load must fill the home
    router's queue the way a long upload does (CUBIC, the default of Windows, macOS and Linux,
    fills it in tens of seconds; Reno's classic slow start, without CUBIC's HyStart exit, fills
    it within the test's few seconds). A machine set to BBR would otherwise keep that queue
    nearly empty and hide the bufferbloat (measured in the lab: one run in about 15 graded a
    300 ms queue +42 ms). Where Reno cannot be set, the system default stays.
    """
    import urllib.request

    speedtest = _speedtest_module()

    def tune(sock: socket.socket) -> None:
        counter = getattr(_thread_counter, "counter", None)
        if counter is not None:
            counter.register(sock)
        lowat = getattr(socket, "TCP_NOTSENT_LOWAT", None)
        if lowat is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, lowat, NOTSENT_LOWAT)
        congestion = getattr(socket, "TCP_CONGESTION", None)
        if congestion is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, congestion, LOAD_CONGESTION_CONTROL)

    class _Connection(speedtest.SpeedtestHTTPConnection):  # type: ignore[misc, name-defined]
        def connect(self) -> None:
            super().connect()
            tune(self.sock)

    class _Handler(speedtest.SpeedtestHTTPHandler):  # type: ignore[misc, name-defined]
        def http_open(self, req: Any) -> Any:
            return self.do_open(speedtest._build_connection(
                _Connection, self.source_address, self.timeout), req)

    handlers: list[Any] = [urllib.request.ProxyHandler(),
                           _Handler(source_address=source_address, timeout=timeout_s)]
    if getattr(speedtest, "HTTPSConnection", None) is not None:
        class _SecureConnection(speedtest.SpeedtestHTTPSConnection):  # type: ignore[misc, name-defined]
            def connect(self) -> None:
                super().connect()
                tune(self.sock)

        class _SecureHandler(speedtest.SpeedtestHTTPSHandler):  # type: ignore[misc, name-defined]
            def https_open(self, req: Any) -> Any:
                return self.do_open(speedtest._build_connection(
                    _SecureConnection, self.source_address, self.timeout,
                    context=self._context), req)

        handlers.append(_SecureHandler(source_address=source_address, timeout=timeout_s))
    handlers += [urllib.request.HTTPDefaultErrorHandler(), urllib.request.HTTPRedirectHandler(),
                 urllib.request.HTTPErrorProcessor()]
    opener = urllib.request.OpenerDirector()
    for handler in handlers:
        opener.add_handler(handler)
    opener.addheaders = [("User-agent", speedtest.build_user_agent())]
    return opener


_TCPI_BYTES_ACKED = 120   # offset of tcpi_bytes_acked (u64) in Linux's struct tcp_info (4.2+)
_thread_counter = threading.local()   # the upload counter of the worker thread, if any


def _bytes_acked(sock: socket.socket) -> int | None:
    """Bytes of this connection the receiver has acknowledged (Linux ``TCP_INFO``), or None."""
    option = getattr(socket, "TCP_INFO", None)
    if option is None:
        return None
    try:
        info = sock.getsockopt(socket.IPPROTO_TCP, option, 256)
    except OSError:
        return None
    if len(info) < _TCPI_BYTES_ACKED + 8:
        return None
    return int(struct.unpack_from("Q", info, _TCPI_BYTES_ACKED)[0])


class _ByteCounter:
    """Bytes moved by one direction's streams, read by the sampler every 100 ms.

    Downloads count what the application read (delivered, in order). Uploads prefer what the
    receiver acknowledged (``tcpi_bytes_acked``), which sockets register as they connect; the
    bytes handed to the socket are the fallback where the OS does not tell.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.total = 0           # bytes read (download) or handed to the socket (upload)
        self.errors = 0
        self.last_error: str | None = None
        self._sockets: list[socket.socket] = []
        self._acked: list[int] = []   # last value seen per socket, kept after it closes
        self._acked_usable = True

    def add(self, n: int) -> None:
        with self._lock:
            self.total += n

    def error(self, exc: BaseException) -> None:
        with self._lock:
            self.errors += 1
            self.last_error = f"{type(exc).__name__}: {exc}"

    def register(self, sock: socket.socket) -> None:
        first = _bytes_acked(sock)
        with self._lock:
            if first is None:
                self._acked_usable = False
            self._sockets.append(sock)
            self._acked.append(first or 0)

    @property
    def counts_acked(self) -> bool:
        return self._acked_usable and bool(self._sockets)

    def sample(self) -> int:
        """Bytes so far: acknowledged by the receiver when known, else counted locally."""
        with self._lock:
            if not (self._acked_usable and self._sockets):
                return self.total
            for i, sock in enumerate(self._sockets):
                value = _bytes_acked(sock)   # None once closed: keep the last value
                if value is not None and value > self._acked[i]:
                    self._acked[i] = value
            return sum(self._acked)


def _download_worker(opener: Any, url: str, counter: _ByteCounter, stop: threading.Event,
                     index: int) -> None:
    speedtest = _speedtest_module()
    n = 0
    while not stop.is_set():
        try:
            response = opener.open(speedtest.build_request(url, bump=f"{index}{n}"))
            try:
                while not stop.is_set():
                    got = len(response.read1(65536))
                    if got == 0:
                        break
                    counter.add(got)
            finally:
                response.close()
        except Exception as exc:  # noqa: BLE001 - a failing stream is counted, not fatal
            counter.error(exc)
            if stop.wait(0.2):
                break
        n += 1


class _GeneratedBody:
    """An upload body made of zeros as it is sent; counts what is read; ends on ``stop``.

    Raising speedtest-cli's own ``SpeedtestUploadTimeout`` aborts the request mid-body, as
    speedtest-cli does when its test length is reached.
    """

    _BLOCK = bytes(65536)
    _VIEW = memoryview(_BLOCK)

    def __init__(self, size: int, counter: _ByteCounter, stop: threading.Event) -> None:
        self.size, self.left, self.counter, self.stop = size, size, counter, stop

    def read(self, n: int = 8192) -> memoryview:
        if self.stop.is_set():
            raise _speedtest_module().SpeedtestUploadTimeout()
        # http.client asks for 8 KiB; when the receiver's acks are counted, the size of what
        # is handed over does not matter, and 64 KiB costs an eighth of the Python overhead.
        if self.counter.counts_acked:
            n = len(self._BLOCK)
        n = min(n, self.left, len(self._BLOCK))
        self.left -= n
        self.counter.add(n)
        return self._VIEW[:n]

    def __len__(self) -> int:
        return self.size


def _upload_worker(opener: Any, url: str, size: int, counter: _ByteCounter,
                   stop: threading.Event, index: int) -> None:
    speedtest = _speedtest_module()
    _thread_counter.counter = counter   # sockets this thread opens report their acked bytes
    n = 0
    while not stop.is_set():
        body = _GeneratedBody(size, counter, stop)
        try:
            request = speedtest.build_request(url, data=body, bump=f"{index}{n}",
                                              headers={"Content-length": str(size)})
            response = opener.open(request)
            response.read(32)
            response.close()
        except speedtest.SpeedtestUploadTimeout:
            break
        except Exception as exc:  # noqa: BLE001
            if stop.is_set():
                break
            counter.error(exc)
            if stop.wait(0.2):
                break
        n += 1


@dataclass(frozen=True)
class _Window:
    start: int            # sample index where the measured window starts (warm-up before it)
    end: int              # sample index where it ends
    rate: float           # bytes per second: least-squares slope of the byte count
    steady: bool


def _slope(samples: list[tuple[float, int]], i: int, j: int) -> tuple[float, float]:
    """Least-squares slope (bytes/s) of the byte count over samples i..j and its standard error.

    The slope uses every sample, so the burstiness of a single 100 ms sample barely moves it,
    unlike bytes/time between two end points.
    """
    pts = samples[i:j + 1]
    n = len(pts)
    mt = sum(t for t, _ in pts) / n
    mb = sum(b for _, b in pts) / n
    sxx = sum((t - mt) ** 2 for t, _ in pts)
    if n < 3 or sxx <= 0:
        return 0.0, float("inf")
    slope = sum((t - mt) * (b - mb) for t, b in pts) / sxx
    resid = sum((b - mb - slope * (t - mt)) ** 2 for t, b in pts)
    return slope, (resid / (n - 2) / sxx) ** 0.5


def steady_window(samples: list[tuple[float, int]], *, done: bool,
                  min_warmup_s: float = MIN_WARMUP_S, min_measure_s: float = MIN_MEASURE_S,
                  tolerance: float = STEADY_TOLERANCE,
                  counted_when_sent: bool = False) -> _Window | None:
    """The measured window: after warm-up, at least ``min_measure_s`` long, and steady.

    ``samples`` are (seconds since the load started, bytes so far), every 100 ms. Warm-up (TCP
    slow start, and the loss recovery right after it, whose holes and refills make the byte
    count jump) is excluded: the window may start no earlier than ``min_warmup_s`` and no
    earlier than the rate stops rising (the last 0.3 s within 10 % of the 0.3 s before), and
    after the last spike (a refilled hole: bytes that arrived earlier, released at once); later
    starts are tried in 0.2 s steps and the steadiest window wins (least relative standard error
    of the slope plus disagreement of its halves). Steady: the slope's standard error is within
    ``tolerance / 2`` of it and the two halves' slopes agree within ``tolerance * 1.5``.
    Returns None while no window is steady yet; with ``done`` (time is up) the steadiest window
    found, flagged not steady.
    """
    last = len(samples) - 1
    times = [t for t, _ in samples]
    if last < 3:
        return None

    def index_at(t: float) -> int:
        return max((i for i, ti in enumerate(times) if ti <= t + 1e-9), default=0)

    def rate(i: int, j: int) -> float:
        return (samples[j][1] - samples[i][1]) / max(1e-9, times[j] - times[i])

    warm = None
    for k in range(1, last + 1):
        if times[k] < min_warmup_s:
            continue
        a, b = index_at(times[k] - 0.3), index_at(times[k] - 0.6)
        if a == k or b == a:
            continue
        recent = rate(a, k)
        if recent > 0 and recent <= 1.10 * rate(b, a):
            warm = k
            break
    if warm is None:
        if not done:
            return None
        warm = index_at(min_warmup_s)
    # A hole refilled (a lost segment finally retransmitted) releases at once bytes that
    # arrived earlier: a window must start after the last such spike, or it counts them twice.
    deltas = sorted(samples[k][1] - samples[k - 1][1] for k in range(warm + 1, last + 1))
    typical = deltas[len(deltas) // 2] if deltas else 0
    first_start = warm
    for k in range(warm + 1, last + 1):
        excess = samples[k][1] - samples[k - 1][1] - typical
        if excess > max(SPIKE_RATIO * typical, SPIKE_MIN_BYTES):
            first_start = k
    # An upload counted as bytes are handed to the socket (where the OS does not report acked
    # bytes) runs ahead of the line: the first moments stuff the socket
    # buffers, the qdisc and the initial congestion windows, faster than the line carries them.
    # No window starts before the line could have carried what was counted in the first 0.2 s.
    backlog = samples[index_at(0.2)][1] if counted_when_sent else 0
    line_rate = rate(warm, last)
    if line_rate > 0 and backlog / line_rate > times[first_start]:
        first_start = max(first_start, min(last, index_at(backlog / line_rate) + 1))
    # A slow line carries few packets in a second: TCP's stalls and refills then weigh more,
    # so the window must also hold MIN_MEASURE_BYTES (1.3 s at 5 Mbit/s, 2 s at 3 Mbit/s).
    if line_rate > 0:
        min_measure_s = max(min_measure_s, MIN_MEASURE_BYTES / line_rate)
    best: tuple[tuple[int, float], _Window] | None = None
    for start in [*range(first_start, last, 2), *(range(warm, first_start, 2) if done else ())]:
        if times[last] - times[start] < min_measure_s - 1e-9:
            break
        whole, se = _slope(samples, start, last)
        if whole <= 0:
            continue
        mid = index_at((times[start] + times[last]) / 2)
        first, _ = _slope(samples, start, mid)
        second, _ = _slope(samples, mid, last)
        spread = abs(first - second) / whole
        steady = se / whole <= tolerance / 2 and spread <= tolerance * 1.5
        score = (0 if steady else 1, se / whole + spread)
        if best is None or score < best[0]:
            best = (score, _Window(start, last, whole, steady))
    if best is not None and (best[1].steady or done):
        return best[1]
    if not done:
        return None
    whole, _ = _slope(samples, warm, last) if last - warm >= 2 else (rate(warm, last), 0.0)
    return _Window(warm, last, whole, False)


def _run_direction(start_workers: Callable[[_ByteCounter, threading.Event], list[threading.Thread]],
                   streams: int, budget_s: float, clock: Callable[[], float], *,
                   download: bool) -> DirectionReading:
    counter, stop = _ByteCounter(), threading.Event()
    t0 = clock()
    threads = start_workers(counter, stop)
    samples: list[tuple[float, int]] = [(0.0, 0)]
    window: _Window | None = None
    try:
        next_tick = t0 + SAMPLE_S
        while True:
            time.sleep(max(0.0, next_tick - clock()))
            next_tick += SAMPLE_S
            now = clock() - t0
            samples.append((now, counter.sample()))
            done = now + SAMPLE_S > budget_s
            if samples[-1][1] == 0 and counter.errors >= streams and now > 1.0:
                done = True   # every stream failed and nothing arrived
            window = steady_window(samples, done=done,
                                   counted_when_sent=not download and not counter.counts_acked)
            if window is not None or done:
                break
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=0.5)
    elapsed = clock() - t0
    total = counter.total
    counted = "read" if download else ("acked" if counter.counts_acked else "sent")
    trace = tuple(round((b1 - b0) * 8 / max(1e-9, t1 - t0_) / 1e6, 2)
                  for (t0_, b0), (t1, b1) in zip(samples, samples[1:], strict=False))
    if window is None or window.rate <= 0:
        why = counter.last_error or "no data arrived"
        return DirectionReading(None, 0, 0.0, 0.0, elapsed, total, streams, False,
                                counter.errors, f"nothing measured ({why})", trace)
    (tw, bw), (te, be) = samples[window.start], samples[window.end]
    return DirectionReading(mbit_s=window.rate * 8 / 1e6, measured_bytes=be - bw,
                            measured_s=te - tw, warmup_s=tw, elapsed_s=elapsed,
                            total_bytes=total, streams=streams, steady=window.steady,
                            stream_errors=counter.errors, trace_mbit_s=trace,
                            counted=counted)


def _workers(target: Callable[..., None], *args: Any, streams: int, name: str,
             ) -> Callable[[_ByteCounter, threading.Event], list[threading.Thread]]:
    def start(counter: _ByteCounter, stop: threading.Event) -> list[threading.Thread]:
        threads = [threading.Thread(target=target, args=(*args, counter, stop, i),
                                    name=f"bandwidth-{name}-{i}", daemon=True)
                   for i in range(streams)]
        for thread in threads:
            thread.start()
        return threads

    return start


class _LoadedLatency:
    """The path probe (``probes.network.path``) running in the background while one direction
    is loaded."""

    def __init__(self, reflector: tuple[str, int], budget_s: float) -> None:
        self.reflector, self.budget_s = reflector, budget_s
        self.stop = threading.Event()
        self.reading: Any = None
        self.problem: str | None = "not run"
        self.thread = threading.Thread(target=self._run, name="bandwidth-rtt", daemon=True)

    def _run(self) -> None:
        self.reading, self.problem = run_path_probe(self.reflector, self.budget_s, self.stop,
                                                    reply_wait_s=LOADED_REPLY_WAIT_S)

    def __enter__(self) -> _LoadedLatency:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        self.thread.join(timeout=LOADED_REPLY_WAIT_S + 1.0)

    def loaded_rtt_ms(self, skip_s: float) -> tuple[float | None, int]:
        """The 90th percentile RTT of the echoes after the first ``skip_s`` (the load's warm-up),
        and how many echoes it is of.

        Not the median: in a test of a few seconds the load's queue is still building, and each
        loss halves the senders' windows and drains it for a while; a long upload keeps it near
        its peak. The high percentile estimates that standing queue (measured on a 300 ms
        drop-tail queue at 5 Mbit/s: median 186-230 ms, 90th percentile near the 300 ms bound).
        """
        if self.reading is None or not self.reading.rtt_ms_samples:
            return None, 0
        # Echoes lost in the full queue leave no sample, so skip by share of the test's time,
        # never more than half of the samples.
        rtts = list(self.reading.rtt_ms_samples)
        share = min(0.5, skip_s / self.reading.duration_s) if self.reading.duration_s > 0 else 0
        kept = rtts[int(len(rtts) * share):]
        if len(kept) < 10:
            return statistics.median(kept), len(kept)
        return statistics.quantiles(kept, n=10, method="inclusive")[-1], len(kept)


def run_path_probe(reflector: tuple[str, int], duration_s: float,
                   stop: threading.Event | None = None, *,
                   reply_wait_s: float = 0.3) -> tuple[Any, str | None]:
    """The path probe's reading to ``reflector`` (or None) and why it gave no RTT, if so."""
    from probes.network.path import measure_path

    try:
        reading = measure_path(reflector[0], reflector[1], duration_s=duration_s, stop=stop,
                               reply_wait_s=reply_wait_s)
    except Exception as exc:  # noqa: BLE001 - latency under load is optional to the speed test
        return None, f"path probe failed: {type(exc).__name__}: {exc}"
    if reading.rtt_median_ms is None:
        return reading, reading.problem or "no reply from the reflector"
    return reading, None


def measure_bandwidth(server_url: str | None, *, reflector: tuple[str, int] | None = None,
                      public: bool = False, streams: int = 4, max_duration_s: float = 8.0,
                      timeout_s: float = 5.0, source_address: str | None = None,
                      clock: Callable[[], float] = time.monotonic) -> BandwidthReading:
    """Download and upload Mbit/s to ``server_url`` (a mini server), with latency under load.

    ``server_url`` is the center's bandwidth endpoint (``https://center:8750/speedtest/``); with
    ``public=True`` and no URL, the nearest speedtest.net server is used (needs the internet).
    ``reflector`` (host, port) enables latency under load. Raises ``BandwidthError`` when the
    endpoint cannot be used at all; a direction that measured nothing carries a ``problem``.
    """
    if streams < 1 or max_duration_s <= 0:
        raise ValueError("streams must be >= 1 and max_duration_s > 0")
    speedtest = _speedtest_module()
    t_start = clock()
    try:
        client = make_speedtest(public=public, timeout_s=timeout_s,
                                source_address=source_address)
        if server_url:
            servers = client.set_mini_server(server_url)
        else:
            if not public:
                raise BandwidthError("no bandwidth endpoint given")
            client.get_servers()
            servers = client.get_closest_servers()
        best = client.get_best_server(servers)
    except BandwidthError:
        raise
    except (speedtest.SpeedtestException, *speedtest.HTTP_ERRORS, OSError) as exc:
        raise BandwidthError(f"bandwidth endpoint {server_url or 'speedtest.net'} not usable: "
                             f"{type(exc).__name__}: {exc}") from None
    http_latency = float(best["latency"])
    if http_latency >= 3600 * 1000 / 2:   # speedtest-cli's marker for "every ping failed"
        raise BandwidthError(f"bandwidth endpoint {server_url} does not answer its latency test")
    base = os.path.dirname(best["url"])
    side = PUBLIC_DOWNLOAD_SIDE if public else CENTER_DOWNLOAD_SIDE
    download_url = f"{base}/random{side}x{side}.jpg"
    upload_bytes = PUBLIC_UPLOAD_BYTES if public else CENTER_UPLOAD_BYTES
    opener = _opener(timeout_s, source_address)

    # Joins and teardown; with a reflector, each direction also waits for late echoes.
    deadline = t_start + max_duration_s - 0.3 - (2 * LOADED_REPLY_WAIT_S if reflector else 0.0)
    idle_rtt: float | None = None
    latency_problem: str | None = None
    samples: dict[str, int] = {}
    if reflector is not None:
        idle, latency_problem = run_path_probe(reflector, IDLE_RTT_S)
        if idle is not None and latency_problem is None:
            idle_rtt, samples["idle"] = idle.rtt_median_ms, idle.received

    def leg(target: Callable[..., None], *args: Any, name: str, share: float,
            ) -> tuple[DirectionReading, float | None]:
        budget = max(1.0, (deadline - clock()) * share)
        start = _workers(target, opener, *args, streams=streams, name=name)
        if reflector is None or idle_rtt is None:
            return _run_direction(start, streams, budget, clock, download=name == "download"), None
        with _LoadedLatency(reflector, budget) as loaded:
            reading = _run_direction(start, streams, budget, clock,
                                     download=name == "download")
        rtt, samples[name] = loaded.loaded_rtt_ms(reading.warmup_s)
        return reading, rtt

    download, rtt_down = leg(_download_worker, download_url, name="download", share=0.5)
    upload, rtt_up = leg(_upload_worker, best["url"], upload_bytes, name="upload", share=1.0)
    if reflector is None:
        latency_problem = "no reflector to measure latency under load"
    elif idle_rtt is not None and rtt_down is None and rtt_up is None:
        latency_problem = "no reply from the reflector while the line was loaded"
    return BandwidthReading(
        server_url=server_url or best["url"], download=download, upload=upload,
        http_latency_ms=http_latency, idle_rtt_ms=idle_rtt, loaded_rtt_down_ms=rtt_down,
        loaded_rtt_up_ms=rtt_up, latency_problem=latency_problem,
        duration_s=clock() - t_start, rtt_samples=samples)


def measure_stock(server_url: str, *, timeout_s: float = 10.0) -> tuple[float, float]:
    """Stock speedtest-cli's own download and upload (Mbit/s) against a mini server.

    Only the configuration is supplied (speedtest.net's usual values, see ``STOCK_CONFIG``);
    the measuring is speedtest-cli's, unchanged. For comparisons (bench/), not for verdicts.
    """
    client = make_speedtest(timeout_s=timeout_s)
    client.get_best_server(client.set_mini_server(server_url))
    down = client.download()
    up = client.upload()
    return down / 1e6, up / 1e6
