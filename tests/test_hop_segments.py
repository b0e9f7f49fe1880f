"""Golden tests of which segment each hop is in (probes.network.hop_segments), with constructed
hops; where loss or delay starts is in tests/test_hop_locate.py."""

from __future__ import annotations

import pytest

from probes.network.hop_segments import is_public, segments
from probes.network.traceroute import HopReading


def hop(ttl: int, address: str | None, received: int, rtt: float | None = None, *,
        sent: int = 5, target: bool = False) -> HopReading:
    return HopReading(ttl=ttl, address=address, sent=sent, received=received,
                      rtt_median_ms=rtt if received else None,
                      rtt_p95_ms=rtt if received else None, is_target=target)


@pytest.mark.parametrize(("address", "public"), [
    ("192.168.1.1", False), ("10.0.0.1", False), ("172.31.255.254", False),
    ("172.32.0.1", True), ("100.64.0.1", False), ("100.127.255.255", False),
    ("100.128.0.1", True), ("169.254.1.1", False), ("127.0.0.1", False),
    ("84.17.10.1", True), ("198.51.100.2", True), ("fd00::1", False), ("fe80::1", False),
    ("2001:db8::1", True), ("not an address", False),
])
def test_public_addresses(address: str, public: bool) -> None:
    assert is_public(address) is public


def test_segments_cgnat_isp_then_first_public_hop_is_still_isp() -> None:
    hops = [hop(1, "192.168.1.1", 5, 2), hop(2, "100.64.3.1", 5, 9),
            hop(3, None, 0), hop(4, "84.17.10.1", 5, 11), hop(5, "62.2.1.1", 5, 14),
            hop(6, "203.0.113.9", 5, 20, target=True)]
    assert segments(hops) == ("home", "isp", "isp", "isp", "beyond", "beyond")


def test_segments_public_second_hop_and_private_center() -> None:
    assert segments([hop(1, "192.168.0.1", 5, 1), hop(2, "81.2.3.4", 5, 8),
                     hop(3, "81.2.9.9", 5, 9)]) == ("home", "isp", "beyond")
    # a center inside private space (reached over a private network): the reflector is beyond
    assert segments([hop(1, "192.168.0.1", 5, 1), hop(2, "10.1.0.1", 5, 8),
                     hop(3, "10.9.0.5", 5, 9, target=True)]) == ("home", "isp", "beyond")
