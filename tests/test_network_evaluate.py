"""Path judgement from constructed readings (pure); the real path is in test_path_lab.py."""

from __future__ import annotations

import pytest

from agent_kit.core.policy import load_policy
from agent_kit.core.results import Status
from agent_kit.evaluate.network import CHECK_IDS, evaluate_network, network_unknown
from probes.network.path import PathReading


def reading(rtt=20.0, jitter=1.0, loss=0.0, sent=300, burst_ratio=1.0, problem=None,
            received=None, loss_down=0.0, counted=True):
    """A stand-in reading: ``loss`` % lost on the way to the center, ``loss_down`` % of what
    reached it lost on the way back; ``counted`` False: a reflector that does not count."""
    reflected = round(sent * (1 - loss / 100))
    got = round(reflected * (1 - loss_down / 100)) if received is None else received
    has = got > 0
    per_direction = counted and received is None
    return PathReading(
        target="192.0.2.2:8751", sent=sent, received=got, duplicates=0,
        rtt_ms_samples=(rtt,) * got if has else (),
        rtt_median_ms=rtt if has else None, rtt_p95_ms=rtt + 2 * jitter if has else None,
        rtt_min_ms=rtt - jitter if has else None,
        jitter_ms=jitter if has else None, jitter_up_ms=jitter if has else None,
        jitter_down_ms=jitter / 2 if has else None,
        jitter_up_steady_ms=jitter if has else None,
        jitter_down_steady_ms=jitter / 2 if has else None,
        loss_pct=100.0 * (sent - got) / sent if received is None else loss,
        burst_loss_pct=min(100.0, (loss + loss_down) * 5), burst_ratio=burst_ratio,
        reordered_up=0, reordered_down=0, duration_s=6.0, packet_interval_ms=20.0,
        payload_bytes=160, kernel_timestamps=True, problem=problem,
        reflected=reflected if per_direction else None,
        loss_up_pct=100.0 * (sent - reflected) / sent if per_direction else None,
        loss_down_pct=100.0 * (reflected - got) / reflected if per_direction and reflected
        else (0.0 if per_direction else None),
        burst_loss_up_pct=min(100.0, loss * 5) if per_direction else None,
        burst_loss_down_pct=min(100.0, loss_down * 5) if per_direction else None,
        burst_ratio_up=burst_ratio if per_direction else None,
        burst_ratio_down=1.0 if per_direction else None)


@pytest.fixture(scope="module")
def policy():
    return load_policy()


def by_id(results):
    return {r.id: r for r in results}


def test_clean_path_passes(policy):
    res = by_id(evaluate_network(reading(rtt=20, jitter=1, loss=0), policy))
    assert set(res) == set(CHECK_IDS)
    assert {r.status for r in res.values()} == {Status.PASS}
    assert res["network.rtt"].value == 20.0 and res["network.loss"].value == 0.0
    assert res["network.rtt"].details["rtt_ms"] == [20.0] * 300
    assert res["network.mos"].value == pytest.approx(4.41, abs=0.01)   # G.107 R 93.2 max
    assert all(r.fix is None for r in res.values())


def test_30_ms_jitter_fails_with_a_fix_naming_wifi(policy):
    res = by_id(evaluate_network(reading(jitter=31), policy))
    jit = res["network.jitter"]
    assert jit.status is Status.FAIL and jit.value == 31.0
    assert "Wi-Fi" in jit.fix and "ISP" in jit.fix
    assert res["network.loss"].status is Status.PASS


def test_20_ms_jitter_warns(policy):
    assert by_id(evaluate_network(reading(jitter=22), policy))["network.jitter"].status \
        is Status.WARN


def test_2_percent_loss_fails_with_a_fix(policy):
    res = by_id(evaluate_network(reading(loss=2.0, sent=500), policy))
    loss = res["network.loss"]
    assert loss.status is Status.FAIL and loss.value == 2.0
    assert "Wi-Fi" in loss.fix and "ISP" in loss.fix
    assert loss.details["sent"] == 500 and loss.details["received"] == 490
    assert "10 of 500" in loss.message


def test_1_percent_loss_warns(policy):
    assert by_id(evaluate_network(reading(loss=1.0), policy))["network.loss"].status \
        is Status.WARN


