"""The path probe against the relay's ground truth, between two network namespaces.

Center namespace: the reflector (``python -m agent_kit.center.reflector`` on 127.0.0.1) and
the impairment relay (``tests/lab/relay.py``) on 192.0.2.2; home namespace: the probe (and the
real CLI) sending to the relay. The relay's seeded settings decide what happens to each
packet and its record of what it did is the ground truth, computed by the relay's own code
(``tests/lab/relay.py`` imports nothing of the product): measured RTT within 2 ms, jitter
(RFC 3550 J at the end of the stream, and the steady mean |D|) within 1 ms or 10 %, loss
within 0.5 percentage points, and the loss of each direction exactly: what the probe counts
as lost on the way to the reflector (from the reflector's per-session count) is what the
relay dropped on the way up, and likewise back; each direction's BurstR and worst full
200 ms window exactly. The realized loss is compared (not the
configured probability), so the test is exact where counting is exact and never flaky; each
scenario also checks that the realization matches its settings.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.lab.netns import CENTER_ADDR, NetnsPair, netns_pair
from tests.lab.reflector import standalone_reflector
from tests.lab.relay import Impairment, Spec, truth

ROOT = Path(__file__).resolve().parents[1]
REFLECTOR_PORT = 8751
DURATION_S = 6.0
pytestmark = [pytest.mark.lab, pytest.mark.timing]

PROBE = """
import json, sys
from dataclasses import asdict
from probes.network.path import measure_path
r = measure_path(sys.argv[1], int(sys.argv[2]), duration_s=float(sys.argv[3]))
d = asdict(r); d.pop("rtt_ms_samples"); d["reordered"] = r.reordered
print(json.dumps(d))
"""


@pytest.fixture(scope="module")
def lab() -> Iterator[NetnsPair]:
    with netns_pair() as pair, \
            standalone_reflector(pair.exec_args(pair.center), "127.0.0.1", REFLECTOR_PORT):
        yield pair


class RelayRun:
    def __init__(self, pair: NetnsPair, spec: Spec, port: int, record: Path,
                 tcp_upstream: str | None = None) -> None:
        args = [sys.executable, "-m", "tests.lab.relay", "--listen", f"{CENTER_ADDR}:{port}",
                "--upstream", f"127.0.0.1:{REFLECTOR_PORT}", "--spec", spec.to_json(),
                "--record", str(record)]
        if tcp_upstream:
            args += ["--tcp-upstream", tcp_upstream]
        self.record = record
        self.proc = pair.popen(pair.center, args, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, cwd=ROOT)
        line = self.proc.stdout.readline()
        if "relay ready" not in line:
            raise AssertionError(f"relay did not start: {line} {self.proc.stderr.read()}")

    def finish(self) -> dict[str, Any]:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(20)
        self.proc.stdout.close()
        err = self.proc.stderr.read()
        self.proc.stderr.close()
        assert self.proc.returncode == 0, err
        return json.loads(self.record.read_text())


def probe(pair: NetnsPair, port: int, duration_s: float = DURATION_S) -> dict[str, Any]:
    out = pair.run(pair.home, sys.executable, "-c", PROBE, CENTER_ADDR, str(port),
                   str(duration_s), timeout=duration_s + 30)
    return json.loads(out.stdout)


def measure(pair: NetnsPair, spec: Spec, port: int, tmp: Path) -> tuple[dict, dict]:
    relay = RelayRun(pair, spec, port, tmp / f"relay{port}.json")
    try:
        reading = probe(pair, port)
    finally:
        record = relay.finish()
    return reading, {**truth(record["records"]), "records": record["records"]}


def close_jitter(measured: float, true: float) -> bool:
    return abs(measured - true) <= max(1.0, 0.10 * true)


SCENARIOS = {
    # name: (spec, expected statuses of network.jitter / network.loss by the default policy)
    "clean": Spec(seed=1),
    "delay 40 ms + uniform 0-24 ms": Spec(up=Impairment(delay_ms=20, jitter_ms=12),
                                         down=Impairment(delay_ms=20, jitter_ms=12), seed=2),
    "exponential 15 ms up, 1 % loss down": Spec(
        up=Impairment(delay_ms=5, jitter_ms=15, distribution="exponential"),
        down=Impairment(delay_ms=5, loss_pct=1.0), seed=3),
    "4 % loss up, 5 % reordering down": Spec(
        up=Impairment(delay_ms=2, loss_pct=4.0),
        down=Impairment(delay_ms=2, jitter_ms=2, reorder_pct=5.0, reorder_extra_ms=45),
        seed=4),
    "uniform 0-110 ms up (36 ms jitter)": Spec(up=Impairment(delay_ms=10, jitter_ms=110),
                                              seed=5),
}


@pytest.fixture(scope="module")
def readings(lab: NetnsPair, tmp_path_factory) -> dict[str, tuple[dict, dict]]:
    tmp = tmp_path_factory.mktemp("relay")
    return {name: measure(lab, spec, 9000 + i, tmp)
            for i, (name, spec) in enumerate(SCENARIOS.items())}


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_probe_matches_the_relay_ground_truth(readings, name: str) -> None:
    got, true = readings[name]
    spec = SCENARIOS[name]
    assert got["problem"] is None and got["kernel_timestamps"]
    # The relay saw exactly the probe's packets.
    assert true["path"]["sent"] == got["sent"] == round(DURATION_S * 50)
    # RTT within 2 ms of the hold times the relay applied (plus the veth's microseconds).
    assert got["rtt_median_ms"] == pytest.approx(true["path"]["rtt_median_ms"], abs=2.0)
    # Jitter per direction within 1 ms or 10 %: RFC 3550 J at the end, and the steady mean |D|.
    for direction in ("up", "down"):
        # the relay's two forms of J (6.4.1's floats, A.8's integers) agree to a nanosecond
        assert true[direction]["jitter_rfc3550_a8_ms"] == pytest.approx(
            true[direction]["jitter_rfc3550_ms"], abs=1e-5)
        assert close_jitter(got[f"jitter_{direction}_ms"],
                            true[direction]["jitter_rfc3550_ms"]), (direction, got, true)
        assert close_jitter(got[f"jitter_{direction}_steady_ms"],
                            true[direction]["jitter_mean_abs_d_ms"]), (direction, got, true)
    # Loss within 0.5 points of what the relay dropped (counting: it is exact here).
    assert got["loss_pct"] == pytest.approx(true["path"]["loss_pct"], abs=0.5)
    # Loss per direction, exactly what the relay dropped each way.
    assert got["reflected"] == got["sent"] - true["path"]["dropped_up"], (got, true["path"])
    assert got["reflected"] - got["received"] == true["path"]["dropped_down"], (got, true)
    assert got["loss_up_pct"] == pytest.approx(true["path"]["loss_up_pct"])
    assert got["loss_down_pct"] == pytest.approx(true["path"]["loss_down_pct"])
    # The loss pattern each listener hears, exactly: BurstR (it depends only on which packets
    # were lost) and the worst full 200 ms window (both laid on the send times the probe
    # wrote in its packets, which the relay reads from the bytes it forwarded).
    for direction in ("up", "down"):
        assert got[f"burst_ratio_{direction}"] == pytest.approx(
            true["path"][f"burst_ratio_{direction}"]), (direction, got, true["path"])
        assert got[f"burst_loss_{direction}_pct"] == pytest.approx(
            true["path"][f"burst_loss_{direction}_pct"]), (direction, got, true["path"])
    # Reordering (RFC 4737): packets the relay sent within microseconds of each other may
    # swap places on the way or tie on the receive stamp, so allow 2 or 10 %.
    for direction in ("up", "down"):
        assert abs(got[f"reordered_{direction}"] - true[direction]["reordered"]) <= max(
            2, 0.1 * true[direction]["reordered"]), (direction, got, true)
    # The realization follows the settings (seeded: this is a check of the relay itself).
    for direction in ("up", "down"):
        imp: Impairment = getattr(spec, direction)
        assert true[direction]["hold_median_ms"] >= imp.delay_ms
        assert true[direction]["loss_pct"] == pytest.approx(imp.loss_pct, abs=2.5)


def test_relay_jitter_follows_its_setting_without_reordering(readings) -> None:
    """Uniform U(0, a) extra delay, i.i.d.: the holds the relay drew (fixed by its seed) have
    E|D| = a/3, the value J estimates, and stay within [delay, delay + a]; and the relay lets a
    packet overtake another only when it arrived less than a after it, so a stream spaced
    wider than a is never reordered by the relay (only a sender that bunches its packets,
    e.g. on a loaded machine, can see it)."""
    _got, true = readings["delay 40 ms + uniform 0-24 ms"]
    imp = SCENARIOS["delay 40 ms + uniform 0-24 ms"].up
    expected = imp.expected_jitter_ms()   # 4 ms
    ups = sorted((r for r in true["records"] if r["direction"] == "up" and r["kind"] == 1
                  and r["planned_ms"] is not None), key=lambda r: r["index"])
    planned = [r["planned_ms"] for r in ups]
    assert all(imp.delay_ms - 1e-6 <= h <= imp.delay_ms + imp.jitter_ms + 1e-6 for h in planned)
    diffs = [abs(planned[i] - planned[i - 1]) for i in range(1, len(planned))]
    mean_abs_d = sum(diffs) / len(diffs)
    assert mean_abs_d == pytest.approx(expected, rel=0.2)
    sent_order = sorted(ups, key=lambda r: r["tx_ns"])
    for i, later in enumerate(sent_order):
        for earlier in sent_order[i + 1:]:
            if earlier["index"] < later["index"]:      # ``later`` overtook ``earlier``
                assert later["rx_ns"] - earlier["rx_ns"] < imp.jitter_ms * 1e6


def test_reordering_is_seen(readings) -> None:
    got, true = readings["4 % loss up, 5 % reordering down"]
    assert true["down"]["reordered"] >= 5
    assert abs(got["reordered_down"] - true["down"]["reordered"]) <= 2


def _judge(reading: dict) -> dict[str, Any]:
    from agent_kit.core.policy import load_policy
    from agent_kit.evaluate.network import evaluate_network
    from probes.network.path import PathReading

    fields = {k: v for k, v in reading.items() if k != "reordered"}
    fields["rtt_ms_samples"] = ()
    return {r.id: r for r in evaluate_network(PathReading(**fields), load_policy())}


def test_one_way_loss_feeds_the_e_model(readings) -> None:
    """4 % lost on the way up, nothing on the way back: the caller's direction carries the
    loss (its Ie_eff), the agent's hears none, and the judged MOS is the caller's."""
    got, true = readings["4 % loss up, 5 % reordering down"]
    assert true["path"]["dropped_down"] == 0 and true["path"]["dropped_up"] >= 6
    res = _judge(got)
    mos, loss = res["network.mos"], res["network.loss"]
    assert loss.details["direction"] == "up" and loss.value == pytest.approx(
        true["path"]["loss_up_pct"], abs=0.01)
    assert loss.details["round_trip_loss_pct"] == pytest.approx(true["path"]["loss_pct"],
                                                                 abs=0.01)
    assert mos.details["direction"] == "up" and mos.details["loss_basis"] == "per_direction"
    assert mos.details["up"]["loss_pct"] == pytest.approx(true["path"]["loss_up_pct"], abs=0.01)
    assert mos.details["down"]["loss_pct"] == 0.0 and mos.details["down"]["ie_eff"] == 0.0
    assert mos.value == pytest.approx(mos.details["up"]["mos"], abs=1e-3)


def test_clean_path_passes(readings) -> None:
    res = _judge(readings["clean"][0])
    assert {r.status.value for r in res.values()} == {"pass"}, res


def test_36_ms_jitter_fails_with_a_fix(readings) -> None:
    got, true = readings["uniform 0-110 ms up (36 ms jitter)"]
    assert true["up"]["jitter_rfc3550_ms"] >= 30
    jit = _judge(got)["network.jitter"]
    assert jit.status.value == "fail" and "Wi-Fi" in jit.fix and "ISP" in jit.fix


def test_4_percent_loss_fails_with_a_fix(readings) -> None:
    got, true = readings["4 % loss up, 5 % reordering down"]
    assert true["path"]["loss_pct"] >= 2.0
    loss = _judge(got)["network.loss"]
    assert loss.status.value == "fail" and "Wi-Fi" in loss.fix


def test_cli_in_the_home_namespace(lab: NetnsPair, tmp_path: Path) -> None:
    """The real CLI at home, through the relay (2 % loss up): JSON with the path checks."""
    spec = Spec(up=Impairment(delay_ms=15, jitter_ms=6, loss_pct=3.0),
                down=Impairment(delay_ms=15), seed=7)
    relay = RelayRun(lab, spec, 9100, tmp_path / "cli.json")
    home = tmp_path / "home"
    home.mkdir()
    try:
        out = subprocess.run(
            lab.exec_args(lab.home, "env", f"AGENT_KIT_HOME={home}", f"PATH={os.environ['PATH']}",
                          sys.executable, "-m", "agent_kit.face.cli", "check", "--only", "network",
                          "--reflector", f"{CENTER_ADDR}:9100", "--json"),
            capture_output=True, text=True, cwd=ROOT, timeout=60)
    finally:
        record = relay.finish()
    # The path test's own flow: the traceroute after it crossed the relay too, one flow per
    # probe (each has its own source port).
    flows = Counter(r["flow"] for r in record["records"])
    true = truth(record["records"], flows.most_common(1)[0][0])
    assert out.returncode == 1, out.stderr   # not ready: the loss fails
    report = json.loads(out.stdout)
    checks = {c["id"]: c for c in report["checks"]}
    assert {"network.rtt", "network.jitter", "network.loss", "network.mos",
            "network.hops"} <= set(checks)
    assert checks["network.rtt"]["value"] == pytest.approx(true["path"]["rtt_median_ms"],
                                                           abs=2.0)
    assert checks["network.loss"]["value"] == pytest.approx(true["path"]["loss_pct"], abs=0.5)
    assert true["path"]["loss_pct"] >= 2.0
    assert checks["network.loss"]["status"] == "fail" and checks["network.loss"]["fix"]
    # the loss is the way up's, counted by the reflector: exactly what the relay dropped
    loss = checks["network.loss"]["details"]
    assert loss["direction"] == "up" and loss["lost_up"] == true["path"]["dropped_up"]
    assert loss["lost_down"] == true["path"]["dropped_down"] == 0
    assert close_jitter(checks["network.jitter"]["details"]["up_rfc3550_ms"],
                        true["up"]["jitter_rfc3550_ms"])
    # the stream ran its whole course (300 packets) before the report came
    assert loss["sent"] == true["path"]["sent"] == round(DURATION_S * 50)
