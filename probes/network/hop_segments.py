"""Which segment of the path each traceroute hop is in: home, ISP, or beyond. Pure functions.

Segments of a traceroute (``probes.network.traceroute``), by hop:

- hop 1 is the **home** router (the link to it: Wi-Fi or the home cable);
- hops 2, 3, ... are the **isp** up to and including the first hop whose address is public,
  i.e. outside private (RFC 1918, IPv6 ULA RFC 4193), shared CGNAT (RFC 6598), link-local and
  loopback space: an ISP's access network is often in private or CGNAT space, and its first
  public router is still the ISP's. A hop that did not answer takes the segment of the hop
  before it;
- later hops, and the reflector itself, are **beyond** the ISP: the internet and the center.

A fact about the reading (hop order and address class); where loss or delay *starts*, and so
which segment to blame, is judged in ``agent_kit.evaluate.hops``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from probes.network.traceroute import HopReading

SEGMENTS = ("home", "isp", "beyond")

# Not public: the IPv4/IPv6 blocks a home or an ISP's access network uses internally.
_NOT_PUBLIC = tuple(ipaddress.ip_network(n) for n in (
    "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16",   # RFC 1918
    "100.64.0.0/10",                                    # RFC 6598 shared address space (CGNAT)
    "169.254.0.0/16", "127.0.0.0/8",                    # link-local, loopback
    "fc00::/7", "fe80::/10", "::1/128",                 # ULA (RFC 4193), link-local, loopback
))


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
