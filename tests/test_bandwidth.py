"""The bandwidth endpoint (real ASGI app over real HTTP on loopback), the steady-window rule,
the evaluator and the unit's 'no center' answer."""

from __future__ import annotations

import socket
import sys
import threading
import time
from collections.abc import Iterator

import pytest

from agent_kit.center.speedtest import create_speedtest_app, download_size
from agent_kit.core.policy import load_policy
from agent_kit.core.results import Status
from agent_kit.evaluate.bandwidth import evaluate_bandwidth
from agent_kit.run.runner import run_checks
from agent_kit.run.units import UNITS, ProbeContext
from probes.bandwidth.measure import (
    BandwidthError,
    BandwidthReading,
    DirectionReading,
    measure_bandwidth,
)
from probes.bandwidth.speedtest_compat import make_speedtest
from probes.bandwidth.steady_window import (
    MIN_MEASURE_S,
    MIN_WARMUP_S,
    fastest_window,
    steady_window,
)


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    """The speedtest app mounted at /speedtest as the center does, served by uvicorn."""
    import uvicorn
    from starlette.applications import Starlette
    from starlette.routing import Mount

    app = Starlette(routes=[Mount("/speedtest", app=create_speedtest_app())])
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}/speedtest/"
    server.should_exit = True
    thread.join(timeout=5)


def test_mini_server_protocol_answers(endpoint: str) -> None:
    import httpx

    base = endpoint + "speedtest/"
    assert 'upload_extension: "php"' in httpx.get(endpoint).text
    assert httpx.get(base + "latency.txt").text == "test=test"
    assert httpx.get(base + "upload.php").text == "size=0"
    body = httpx.get(base + "random350x350.jpg").content
    assert len(body) == download_size(350) == 245_000
    assert len(set(body[:4096])) > 200   # random bytes, nothing for a proxy to compress
    posted = httpx.post(base + "upload.php", content=b"x" * 1_000_003)
    assert posted.text == "size=1000003"


@pytest.mark.parametrize("path", ["speedtest/random0x0.jpg", "speedtest/random10001x10001.jpg",
                                  "speedtest/random10x20.jpg", "speedtest/passwd",
                                  "speedtest/random350x350.jpg.bak", "nope/deeper/x"])
def test_bad_paths_get_a_json_4xx(endpoint: str, path: str) -> None:
    import httpx

    response = httpx.get(endpoint + path)
    assert 400 <= response.status_code < 500
    assert "error" in response.json()


def test_oversized_upload_is_refused_before_reading(endpoint: str) -> None:
    from urllib.parse import urlsplit

    url = urlsplit(endpoint)
    with socket.create_connection((url.hostname, url.port), timeout=5) as conn:
        conn.sendall(f"POST {url.path}speedtest/upload.php HTTP/1.1\r\nHost: x\r\n"
                     f"Content-Length: {2 << 30}\r\n\r\n".encode())
        head = conn.recv(4096).decode("latin-1")
    assert head.startswith("HTTP/1.1 413"), head
    assert '"error"' in head


def test_stock_speedtest_cli_accepts_the_endpoint_offline(endpoint: str) -> None:
    """speedtest-cli's own mini-server handshake and latency test, with no internet."""
    client = make_speedtest()
    servers = client.set_mini_server(endpoint)
    assert servers[0]["url"].endswith("/speedtest/speedtest/upload.php")
    best = client.get_best_server(servers)
    # its latency test got answers (speedtest-cli marks "every ping failed" with 1 800 000 ms)
    assert 0 < best["latency"] < 3600 * 1000 / 2


