"""The load: long-lived download and upload streams, and the byte counter the sampler reads.

speedtest-cli under-reports fast lines (its issues #649, #730): its figure is all bytes over all
the time, TCP slow start, connection set-up and the tail of many short requests included. Here a
few long-lived parallel streams carry the load (``_download_worker``, ``_upload_worker``, through
speedtest-cli's opener, ``probes.bandwidth.speedtest_compat``); a byte counter (``_ByteCounter``)
is sampled every 100 ms (uploads: the bytes the receiver acknowledged, Linux ``TCP_INFO``
``tcpi_bytes_acked``). Each socket is tuned as it connects (``_tune_load_socket``:
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

_TCPI_BYTES_ACKED = 120   # offset of tcpi_bytes_acked (u64) in Linux's struct tcp_info (4.2+)
_thread_counter = threading.local()   # the upload counter of the worker thread, if any


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
