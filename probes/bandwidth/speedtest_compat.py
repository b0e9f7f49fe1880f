"""speedtest-cli (2.1.3) as the named dependency: its client, configured offline, and its opener.

speedtest-cli is used for what it does well: the mini-server handshake (``set_mini_server``), its
HTTP latency figure (``get_best_server``), its request builder (cache busters) and HTTP(S)
handlers (source address, timeouts), and, with ``public=True``, the speedtest.net configuration
and server selection. One of its weaknesses is designed around here (STANDARDS.md): it fetches
speedtest.net's configuration in ``Speedtest.__init__`` even for a mini server:
``_OfflineSpeedtest`` supplies that configuration itself, so no internet is needed. (The other,
its under-reporting of fast lines, is designed around by ``probes.bandwidth.streams`` and
``probes.bandwidth.steady_window``.)
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any

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


def _opener(timeout_s: float, source_address: str | None,
            tune: Callable[[socket.socket], None]) -> Any:
    """speedtest-cli's opener, whose connections are handed to ``tune`` as soon as they connect.

    ``tune`` is ``probes.bandwidth.streams._tune_load_socket``: the load streams' socket options
    and their byte counter's registration.
    """
    import urllib.request

    speedtest = _speedtest_module()

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