@pytest.mark.parametrize(("rtt", "status"), [(99.9, Status.PASS), (100, Status.WARN),
                                             (299, Status.WARN), (300, Status.FAIL)])
def test_rtt_levels(policy, rtt, status):
    assert by_id(evaluate_network(reading(rtt=rtt), policy))["network.rtt"].status is status


def test_mos_golden_ta_150_loss_1(policy):
    """Ta = 240/2 + 2 x 5 + 20 (G.711 packet) = 150 ms, 1 % random loss: R 89.397, MOS 4.324
    (the golden pair of tests/test_path_math.py)."""
    mos = by_id(evaluate_network(reading(rtt=240, jitter=5, loss=1.0, sent=1000), policy))[
        "network.mos"]
    assert mos.details["ta_ms"] == 150.0
    assert mos.details["r"] == pytest.approx(89.4, abs=0.05)
    assert mos.value == pytest.approx(4.32, abs=0.005)
    assert mos.status is Status.PASS


def test_mos_golden_ta_400_loss_5_fails_naming_the_delay(policy):
    """Idd 24.07 (Ta 400 ms) outweighs Ie_eff 15.78 (5 % loss): the fix names the delay."""
    mos = by_id(evaluate_network(reading(rtt=740, jitter=5, loss=5.0, sent=1000), policy))[
        "network.mos"]
    assert mos.details["ta_ms"] == 400.0
    assert mos.details["idd"] == pytest.approx(24.07, abs=0.005)
    assert mos.details["ie_eff"] == pytest.approx(15.78, abs=0.005)
    assert mos.value == pytest.approx(2.75, abs=0.005)
    assert mos.status is Status.FAIL and "delay" in mos.fix


def test_mos_fix_names_loss_when_loss_dominates(policy):
    mos = by_id(evaluate_network(reading(rtt=20, jitter=1, loss=10.0, sent=1000), policy))[
        "network.mos"]
    assert mos.details["idd"] == 0.0
    assert mos.status is Status.FAIL and "lost" in mos.fix


def test_codec_comes_from_the_policy(tmp_path):
    f = tmp_path / "p.toml"
    f.write_text('[checks."network.mos"]\ncodec = "G.711-noplc"\n')
    plc = by_id(evaluate_network(reading(loss=2.0), load_policy()))["network.mos"]
    noplc = by_id(evaluate_network(reading(loss=2.0), load_policy(f)))["network.mos"]
    assert noplc.details["codec"] == "G.711-noplc" and "G.711-noplc" in noplc.message
    # G.113: Bpl 4.3 without concealment vs 25.1 with it -> Ie_eff 30.159 vs 7.011 at 2 %.
    assert noplc.details["ie_eff"] == pytest.approx(30.16, abs=0.01)
    assert plc.details["ie_eff"] == pytest.approx(7.01, abs=0.01)
    assert noplc.value < plc.value


def test_nothing_back_is_unknown_with_the_probe_reason(policy):
    res = evaluate_network(reading(received=0, loss=100.0,
                                   problem="no answer from the reflector 192.0.2.2:8751"),
                           policy)
    assert [r.status for r in res] == [Status.UNKNOWN] * 4
    assert all("no answer from the reflector" in r.message for r in res)


def test_network_unknown_gives_every_check(policy):
    res = network_unknown(policy, "no center configured")
    assert [r.id for r in res] == list(CHECK_IDS)
    assert all(r.status is Status.UNKNOWN and r.message == "no center configured" for r in res)


def test_a_wired_link_gets_no_wifi_advice_in_any_path_fix() -> None:
    """issue 16: a cable is evidence that Wi-Fi is not the cause; every fix follows it."""
    from agent_kit.evaluate.path import evaluate_path
    from tests.test_hops_evaluate import HOME_LOSS
    from tests.test_hops_evaluate import reading as hop_reading

    bad = reading(rtt=350.0, jitter=45.0, loss=5.0)
    for hops in (None, hop_reading(*HOME_LOSS)):
        for r in evaluate_path(bad, hops, load_policy(), link_kind="wired"):
            assert "Wi-Fi" not in (r.fix or ""), (r.id, r.fix)
        fixes = [r.fix or "" for r in evaluate_path(bad, hops, load_policy())]
        assert any("Wi-Fi" in f for f in fixes)    # link unknown: Wi-Fi may be the cause
