"""Where on the path loss or delay starts: the home network, the ISP, or beyond. Pure functions.

Segments of a traceroute (``probes.network.traceroute``), by hop:

- hop 1 is the **home** router (the link to it: Wi-Fi or the home cable);
- hops 2, 3, ... are the **isp** up to and including the first hop whose address is public,
  i.e. outside private (RFC 1918, IPv6 ULA RFC 4193), shared CGNAT (RFC 6598), link-local and
  loopback space: an ISP's access network is often in private or CGNAT space, and its first
  public router is still the ISP's. A hop that did not answer takes the segment of the hop
  before it;
- later hops, and the reflector itself, are **beyond** the ISP: the internet and the center.

Loss or delay "starts" at the hop where it first appears *and stays for every later hop*
(the usual reading of mtr output): a router that answers slowly or rarely itself (ICMP is
low priority and rate-limited on routers) but forwards well shows a bad hop followed by good
ones, which is not a problem of the path. So per hop the *floor* is the least value of that
hop and every later answering hop; the floor only rises along the path, and each rise is
what the segment into that hop adds. The hop with the largest rise at or above the level is
named (ties: the earlier hop).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from probes.network.traceroute import HopReading

SEGMENTS = ("home", "isp", "beyond")

# Not public: the IPv4/IPv6 blocks a home or an ISP's access network uses internally.
_NOT_PUBLIC = tuple(ipaddress.ip_network(n) for n in (
    "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16",   # RFC 1918
    "100.64.0.0/10",                                    # RFC 6598 shared address space (CGNAT)
    "169.254.0.0/16", "127.0.0.0/8",                    # link-local, loopback
    "fc00::/7", "fe80::/10", "::1/128",                 # ULA (RFC 4193), link-local, loopback
))


@dataclass(frozen=True)
class HopStep:
    """What the segment into one hop adds, and which segment that hop is in."""

    ttl: int
    address: str | None
    segment: str                 # one of SEGMENTS
    loss_pct: float | None       # this hop's own loss; None when it never answered
    rtt_median_ms: float | None
    added_loss_pct: float        # rise of the loss floor at this hop (0 for silent hops)
    added_delay_ms: float        # rise of the median-RTT floor at this hop


@dataclass(frozen=True)
class HopFinding:
    """Where loss and delay start; ``None`` fields when they stay under the levels."""

    steps: tuple[HopStep, ...]
    loss_at: HopStep | None
    delay_at: HopStep | None

    @property
    def segment(self) -> str | None:
        """The segment to blame: the loss's when there is loss (it hurts calls more), else the
        delay's."""
        worst = self.loss_at or self.delay_at
        return worst.segment if worst else None


def is_public(address: str) -> bool:
    """True for an address outside private, CGNAT, link-local and loopback space."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return not any(ip.version == net.version and ip in net for net in _NOT_PUBLIC)


def segments(hops: Sequence[HopReading]) -> tuple[str, ...]:
    """The segment of each hop, in order (see the module docstring)."""
    out: list[str] = []
    public_seen = False
    for hop in hops:
        if not out:
            out.append("home")
        elif hop.is_target or public_seen:
            out.append("beyond")
        else:
            out.append("isp")
            public_seen = hop.address is not None and is_public(hop.address)
    return tuple(out)


def locate(hops: Sequence[HopReading], *, loss_pct: float, delay_ms: float) -> HopFinding:
    """Name the hop where loss (rise of at least ``loss_pct`` points) and delay (rise of the
    median RTT of at least ``delay_ms``) start. Hops that never answered are skipped."""
    segs = segments(hops)
    answering = [i for i, h in enumerate(hops) if h.received > 0 and h.rtt_median_ms is not None]
    loss_floor = _floors([hops[i].loss_pct for i in answering])
    delay_floor = _floors([hops[i].rtt_median_ms or 0.0 for i in answering])
    added: dict[int, tuple[float, float]] = {}
    prev_loss = prev_delay = 0.0
    for n, i in enumerate(answering):
        added[i] = (loss_floor[n] - prev_loss, delay_floor[n] - prev_delay)
        prev_loss, prev_delay = loss_floor[n], delay_floor[n]
    steps = tuple(
        HopStep(ttl=h.ttl, address=h.address, segment=segs[i],
                loss_pct=h.loss_pct if i in added else None, rtt_median_ms=h.rtt_median_ms,
                added_loss_pct=added.get(i, (0.0, 0.0))[0],
                added_delay_ms=added.get(i, (0.0, 0.0))[1])
        for i, h in enumerate(hops))
    return HopFinding(steps=steps,
                      loss_at=_largest(steps, lambda s: s.added_loss_pct, loss_pct),
                      delay_at=_largest(steps, lambda s: s.added_delay_ms, delay_ms))


def _floors(values: Sequence[float]) -> list[float]:
    """floor[n] = min(values[n:]): what every hop from n on carries at least."""
    out: list[float] = []
    low = float("inf")
    for v in reversed(values):
        low = min(low, v)
        out.append(low)
    return out[::-1]


def _largest(steps: Sequence[HopStep], key: Callable[[HopStep], float],
             level: float) -> HopStep | None:
    best: HopStep | None = None
    for step in steps:
        value = key(step)
        if value >= level and (best is None or value > key(best)):
            best = step
    return best
