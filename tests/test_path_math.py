"""Golden values (STANDARDS.md) for the E-model and the RFC 3550 stream statistics."""

from __future__ import annotations

import pytest

from probes.network import emodel, rtp_stats
from probes.network.path_packet import SessionCounts


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


# ---- corrections of 2026-12-01 (STANDARDS.md "Corrections and additions"; docs/standards.md)

@pytest.mark.parametrize("r", [0.5, 1, 3, 6, 6.49])
def test_mos_is_clamped_where_the_polynomial_dips_below_1(r):
    raw = 1 + 0.035 * r + r * (r - 60) * (100 - r) * 7e-6
    assert raw < 1.0                      # the G.107 Annex B polynomial itself
    assert emodel.mos_from_r(r) == 1.0


def test_mos_stays_on_the_scale_for_every_r():
    values = [emodel.mos_from_r(r / 10) for r in range(-200, 1400)]
    assert min(values) == 1.0 and max(values) == 4.5
    assert values == sorted(values)       # and never goes down as R rises


def test_one_way_loss_against_round_trip_loss_golden():
    """1 % lost each way: the listener's Ppl is 1 % (Ie_eff 3.640, R 89.397, MOS 4.324 at
    Ta 150 ms); fed the round trip's 1.99 % (1 - 0.99^2) the E-model would say Ie_eff 6.979,
    R 86.058, MOS 4.231: nearly twice the impairment."""
    g711 = emodel.CODECS["G.711"]
    round_trip = 100 * (1 - 0.99 ** 2)
    assert round_trip == pytest.approx(1.99)
    assert emodel.effective_equipment_impairment(0, 25.1, 1.0) == pytest.approx(3.640, abs=5e-4)
    assert emodel.effective_equipment_impairment(0, 25.1, round_trip) == pytest.approx(
        6.979, abs=5e-4)
    assert emodel.r_factor(150, 1.0, g711) == pytest.approx(89.397, abs=2e-3)
    assert emodel.r_factor(150, round_trip, g711) == pytest.approx(86.058, abs=2e-3)
    assert emodel.mos_from_r(emodel.r_factor(150, round_trip, g711)) == pytest.approx(
        4.231, abs=5e-4)


def test_bursty_loss_golden():
    # Ie_eff = 95 * 2 / (2 / 3 + 25.1) at 2 % loss with BurstR 3
    assert emodel.effective_equipment_impairment(0, 25.1, 2, 3) == pytest.approx(7.374, abs=5e-4)


def test_opus_is_labelled_as_estimated_narrowband():
    assert emodel.CODECS["Opus"].estimated_as_narrowband
    assert "estimated as narrowband" in emodel.CODECS["Opus"].source
    assert not any(c.estimated_as_narrowband for n, c in emodel.CODECS.items() if n != "Opus")


def test_mean_transit_difference_golden():
    """RFC 3550 J after [0, 10, 0, 10] is 1.7603 (it starts from 0); the mean |D| the J
    estimates is 10 from the first pair on."""
    assert rtp_stats.mean_transit_difference([0, 10, 0, 10]) == pytest.approx(10.0)
    assert rtp_stats.mean_transit_difference([5.0]) == 0.0
    transits = [3.0, 7.5, 4.0, 9.0, 2.0]
    assert rtp_stats.mean_transit_difference(transits) == pytest.approx((4.5 + 3.5 + 5 + 7) / 4)
    assert rtp_stats.mean_transit_difference([t + 1e6 for t in transits]) == pytest.approx(
        rtp_stats.mean_transit_difference(transits))


def test_rfc3550_j_at_the_end_reads_low_only_in_its_warm_up():
    # |D| = 10 every packet: J = 10 (1 - (15/16)^n) after n differences
    transits = [0.0, 10.0] * 150            # 300 packets, 299 differences
    assert rtp_stats.rfc3550_jitter(transits[:17]) == pytest.approx(
        10 * (1 - (15 / 16) ** 16), abs=1e-9)             # 6.44 after 16: the warm-up
    assert rtp_stats.rfc3550_jitter(transits) == pytest.approx(10.0, abs=1e-6)
    assert rtp_stats.mean_jitter(transits) < 9.85          # the old figure, a mean of J: 2 % low


def test_burst_windows_hold_enough_packets():
    times = [i * 20.0 for i in range(300)]
    last = [False] * 299 + [True]
    # only the last of 300 lost: the last full 200 ms window holds 10 packets, 1 lost
    assert rtp_stats.burst_loss_pct(times, last) == pytest.approx(10.0)
    first = [True] + [False] * 299
    assert rtp_stats.burst_loss_pct(times, first) == pytest.approx(10.0)
    # a stream shorter than one window is one window
    assert rtp_stats.burst_loss_pct([0.0, 20.0, 40.0, 60.0, 80.0],
                                    [False, False, False, False, True]) == pytest.approx(20.0)
    # three in a row at the very end: 3 of the last 10
    assert rtp_stats.burst_loss_pct(times, [False] * 297 + [True] * 3) == pytest.approx(30.0)


def _counts(highest: int, answered: set[int], reflected: int) -> SessionCounts:
    window = sum(1 << (highest - s) for s in answered if 0 <= highest - s < 64)
    return SessionCounts(1, reflected, highest, window)


def test_split_directions_places_each_loss_on_its_way():
    # 10 packets: 3 never reached the reflector, 6's echo was lost; 9's echo lost too, and
    # the final count answer says the reflector answered 9 (and 8 was the last before it)
    echoed = {0, 1, 2, 4, 5, 7, 8}
    replies = [_counts(s, {x for x in range(s + 1) if x != 3}, s) for s in sorted(echoed)]
    final = _counts(9, {0, 1, 2, 4, 5, 6, 7, 8, 9}, 9)
    split = rtp_stats.split_directions(10, echoed, replies, final)
    assert split is not None and split.filled_from_count == 0
    assert [not r for r in split.reached] == [False, False, False, True] + [False] * 6
    assert split.reflected == 9          # forward loss 1 of 10, return loss 2 of 9


def test_split_directions_without_counts_or_without_a_final_answer():
    assert rtp_stats.split_directions(5, {0, 1, 2, 3, 4}, []) is None   # an old reflector
    # the last packet's fate is unknown without the final count answer
    replies = [_counts(s, set(range(s + 1)), s + 1) for s in range(4)]
    assert rtp_stats.split_directions(5, {0, 1, 2, 3}, replies) is None
    # with it: the reflector never saw 4, so it was lost on the way out
    split = rtp_stats.split_directions(5, {0, 1, 2, 3}, replies, _counts(3, set(range(4)), 4))
    assert split is not None and split.reached == (True, True, True, True, False)


def test_split_directions_fills_unwindowed_gaps_from_the_count():
    # 100 packets; echoes of 10..89 lost (80 in a row): 10..26 are older than the window of
    # the reply to 90 (27..90), so they are placed from the final count (all 100 answered)
    echoed = set(range(10)) | set(range(90, 100))
    replies = [_counts(s, set(range(s + 1)), s + 1) for s in sorted(echoed)]
    split = rtp_stats.split_directions(100, echoed, replies,
                                       _counts(99, set(range(100)), 100))
    assert split is not None and all(split.reached) and split.filled_from_count == 17
