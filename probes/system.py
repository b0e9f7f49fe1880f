"""The workstation itself (psutil): CPU, memory, disk, power, uptime, and the link in use."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

from probes.network.interfaces import DEFAULT_ROUTE_PROBE, InterfaceInfo, LinkKind, interface_for


@dataclass(frozen=True)
class PowerReading:
    has_battery: bool
    on_battery: bool | None
    charge_pct: float | None
    minutes_left: float | None


@dataclass(frozen=True)
class SystemReading:
    cpu_load_pct: float
    logical_cores: int
    physical_cores: int | None
    memory_available_mb: float
    memory_total_mb: float
    disk_free_gb: float
    disk_path: str
    power: PowerReading
    uptime_days: float


@dataclass(frozen=True)
class LinkReading:
    """The link the default route uses. ``interface`` is None when there is no default route."""

    interface: str | None
    kind: LinkKind | None
    kind_reason: str
    speed_mbps: int | None


def measure_system(cpu_sample_s: float = 0.5, disk_path: str | None = None) -> SystemReading:
    """Sample the CPU over ``cpu_sample_s`` and read memory, disk, power and uptime."""
    load = psutil.cpu_percent(interval=cpu_sample_s)
    mem = psutil.virtual_memory()
    path = disk_path or str(Path.home() if Path.home().exists() else Path(os.sep))
    disk = psutil.disk_usage(path)
    battery = psutil.sensors_battery() if hasattr(psutil, "sensors_battery") else None
    if battery is None:
        power = PowerReading(has_battery=False, on_battery=None, charge_pct=None,
                             minutes_left=None)
    else:
        secs = battery.secsleft
        minutes = None if secs in (psutil.POWER_TIME_UNKNOWN, psutil.POWER_TIME_UNLIMITED) \
            else secs / 60.0
        power = PowerReading(has_battery=True, on_battery=not battery.power_plugged
                             if battery.power_plugged is not None else None,
                             charge_pct=float(battery.percent), minutes_left=minutes)
    return SystemReading(
        cpu_load_pct=float(load),
        logical_cores=psutil.cpu_count(logical=True) or 1,
        physical_cores=psutil.cpu_count(logical=False),
        memory_available_mb=mem.available / 2**20,
        memory_total_mb=mem.total / 2**20,
        disk_free_gb=disk.free / 2**30,
        disk_path=path,
        power=power,
        uptime_days=(time.time() - psutil.boot_time()) / 86400.0,
    )


def measure_link(destination: str = DEFAULT_ROUTE_PROBE) -> LinkReading:
    """Which interface carries traffic to ``destination`` (the default route by default).

    When that interface is a VPN tunnel, the physical link underneath is what the agent's
    Wi-Fi-or-cable question is about: we then report the best-ranked physical interface that
    is up and has an address.
    """
    info: InterfaceInfo | None = interface_for(destination)
    if info is None:
        return LinkReading(None, None, "no route to the internet or the center", None)
    if info.kind == "vpn":
        physical = _physical_under_tunnel()
        if physical is not None:
            return LinkReading(physical.name, physical.kind,
                               f"{physical.kind_reason} (under VPN {info.name})",
                               physical.speed_mbps)
    return LinkReading(info.name, info.kind, info.kind_reason, info.speed_mbps)


def _physical_under_tunnel() -> InterfaceInfo | None:
    from probes.network.interfaces import list_interfaces

    rank = {"wired": 0, "wifi": 1, "cellular": 2}
    candidates = [i for i in list_interfaces()
                  if i.is_up and i.addresses and i.kind in rank]
    return min(candidates, key=lambda i: rank[i.kind], default=None)