def test_measure_on_loopback_gives_both_directions_within_budget(endpoint: str) -> None:
    """Each direction measures over a window after the warm-up, and ends because that window
    is steady (at least MIN_MEASURE_S long) or, when its share of the budget ran out first,
    says it is not steady. How fast a line reads is not asserted here (it depends on the
    machine's load): bench/bandwidth_compare.py prints rates and wall times."""
    reading = measure_bandwidth(endpoint, max_duration_s=4.0)
    for direction in (reading.download, reading.upload):
        assert direction.problem is None and direction.mbit_s is not None
        assert direction.mbit_s > 0 and direction.measured_bytes > 0
        # a steady window starts after the minimum warm-up; a guess when time ran out may
        # start at the last sample before it (and says it is not steady)
        assert direction.warmup_s >= MIN_WARMUP_S or not direction.steady, direction
        # the window lies within the direction's own run, after its warm-up
        assert direction.warmup_s + direction.measured_s <= direction.elapsed_s + 1e-9
        # a steady window is at least MIN_MEASURE_S long; on a machine too busy to settle
        # within the budget the reading says so (steady False) instead
        assert direction.measured_s >= MIN_MEASURE_S - 1e-9 or not direction.steady, direction
    assert reading.upload.counted in ("acked", "sent")
    # on Linux the kernel's counts of what crossed the line, elsewhere the application's
    assert reading.download.counted in ("arrived", "read")
    if sys.platform == "linux":
        assert (reading.download.counted, reading.upload.counted) == ("arrived", "acked")
    assert reading.latency_problem == "no reflector to measure latency under load"


def test_an_endpoint_that_is_not_there_raises_a_clear_error() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(BandwidthError, match="not usable"):
        measure_bandwidth(f"http://127.0.0.1:{port}/speedtest/", timeout_s=1.0)


def _samples(rates_mbit: list[float]) -> list[tuple[float, int]]:
    out = [(0.0, 0)]
    for rate in rates_mbit:
        t, b = out[-1]
        out.append((round(t + 0.1, 3), b + int(rate * 1e6 / 8 * 0.1)))
    return out


def test_steady_window_skips_slow_start_and_a_refilled_hole() -> None:
    # slow start, a loss (dip) and its refill (spike), then a steady 19.1 Mbit/s
    rates = [5, 10, 16, 20, 14, 10, 6, 12, 55] + [19.1] * 12
    window = steady_window(_samples(rates), done=False)
    assert window is not None and window.steady
    assert window.rate * 8 / 1e6 == pytest.approx(19.1, rel=0.01)
    # a naive bytes/time over everything after 0.4 s would say 20.6
    assert window.start >= 9


def test_steady_window_waits_while_the_rate_still_climbs() -> None:
    assert steady_window(_samples([1, 2, 4, 8, 16, 32, 64, 100]), done=False) is None


def test_steady_window_reads_the_line_not_a_stretch_the_machine_slowed() -> None:
    # a steady 19.1, then 0.5 s where a CPU-starved reader took less, then 19.1 again
    rates = [5, 10, 16, 19.1] + [19.1] * 10 + [12] * 5 + [19.1] * 12
    window = steady_window(_samples(rates), done=True, min_measure_bytes=0)
    assert window is not None and window.steady
    assert window.rate * 8 / 1e6 == pytest.approx(19.1, rel=0.01)


def test_steady_window_does_not_stop_early_in_a_slowed_stretch() -> None:
    # steady at 17 for 1.2 s, but the line carried 19.1 before: keep measuring
    rates = [5, 10, 16, 19.1] + [19.1] * 8 + [17] * 12
    assert steady_window(_samples(rates), done=False, min_measure_bytes=0) is None
    # ... and once it carries 19.1 again for long enough, stop there
    window = steady_window(_samples(rates + [19.1] * 12), done=False, min_measure_bytes=0)
    assert window is not None and window.rate * 8 / 1e6 == pytest.approx(19.1, rel=0.01)


def test_steady_window_gives_its_best_guess_when_time_is_up() -> None:
    rates = [10, 30, 5, 40, 8, 35, 12, 28, 6, 33, 9, 31, 7, 36]
    window = steady_window(_samples(rates), done=True)
    assert window is not None and not window.steady and window.rate > 0


