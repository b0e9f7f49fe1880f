"""The VPN: tunnel interfaces present, and whether the center's traffic goes through one."""

from __future__ import annotations

import socket
from dataclasses import dataclass

from probes.network.interfaces import (
    DEFAULT_ROUTE_PROBE,
    InterfaceInfo,
    interface_for,
    list_interfaces,
)


@dataclass(frozen=True)
class TunnelInfo:
    name: str
    is_up: bool
    addresses: tuple[str, ...]
    reason: str   # why it counts as a VPN tunnel


@dataclass(frozen=True)
class VpnReading:
    tunnels: tuple[TunnelInfo, ...]
    center_host: str | None          # None: no center configured
    center_address: str | None       # the address the host resolved to
    center_interface: str | None     # interface the OS routes the center through
    center_via_tunnel: bool | None   # None when unknown (no center, unresolvable, no route)
    default_interface: str | None
    default_via_tunnel: bool | None
    problem: str | None              # why the center route is unknown

    @property
    def connected(self) -> bool:
        return any(t.is_up and t.addresses for t in self.tunnels)


def measure_vpn(center_host: str | None) -> VpnReading:
    """List tunnels, then ask the routing table how the center and the internet are reached."""
    interfaces = list_interfaces()
    tunnels = tuple(TunnelInfo(i.name, i.is_up, i.addresses, i.kind_reason)
                    for i in interfaces if i.kind == "vpn")
    tunnel_names = {t.name for t in tunnels}
    default = interface_for(DEFAULT_ROUTE_PROBE, interfaces)
    default_name = default.name if default else None
    default_via = (default_name in tunnel_names) if default is not None else None
    if center_host is None:
        return VpnReading(tunnels, None, None, None, None, default_name, default_via,
                          "no center configured")
    address = _resolve(center_host)
    if address is None:
        return VpnReading(tunnels, center_host, None, None, None, default_name, default_via,
                          f"the center's name {center_host!r} does not resolve")
    center_if: InterfaceInfo | None = interface_for(address, interfaces)
    if center_if is None:
        return VpnReading(tunnels, center_host, address, None, None, default_name, default_via,
                          f"no route to the center ({address})")
    return VpnReading(tunnels, center_host, address, center_if.name,
                      center_if.name in tunnel_names, default_name, default_via, None)


def _resolve(host: str) -> str | None:
    try:
        return str(socket.getaddrinfo(host, None, type=socket.SOCK_DGRAM)[0][4][0])
    except (socket.gaierror, UnicodeError, IndexError):
        return None
