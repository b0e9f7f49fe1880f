"""The load: long-lived download and upload streams, and the byte counter the sampler reads.

speedtest-cli under-reports fast lines (its issues #649, #730): its figure is all bytes over all
the time, TCP slow start, connection set-up and the tail of many short requests included. Here a
few long-lived parallel streams carry the load (``_download_worker``, ``_upload_worker``, through
speedtest-cli's opener, ``probes.bandwidth.speedtest_compat``); a byte counter (``_ByteCounter``)
is sampled every 100 ms: what crossed the line when the kernel tells (Linux ``TCP_INFO``:
downloads the data segments that arrived, uploads the bytes the receiver acknowledged,
cumulatively or by SACK), so a lost segment does not hold back the count of what arrived behind
it. Each socket is tuned as it connects (``_tune_load_socket``:
``TCP_NOTSENT_LOWAT``, Reno). Where the rate is read from those samples is
``probes.bandwidth.steady_window``.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from typing import Any

from probes.bandwidth.speedtest_compat import _speedtest_module

NOTSENT_LOWAT = 16 * 1024     # bytes queued unsent per socket: upload counts what left, not RAM
LOAD_CONGESTION_CONTROL = b"reno"  # classic slow start: fills the queue fast (_tune_load_socket)

# Offsets in Linux's struct tcp_info (include/uapi/linux/tcp.h)
_TCPI_SND_MSS = 16        # u32
_TCPI_RCV_MSS = 20        # u32
_TCPI_SACKED = 28         # u32: segments SACKed by the receiver, not yet cumulatively acked
_TCPI_BYTES_ACKED = 120   # u64 (Linux 4.2+)
_TCPI_BYTES_RECEIVED = 128  # u64 (Linux 4.2+): bytes received in order
_TCPI_DATA_SEGS_IN = 152  # u32 (Linux 4.6+): data segments received, in order or not
_thread_counter = threading.local()   # the byte counter of the worker thread, if any


def _tune_load_socket(sock: socket.socket) -> None:
    """A load stream's socket, as it connects: registered with the worker thread's upload
    counter, if any, and set to keep little unsent data queued and to use Reno.

    ``TCP_NOTSENT_LOWAT`` (Linux, macOS) makes a send return only when little is left unsent,
    so the upload's byte count follows what the line carried, not what the kernel buffered.
    ``TCP_CONGESTION`` (Linux) asks for Reno, allowed to every user: the load must fill the home
    router's queue the way a long upload does (CUBIC, the default of Windows, macOS and Linux,
    fills it in tens of seconds; Reno's classic slow start, without CUBIC's HyStart exit, fills
    it within the test's few seconds). A machine set to BBR would otherwise keep that queue
    nearly empty and hide the bufferbloat (measured in the lab: one run in about 15 graded a
    300 ms queue +42 ms). Where Reno cannot be set, the system default stays.
    """
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


def _tcp_info(sock: socket.socket, size: int) -> bytes | None:
    """The connection's Linux ``TCP_INFO``, when the OS gives at least ``size`` bytes of it."""
    option = getattr(socket, "TCP_INFO", None)
    if option is None:
        return None
    try:
        info = sock.getsockopt(socket.IPPROTO_TCP, option, 256)
    except OSError:
        return None
    return info if len(info) >= size else None


def _bytes_acked(sock: socket.socket) -> int | None:
    """Bytes of this upload connection the receiver has acknowledged, cumulatively or by SACK
    (Linux ``TCP_INFO``: ``tcpi_bytes_acked`` plus ``tcpi_sacked`` segments), or None.

    SACKed segments are counted as they arrive: a lost segment then delays only itself, not
    every byte behind it until its retransmission is acknowledged (a hole, then a refill).
    """
    info = _tcp_info(sock, _TCPI_BYTES_ACKED + 8)
    if info is None:
        return None
    acked = int(struct.unpack_from("Q", info, _TCPI_BYTES_ACKED)[0])
    sacked, mss = struct.unpack_from("I", info, _TCPI_SACKED)[0], struct.unpack_from(
        "I", info, _TCPI_SND_MSS)[0]
    return acked + int(sacked) * int(mss)