def test_steady_window_when_time_is_up_right_after_the_warm_up() -> None:
    """A short budget on a busy machine: sparse samples, the rate stops rising only at the
    last one. The guess is a not-steady window past the minimum warm-up with a rate, not an
    empty window read as "nothing measured" although data arrived."""
    samples = [(0.0, 0), (0.247, 6951537), (0.4595, 34242980), (0.5686, 81620081),
               (0.7419, 100424011), (1.187, 121333110)]
    window = steady_window(samples, done=True)
    assert window is not None and not window.steady and window.rate > 0
    assert samples[window.start][0] >= MIN_WARMUP_S and window.end == len(samples) - 1


def test_time_up_counted_at_the_line_reads_the_fastest_second_not_a_starved_stretch() -> None:
    # golden: 100 Mbit/s line (TCP ceiling 96.5), counted by the kernel as segments arrive;
    # the full line for 1.6 s, then the machine starved (the reader, sender and emulator share
    # two cores) and the rate wandered 60-90 until time was up
    starved = [62, 88, 70, 91, 58, 84, 66, 90, 61, 86, 72, 89, 64, 80, 69, 87, 60, 85, 74, 90]
    rates = [30, 70, 96.5] + [96.5] * 16 + starved
    samples = _samples(rates)
    plain = steady_window(samples, done=True, min_measure_bytes=0)
    assert plain is not None and plain.rate * 8 / 1e6 < 85   # the starved stretch's mean
    window = steady_window(samples, done=True, min_measure_bytes=0, counted_at_line=True)
    assert window is not None and not window.steady
    assert window.rate * 8 / 1e6 == pytest.approx(96.5, rel=0.01)
    assert samples[window.end][0] - samples[window.start][0] >= 1.0 - 1e-9
    # before time is up the rule is unchanged: no reading yet
    assert steady_window(samples, done=False, min_measure_bytes=0,
                         counted_at_line=True) is None


def test_time_up_counted_at_the_line_prefers_the_fastest_second_to_a_slow_steady_one() -> None:
    # golden: 300 Mbit/s line (ceiling 289.6); 1.6 s at the line's rate, then the rest steady
    # at 240 (a CPU-starved sender): the steady window is the slow stretch, the fastest
    # second holds the line's rate
    rates = [60, 150, 280] + [289.6] * 16 + [240] * 30
    samples = _samples(rates)
    plain = steady_window(samples, done=True, min_measure_bytes=0)
    assert plain is not None and plain.steady and plain.rate * 8 / 1e6 == pytest.approx(240,
                                                                                         rel=0.02)
    window = steady_window(samples, done=True, min_measure_bytes=0, counted_at_line=True)
    assert window is not None and not window.steady
    assert window.rate * 8 / 1e6 == pytest.approx(289.6, rel=0.01)
    assert window.rate * 8 / 1e6 <= 289.6 * 1.02


def test_time_up_counted_at_the_line_keeps_a_steady_window_that_is_the_line() -> None:
    # golden: a steady 48.27 with the ordinary 100 ms noise of the sampler: the fastest second
    # is within tolerance of it, so the steady window stays the reading (noise is not picked)
    noise = [0.6, -0.4, 0.2, -0.7, 0.5, -0.1, 0.3, -0.5, 0.7, -0.3, 0.1, -0.6, 0.4, -0.2]
    rates = [10, 25, 44] + [48.27 + n for n in noise * 2]
    samples = _samples(rates)
    plain = steady_window(samples, done=True, min_measure_bytes=0)
    window = steady_window(samples, done=True, min_measure_bytes=0, counted_at_line=True)
    assert plain is not None and plain.steady and window == plain
    assert window.rate * 8 / 1e6 == pytest.approx(48.27, rel=0.01)


def test_time_up_counted_at_the_line_never_counts_a_refill_spike() -> None:
    # golden: starved, then a 100 ms sample holding what the line carried in 0.4 s (a late
    # batch): the fastest window starts after the spike, so it is not read above the line
    rates = [30, 70, 96.5] + [96.5] * 4 + [50] * 4 + [0, 0, 0, 386] + [70, 90, 65, 88] * 3
    samples = _samples(rates)
    window = steady_window(samples, done=True, min_measure_bytes=0, counted_at_line=True)
    assert window is not None
    assert window.start >= rates.index(386) + 1
    assert window.rate * 8 / 1e6 <= 96.5 * 1.02


