"""Download and upload speed, and latency under load, with speedtest-cli's protocol and plumbing.

The server is the contact center's own endpoint (speedtest-cli's "mini server" protocol, served
by ``agent-center serve`` under ``/speedtest/``), so the test measures the path calls take and
needs no internet test service; speedtest.net's public servers stay an option (``public=True``).

``measure_bandwidth`` runs the phase: speedtest-cli's handshake and HTTP latency
(``probes.bandwidth.speedtest_compat``), the idle RTT, then each direction in turn: its
long-lived streams (``probes.bandwidth.streams``) sampled every 100 ms until the steady-window
estimator (``probes.bandwidth.steady_window``) finds the rate steady or the direction's share of
``max_duration_s`` is spent, with the path probe running in the background for latency under
load (``probes.bandwidth.loaded_latency``); that probe's packets share the line with the load,
so their share is added back to the direction's rate (``_with_probe_share``).
"""

from __future__ import annotations

import dataclasses
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from probes.bandwidth.loaded_latency import (
    LOADED_REPLY_WAIT_S,
    _LoadedLatency,
    idle_rtt_ms,
    run_path_probe,
)
from probes.bandwidth.speedtest_compat import _opener, _speedtest_module, make_speedtest
from probes.bandwidth.steady_window import (
    LINE_MIN_MEASURE_BYTES,
    MIN_MEASURE_BYTES,
    _Window,
    steady_window,
)
from probes.bandwidth.streams import (
    _ByteCounter,
    _download_worker,
    _tune_load_socket,
    _upload_worker,
)
from probes.network.path_packet import RTP_HEADER_BYTES

SAMPLE_S = 0.1                # byte counter sampling period
IDLE_RTT_S = 0.6              # idle path test before loading
CENTER_DOWNLOAD_SIDE = 7000   # random7000x7000.jpg: 98 MB, so a stream rarely reconnects
PUBLIC_DOWNLOAD_SIDE = 4000   # the largest file speedtest.net servers carry
CENTER_UPLOAD_BYTES = 256 * 1024 * 1024   # declared per upload request; cut short when done
PUBLIC_UPLOAD_BYTES = 7340032  # the largest upload speedtest-cli makes
IPV4_UDP_HEADER_BYTES = 28
TCP_PAYLOAD_PER_IP_BYTE = 1448 / 1500  # MTU 1500: IPv4 20 + TCP 20 + timestamps 12 per segment


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
    counted: str = "read"         # "arrived" (segments in), "acked" by the receiver (uploads),
    #                               or where the OS does not tell: "read" by the app, "sent"
    probe_mbit_s: float = 0.0     # the latency probe's packets this way, included in mbit_s


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



def _run_direction(start_workers: Callable[[_ByteCounter, threading.Event], list[threading.Thread]],
                   streams: int, budget_s: float, clock: Callable[[], float], *,
                   download: bool) -> DirectionReading:
    counter, stop = _ByteCounter(download=download), threading.Event()
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
                                   counted_when_sent=not download and not counter.counts_line,
                                   counted_at_line=counter.counts_line,
                                   min_measure_bytes=LINE_MIN_MEASURE_BYTES
                                   if counter.counts_line else MIN_MEASURE_BYTES)
            if window is not None or done:
                break
    finally:
        stop.set()
        # The samples are taken: end the connections now. An upload stream on a slow line
        # sits in a send until its buffer drains (seconds at 0.5 Mbit/s), which would hold
        # the phase past its budget (measured: 8.4 s on a 2/0.5 Mbit/s line).
        counter.abort()
        join_by = clock() + 0.5
        for thread in threads:
            thread.join(timeout=max(0.0, join_by - clock()))
    elapsed = clock() - t0
    total = counter.total
    counted = (("arrived" if counter.counts_line else "read") if download
               else ("acked" if counter.counts_line else "sent"))
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


def _with_probe_share(reading: DirectionReading, probe: Any, *,
                      download: bool) -> DirectionReading:
    """``reading`` with the latency probe's share of the line added back to its rate.

    The probe (an RTP-sized packet every 20 ms each way, 80 kbit/s: 5 % of a 1.5 Mbit/s uplink)
    crosses the same bottleneck as the load, so the streams carry that much less than the line
    does. Its packets this way (the requests up while uploading, the echoes that came back
    down while downloading) are counted at what the same IP bytes carry as TCP payload.
    """
    if reading.mbit_s is None or probe is None or probe.duration_s <= 0:
        return reading
    packets = probe.received if download else probe.sent
    ip_bytes = packets * (probe.payload_bytes + RTP_HEADER_BYTES + IPV4_UDP_HEADER_BYTES)
    share = ip_bytes * 8 / probe.duration_s / 1e6 * TCP_PAYLOAD_PER_IP_BYTE
    return dataclasses.replace(reading, mbit_s=reading.mbit_s + share,
                               probe_mbit_s=round(share, 4))


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
    opener = _opener(timeout_s, source_address, _tune_load_socket)

    # Joins and teardown; with a reflector, each direction also waits for late echoes.
    deadline = t_start + max_duration_s - 0.3 - (2 * LOADED_REPLY_WAIT_S if reflector else 0.0)
    idle_rtt: float | None = None
    latency_problem: str | None = None
    samples: dict[str, int] = {}
    if reflector is not None:
        idle, latency_problem = run_path_probe(reflector, IDLE_RTT_S)
        if idle is not None and latency_problem is None:
            idle_rtt, samples["idle"] = idle_rtt_ms(idle), idle.received

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
        return _with_probe_share(reading, loaded.reading, download=name == "download"), rtt

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