def _segments_in(sock: socket.socket) -> tuple[int, int] | None:
    """(data segments received, the peer's segment size) of a download connection (Linux
    ``TCP_INFO``: ``tcpi_data_segs_in``, ``tcpi_rcv_mss``), or None.

    Segments are counted as they arrive, in order or not: after a loss, what arrives behind
    the hole is counted when it arrives, not when the retransmission releases it all at once
    to the reader.
    """
    info = _tcp_info(sock, _TCPI_DATA_SEGS_IN + 4)
    if info is None:
        return None
    return (int(struct.unpack_from("I", info, _TCPI_DATA_SEGS_IN)[0]),
            int(struct.unpack_from("I", info, _TCPI_RCV_MSS)[0]))


class _ByteCounter:
    """Bytes the line carried for one direction's streams, read by the sampler every 100 ms.

    Counted where the kernel says when they crossed the line (Linux ``TCP_INFO``, sockets
    register as they connect): downloads by the data segments that arrived (``_segments_in``),
    uploads by what the receiver acknowledged (``_bytes_acked``). Where the OS does not tell,
    downloads count what the application read and uploads what was handed to the socket.
    """

    def __init__(self, *, download: bool = False) -> None:
        self._lock = threading.Lock()
        self.download = download
        self.total = 0           # bytes read (download) or handed to the socket (upload)
        self.errors = 0
        self.last_error: str | None = None
        self._sockets: list[socket.socket] = []
        self._counted: list[int] = []   # bytes per socket so far, kept after it closes
        self._segments: list[int] = []  # downloads: data segments per socket so far
        self._kernel_usable = True

    def add(self, n: int) -> None:
        with self._lock:
            self.total += n

    def error(self, exc: BaseException) -> None:
        with self._lock:
            self.errors += 1
            self.last_error = f"{type(exc).__name__}: {exc}"

    def register(self, sock: socket.socket) -> None:
        if self.download:
            first = _segments_in(sock)
            start_bytes, start_segments = 0, first[0] if first is not None else 0
        else:
            acked = _bytes_acked(sock)
            first = None if acked is None else (0, 0)
            start_bytes, start_segments = acked or 0, 0
        with self._lock:
            if first is None:
                self._kernel_usable = False
            self._sockets.append(sock)
            self._counted.append(start_bytes)
            self._segments.append(start_segments)

    def abort(self) -> None:
        """Shut every registered connection down: a stream blocked in a send or a read
        returns at once (the direction's measurement is over)."""
        with self._lock:
            sockets = list(self._sockets)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    @property
    def counts_line(self) -> bool:
        """True when the kernel's counts are used (not the application's)."""
        return self._kernel_usable and bool(self._sockets)

    def sample(self) -> int:
        """Bytes so far: as the kernel counted them crossing the line when known, else as the
        application counted them."""
        with self._lock:
            if not (self._kernel_usable and self._sockets):
                return self.total
            for i, sock in enumerate(self._sockets):   # a closed socket keeps its last count
                if self.download:
                    got = _segments_in(sock)
                    if got is not None and got[0] > self._segments[i]:
                        # per new segment at the current size: the kernel's estimate of the
                        # peer's segment size settles after the first full one
                        self._counted[i] += (got[0] - self._segments[i]) * got[1]
                        self._segments[i] = got[0]
                else:
                    value = _bytes_acked(sock)
                    if value is not None and value > self._counted[i]:
                        self._counted[i] = value
            return sum(self._counted)


def _download_worker(opener: Any, url: str, counter: _ByteCounter, stop: threading.Event,
                     index: int) -> None:
    speedtest = _speedtest_module()
    _thread_counter.counter = counter   # sockets this thread opens report the segments in
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
            if stop.is_set():   # ended by the sampler (``_ByteCounter.abort``)
                break
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
        if self.counter.counts_line:
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
