"""Golden tests of where loss or delay starts (agent_kit.evaluate.hops.locate), with
constructed hops."""

from __future__ import annotations

import pytest

from agent_kit.evaluate.hops import locate
from tests.test_hop_segments import hop


def test_clean_path_names_nothing() -> None:
    finding = locate([hop(1, "192.168.1.1", 5, 1.0), hop(2, "100.64.0.1", 5, 8.0),
                      hop(3, "198.51.100.2", 5, 12.0, target=True)],
                     loss_pct=20, delay_ms=50)
    assert finding.loss_at is None and finding.delay_at is None and finding.segment is None
    assert [s.added_delay_ms for s in finding.steps] == [1.0, 7.0, 4.0]
    assert [s.added_loss_pct for s in finding.steps] == [0.0, 0.0, 0.0]


def test_loss_from_the_home_link_is_home() -> None:
    finding = locate([hop(1, "192.168.1.1", 3, 1.0), hop(2, "100.64.0.1", 2, 8.0),
                      hop(3, "198.51.100.2", 3, 12.0, target=True)],
                     loss_pct=20, delay_ms=50)
    assert finding.loss_at is not None and finding.loss_at.ttl == 1
    assert finding.segment == "home"
    assert [s.added_loss_pct for s in finding.steps] == [40.0, 0.0, 0.0]


def test_loss_after_the_isp_is_beyond() -> None:
    finding = locate([hop(1, "192.168.1.1", 5, 1.0), hop(2, "100.64.0.1", 5, 8.0),
                      hop(3, "198.51.100.2", 3, 12.0, target=True)],
                     loss_pct=20, delay_ms=50)
    assert finding.loss_at is not None and finding.loss_at.ttl == 3
    assert finding.segment == "beyond"


def test_a_rate_limited_router_is_not_loss() -> None:
    # hop 2 answers 2 of 5 itself, but forwards everything: the hops after it lose nothing
    finding = locate([hop(1, "192.168.1.1", 5, 1.0), hop(2, "100.64.0.1", 2, 8.0),
                      hop(3, "81.2.3.4", 5, 9.0), hop(4, "198.51.100.2", 5, 12.0, target=True)],
                     loss_pct=20, delay_ms=50)
    assert finding.loss_at is None


def test_a_slow_answering_router_is_not_delay_but_a_lasting_rise_is() -> None:
    # hop 2 answers slowly itself (200 ms) but the path after it is fast: no delay there;
    # hop 4 adds 61 ms that every later hop keeps: beyond the ISP's first public router
    finding = locate([hop(1, "192.168.1.1", 5, 2.0), hop(2, "100.64.0.1", 5, 200.0),
                      hop(3, "81.2.3.4", 5, 9.0), hop(4, "62.1.1.1", 5, 70.0),
                      hop(5, "198.51.100.2", 5, 74.0, target=True)],
                     loss_pct=20, delay_ms=50)
    assert [s.added_delay_ms for s in finding.steps] == [2.0, 7.0, 0.0, 61.0, 4.0]
    assert finding.delay_at is not None and finding.delay_at.ttl == 4
    assert finding.delay_at.segment == "beyond" and finding.segment == "beyond"


def test_delay_on_the_access_line_is_isp() -> None:
    finding = locate([hop(1, "192.168.1.1", 5, 1.5), hop(2, "100.64.0.1", 5, 80.0),
                      hop(3, "81.2.3.4", 5, 82.0), hop(4, "198.51.100.2", 5, 90.0, target=True)],
                     loss_pct=20, delay_ms=50)
    assert finding.delay_at is not None and finding.delay_at.ttl == 2
    assert finding.delay_at.added_delay_ms == pytest.approx(78.5)
    assert finding.loss_at is None and finding.segment == "isp"


def test_loss_wins_over_delay_and_the_largest_rise_is_named() -> None:
    # Wi-Fi adds 60 ms at hop 1; hop 3 (beyond) adds 60 % loss on top of hop 1's 20 %
    finding = locate([hop(1, "192.168.1.1", 4, 61.0), hop(2, "100.64.0.1", 4, 65.0),
                      hop(3, "198.51.100.2", 1, 70.0, target=True)],
                     loss_pct=20, delay_ms=50)
    assert finding.delay_at is not None and finding.delay_at.segment == "home"
    assert finding.loss_at is not None and finding.loss_at.ttl == 3
    assert finding.loss_at.added_loss_pct == pytest.approx(60.0)
    assert finding.segment == "beyond"


def test_silent_hops_are_skipped_and_keep_their_segment() -> None:
    finding = locate([hop(1, "192.168.1.1", 5, 1.0), hop(2, None, 0),
                      hop(3, "81.2.3.4", 2, 9.0), hop(4, "198.51.100.2", 2, 12.0, target=True)],
                     loss_pct=20, delay_ms=50)
    assert finding.steps[1].segment == "isp" and finding.steps[1].loss_pct is None
    assert finding.loss_at is not None and finding.loss_at.ttl == 3
    assert finding.loss_at.segment == "isp"


def test_no_hops() -> None:
    finding = locate([], loss_pct=20, delay_ms=50)
    assert finding.steps == () and finding.segment is None