def test_fastest_window_is_at_least_the_minimum_long() -> None:
    samples = _samples([10, 20, 30, 40, 50, 60, 70, 80, 90, 100, 110, 120])
    window = fastest_window(samples, 0, len(samples) - 1, 1.0)
    assert window is not None and window.end == len(samples) - 1
    assert samples[window.end][0] - samples[window.start][0] >= 1.0 - 1e-9
    assert fastest_window(samples, 0, len(samples) - 1, 2.0) is None


def _direction(mbit: float | None, steady: bool = True) -> DirectionReading:
    return DirectionReading(mbit_s=mbit, measured_bytes=1, measured_s=1.0, warmup_s=0.5,
                            elapsed_s=1.6, total_bytes=2, streams=4, steady=steady,
                            problem=None if mbit is not None else "nothing measured (refused)")


def _reading(down: float | None, up: float | None, idle: float | None = 10.0,
             loaded_down: float | None = 12.0, loaded_up: float | None = 14.0,
             ) -> BandwidthReading:
    return BandwidthReading(server_url="http://c/speedtest/", download=_direction(down),
                            upload=_direction(up), http_latency_ms=1.0, idle_rtt_ms=idle,
                            loaded_rtt_down_ms=loaded_down, loaded_rtt_up_ms=loaded_up,
                            latency_problem=None if idle is not None else "no reply",
                            duration_s=5.0)


def test_evaluation_of_a_good_line() -> None:
    results = {r.id: r for r in evaluate_bandwidth(_reading(300, 50), load_policy())}
    assert results["bandwidth.down"].status is Status.PASS
    assert results["bandwidth.down"].message == "download 300.0 Mbit/s"
    assert results["bandwidth.up"].status is Status.PASS
    bloat = results["bandwidth.bufferbloat"]
    assert bloat.status is Status.PASS and bloat.value == 4.0
    assert bloat.details["grade"] == "A+" and "grade A+" in bloat.message
    assert bloat.fix is None


@pytest.mark.parametrize(("loaded_up", "grade", "status"), [
    (14.9, "A+", Status.PASS), (15.0, "A", Status.PASS), (40.0, "B", Status.WARN),
    (70.0, "C", Status.WARN), (210.0, "D", Status.FAIL), (410.0, "F", Status.FAIL)])
def test_bufferbloat_grade_and_verdict(loaded_up: float, grade: str, status: Status) -> None:
    result = evaluate_bandwidth(_reading(100, 20, idle=10.0, loaded_down=11.0,
                                         loaded_up=loaded_up), load_policy())[2]
    assert result.details["grade"] == grade
    assert f"grade {grade}" in result.message and "uploading" in result.message
    assert result.status is status
    assert (result.fix is not None) == (status is not Status.PASS)
    if result.fix:
        assert "SQM" in result.fix


def test_slow_line_fails_with_plain_fixes() -> None:
    results = {r.id: r for r in evaluate_bandwidth(_reading(3.2, 0.8), load_policy())}
    down, up = results["bandwidth.down"], results["bandwidth.up"]
    assert down.status is Status.FAIL and up.status is Status.FAIL
    assert "streaming" in (down.fix or "") and "internet provider" in (down.fix or "")
    assert "uploading" in (up.fix or "") and "20 Mbit/s" in (up.fix or "")


def test_nothing_measured_is_unknown_with_the_reason() -> None:
    results = {r.id: r for r in evaluate_bandwidth(_reading(None, 20, idle=None),
                                                   load_policy())}
    assert results["bandwidth.down"].status is Status.UNKNOWN
    assert "refused" in results["bandwidth.down"].message
    assert results["bandwidth.bufferbloat"].status is Status.UNKNOWN


def test_unit_without_a_center_says_so() -> None:
    unit = next(u for u in UNITS if u.name == "bandwidth")
    assert unit.exclusive and unit.group == "bandwidth"
    report = run_checks([unit], ProbeContext(policy=load_policy()))
    assert [c.status for c in report.checks] == [Status.UNKNOWN] * 3
    assert all(c.message == "no center configured" for c in report.checks)
