"""Golden values (STANDARDS.md) for the E-model and the RFC 3550 stream statistics."""

from __future__ import annotations

import pytest

from probes.network import emodel, rtp_stats


@pytest.mark.parametrize(("r", "mos"), [(93.2, 4.409), (90, 4.339), (80, 4.024), (70, 3.597),
                                        (60, 3.100), (50, 2.575)])
def test_mos_from_r_golden(r, mos):
    assert emodel.mos_from_r(r) == pytest.approx(mos, abs=5e-4)


def test_mos_clamps():
    assert emodel.mos_from_r(-5) == 1.0
    assert emodel.mos_from_r(120) == 4.5


@pytest.mark.parametrize(("ta", "idd"), [(100, 0.0), (150, 0.164), (200, 3.044), (250, 8.917),
                                         (300, 14.761), (400, 24.070), (500, 30.636)])
def test_delay_impairment_golden(ta, idd):
    assert emodel.delay_impairment(ta) == pytest.approx(idd, abs=5e-4)


@pytest.mark.parametrize(("bpl", "loss", "ie_eff"), [
    (25.1, 1, 3.640), (25.1, 2, 7.011), (25.1, 5, 15.781),
    (4.3, 1, 17.925), (4.3, 2, 30.159), (4.3, 5, 51.075)])
def test_ie_eff_golden(bpl, loss, ie_eff):
    assert emodel.effective_equipment_impairment(0, bpl, loss) == pytest.approx(ie_eff, abs=5e-4)


@pytest.mark.parametrize(("ta", "loss", "r", "mos"), [(150, 1, 89.397, 4.324),
                                                      (400, 5, 53.349, 2.751)])
def test_r_and_mos_golden(ta, loss, r, mos):
    got = emodel.r_factor(ta, loss, emodel.CODECS["G.711"])
    assert got == pytest.approx(r, abs=2e-3)
    assert emodel.mos_from_r(got) == pytest.approx(mos, abs=5e-4)


def test_codec_table_matches_policy_choices():
    from agent_kit.core.checks import BY_ID

    assert set(emodel.CODECS) == set(BY_ID["network.mos"].params["codec"].choices)
    assert emodel.CODECS["G.711"].bpl == 25.1
    assert emodel.CODECS["G.711-noplc"].bpl == 4.3


def test_estimate_builds_ta_from_rtt_jitter_and_packetisation():
    res = emodel.estimate(rtt_ms=200, jitter_ms=10, loss_pct=1, codec_name="G.711")
    assert res.ta_ms == pytest.approx(100 + 20 + 20)
    assert res.r == pytest.approx(93.2 - emodel.delay_impairment(140) - 3.640, abs=1e-3)
    with pytest.raises(ValueError):
        emodel.estimate(10, 1, 0, "G.722.2")


def test_bursty_loss_hurts_more_than_random():
    random_r = emodel.r_factor(50, 2, emodel.CODECS["G.711"], burst_r=1)
    bursty_r = emodel.r_factor(50, 2, emodel.CODECS["G.711"], burst_r=3)
    assert bursty_r < random_r


def test_rfc3550_jitter_golden():
    series = rtp_stats.rfc3550_jitter_series([0, 10, 0, 10])
    assert series == pytest.approx([0.625, 1.2109, 1.7603], abs=5e-5)
    assert rtp_stats.rfc3550_jitter([0, 10, 0, 10]) == pytest.approx(1.7603, abs=5e-5)
    assert rtp_stats.rfc3550_jitter([5.0]) == 0.0


def test_rfc3550_jitter_ignores_constant_clock_offset():
    transits = [3.0, 7.5, 4.0, 9.0, 2.0]
    shifted = [t + 123456.0 for t in transits]
    assert rtp_stats.rfc3550_jitter(shifted) == pytest.approx(rtp_stats.rfc3550_jitter(transits))


def test_mean_jitter_converges_to_mean_absolute_difference():
    # alternating 0/10 ms transits: |D| = 10 every packet, J -> 10
    transits = [0.0, 10.0] * 200
    assert rtp_stats.mean_jitter(transits) == pytest.approx(10.0, rel=0.05)


def test_loss_and_burst_loss():
    assert rtp_stats.loss_pct(200, 196) == 2.0
    assert rtp_stats.loss_pct(0, 0) == 0.0
    times = [i * 20.0 for i in range(100)]
    lost = [False] * 100
    lost[50] = lost[51] = True           # 2 of the 10 packets in a 200 ms window
    assert rtp_stats.burst_loss_pct(times, lost) == pytest.approx(20.0)
    assert rtp_stats.burst_loss_pct(times, [False] * 100) == 0.0
    with pytest.raises(ValueError):
        rtp_stats.burst_loss_pct(times, lost[:5])


def test_reordering_and_duplicates():
    assert rtp_stats.count_reordered([0, 1, 3, 2, 4, 5]) == 1
    assert rtp_stats.count_reordered([0, 2, 3, 4, 1]) == 1
    assert rtp_stats.count_reordered([0, 1, 1, 2]) == 0
    assert rtp_stats.count_duplicates([0, 1, 1, 2, 2, 2]) == 3


def test_burst_ratio():
    assert rtp_stats.burst_ratio([False] * 50) == 1.0
    # isolated single losses: p small, q = 1 -> BurstR ~ 1
    pattern = ([False] * 9 + [True]) * 20
    assert rtp_stats.burst_ratio(pattern) == pytest.approx(1 / (1 / 9 + 1), rel=1e-6)
    bursty = ([False] * 45 + [True] * 5) * 4
    assert rtp_stats.burst_ratio(bursty) > 3


def test_percentile_matches_linear_interpolation():
    vals = [1.0, 2.0, 3.0, 4.0]
    assert rtp_stats.percentile(vals, 50) == 2.5
    assert rtp_stats.percentile(vals, 95) == pytest.approx(3.85)
    assert rtp_stats.percentile([7.0], 95) == 7.0
    with pytest.raises(ValueError):
        rtp_stats.percentile([], 50)
