"""Network interfaces: which one carries traffic to an address, and what kind each one is.

The route lookup asks the OS itself: connecting a UDP socket sends no packet but makes the
kernel pick the source address its routing table (policy routing included) would use; that
address names the interface. This works the same on Linux, Windows and macOS.
"""

from __future__ import annotations

import contextlib
import ipaddress
import re
import socket
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import psutil

LinkKind = Literal["wired", "wifi", "cellular", "vpn", "loopback", "virtual", "unknown"]

# A destination used only to ask the routing table for the default route. It is TEST-NET-3
# (RFC 5737): no packet is sent to it; connect() on a UDP socket only selects a route.
DEFAULT_ROUTE_PROBE = "203.0.113.254"

# Interface-name patterns of VPN clients: OpenVPN/WireGuard/PPP on every OS, macOS utun and
# ipsec, Cisco AnyConnect (cscotun), Palo Alto GlobalProtect (gpd), Fortinet (fortissl),
# Windows adapters named after their driver.
_VPN_NAME = re.compile(
    r"^(tun|tap|wg|ppp|utun|ipsec|vti|cscotun|gpd|fortissl|nordlynx|zt)\d*|"
    r"vpn|wireguard|openvpn|anyconnect|globalprotect|tap-windows|wintun|fortinet|pangp",
    re.IGNORECASE,
)
_WIFI_NAME = re.compile(r"^(wl|wlan|wifi|ath|ra)\d*|wi-?fi|wireless|802\.11|airport",
                        re.IGNORECASE)
_CELL_NAME = re.compile(r"^(wwan|rmnet|ccmni)\d*|mobile broadband|cellular", re.IGNORECASE)
_VIRTUAL_NAME = re.compile(r"^(veth|docker|br-|virbr|vmnet|vboxnet|lxc|cni|flannel)",
                           re.IGNORECASE)

# Linux ARPHRD_* values from <linux/if_arp.h> for the interface's link-layer type.
_ARPHRD_PPP = 512
_ARPHRD_NONE = 65534  # tun devices and WireGuard
_ARPHRD_LOOPBACK = 772


@dataclass(frozen=True)
class InterfaceInfo:
    name: str
    kind: LinkKind
    is_up: bool
    speed_mbps: int | None   # None when the OS does not tell
    addresses: tuple[str, ...]
    kind_reason: str


# Interface kinds from the kernel's own facts where it publishes them (sysfs on Linux), chosen
# once; elsewhere ``classify_interface`` goes by the interface's name alone.
if sys.platform.startswith("linux"):
    def _sysfs(name: str) -> Path | None:
        """The interface's sysfs folder, or None if the kernel has no such interface."""
        path = Path("/sys/class/net") / name
        return path if path.exists() else None

else:
    def _sysfs(name: str) -> Path | None:
        """No sysfs off Linux."""
        return None


def classify_interface(name: str) -> tuple[LinkKind, str]:
    """The kind of an interface and why we think so (sysfs facts on Linux, else its name)."""
    sysfs = _sysfs(name)
    if sysfs is not None:
        try:
            arp_type = int((sysfs / "type").read_text().strip())
        except (OSError, ValueError):
            arp_type = -1
        uevent = ""
        with contextlib.suppress(OSError):
            uevent = (sysfs / "uevent").read_text()
        if arp_type == _ARPHRD_LOOPBACK:
            return "loopback", "loopback device"
        if "DEVTYPE=wireguard" in uevent:
            return "vpn", "WireGuard device"
        if (sysfs / "tun_flags").exists():
            return "vpn", "tun/tap device (VPN client)"
        if arp_type in (_ARPHRD_PPP,):
            return "vpn", "point-to-point (PPP) device"
        if (sysfs / "wireless").exists() or (sysfs / "phy80211").exists():
            return "wifi", "802.11 wireless device"
        if "DEVTYPE=wwan" in uevent:
            return "cellular", "mobile broadband modem"
        if (sysfs / "device").exists():
            return "wired", "physical Ethernet device"
        if "DEVTYPE=vlan" in uevent or "DEVTYPE=bond" in uevent:
            return "wired", "VLAN/bond over a wired device"
        if _VPN_NAME.search(name):
            return "vpn", f"name {name!r} is a VPN client's"
        return "virtual", "virtual device (no hardware behind it)"
    if name.lower().startswith("lo"):
        return "loopback", "loopback device"
    for pattern, kind in ((_VPN_NAME, "vpn"), (_CELL_NAME, "cellular"), (_WIFI_NAME, "wifi"),
                          (_VIRTUAL_NAME, "virtual")):
        if pattern.search(name):
            return kind, f"name {name!r} is a {kind} adapter's"  # type: ignore[return-value]
    if re.match(r"^(en|eth|em|ethernet)", name, re.IGNORECASE):
        # macOS names Wi-Fi en0 too; its wireless state would need CoreWLAN. Say so.
        return "wired", f"name {name!r} is an Ethernet adapter's"
    return "unknown", f"name {name!r} says nothing of its kind"


def list_interfaces() -> tuple[InterfaceInfo, ...]:
    """Every interface the OS reports, with its kind, state, speed and addresses."""
    stats = psutil.net_if_stats()
    addrs = psutil.net_if_addrs()
    result = []
    for name in sorted(set(stats) | set(addrs)):
        kind, reason = classify_interface(name)
        st = stats.get(name)
        ips = tuple(a.address.split("%")[0] for a in addrs.get(name, ())
                    if a.family in (socket.AF_INET, socket.AF_INET6))
        result.append(InterfaceInfo(
            name=name, kind=kind, is_up=bool(st and st.isup),
            speed_mbps=(st.speed or None) if st else None, addresses=ips, kind_reason=reason,
        ))
    return tuple(result)


def source_address_for(destination: str, port: int = 9) -> str | None:
    """The local address the OS would send from to reach ``destination``; None if unroutable."""
    try:
        infos = socket.getaddrinfo(destination, port, type=socket.SOCK_DGRAM)
    except (socket.gaierror, UnicodeError):
        return None
    for family, _, _, _, sockaddr in infos:
        with socket.socket(family, socket.SOCK_DGRAM) as sock:
            try:
                sock.connect(sockaddr)  # selects a route; sends nothing
                return str(sock.getsockname()[0]).split("%")[0]
            except OSError:
                continue
    return None


def interface_for(destination: str, interfaces: tuple[InterfaceInfo, ...] | None = None
                  ) -> InterfaceInfo | None:
    """The interface whose address the OS uses to reach ``destination``."""
    src = source_address_for(destination)
    if src is None:
        return None
    for info in interfaces if interfaces is not None else list_interfaces():
        if src in info.addresses:
            return info
    return None


def is_loopback_address(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"

