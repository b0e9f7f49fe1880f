"""The catalogue of checks: every check id, its group, unit and how its thresholds read.

This is the single list the policy loader validates against, the runner reports in, and the
docs test walks. A probe group adds its checks here; thresholds live in the policy, not here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from agent_kit.core.i18n import N_

Direction = Literal["higher_is_worse", "lower_is_worse", "state"]

GROUPS: tuple[str, ...] = ("system", "vpn", "network", "bandwidth", "audio")


@dataclass(frozen=True)
class ParamSpec:
    """An extra policy key of one check (beyond warn/fail/unknown_blocks)."""

    type: type | tuple[type, ...]
    choices: tuple[str, ...] = ()
    doc: str = ""


@dataclass(frozen=True)
class CheckSpec:
    id: str
    group: str
    title: str      # English msgid, marked with N_; shown through _() (report.check_title)
    unit: str | None
    direction: Direction
    params: dict[str, ParamSpec] = field(default_factory=dict)

    @property
    def has_thresholds(self) -> bool:
        return self.direction != "state"


_STATUS_CHOICE = ("pass", "warn", "fail")

CATALOGUE: tuple[CheckSpec, ...] = (
    CheckSpec("system.cpu", "system", N_("CPU load"), "%", "higher_is_worse",
              {"min_cores": ParamSpec(int, doc="fewer logical cores than this fails")}),
    CheckSpec("system.memory", "system", N_("Memory available"), "MB", "lower_is_worse"),
    CheckSpec("system.disk", "system", N_("Disk free"), "GB", "lower_is_worse"),
    CheckSpec("system.power", "system", N_("Battery charge (on battery)"), "%", "lower_is_worse"),
    CheckSpec("system.uptime", "system", N_("Time since restart"), "days", "higher_is_worse"),
    CheckSpec("network.link", "network", N_("Connection type"), None, "state",
              {"wifi": ParamSpec(str, _STATUS_CHOICE, "status when the default route uses Wi-Fi"),
               "cellular": ParamSpec(str, _STATUS_CHOICE,
                                     "status when the default route uses a mobile modem")}),
    CheckSpec("vpn.connected", "vpn", N_("VPN tunnel"), None, "state",
              {"mode": ParamSpec(str, ("required", "optional", "off"),
                                 "required: no tunnel fails; optional: no tunnel passes; "
                                 "off: the VPN checks are not judged")}),
    CheckSpec("vpn.route", "vpn", N_("Center reached through the VPN"), None, "state",
              {"split_tunnel": ParamSpec(str, ("allowed", "forbidden"),
                                         "forbidden: the default route must use the tunnel too")}),
    CheckSpec("network.rtt", "network", N_("Round-trip time to the center"), "ms",
              "higher_is_worse"),
    CheckSpec("network.jitter", "network", N_("Jitter (RFC 3550)"), "ms", "higher_is_worse"),
    CheckSpec("network.loss", "network", N_("Packet loss"), "%", "higher_is_worse"),
    CheckSpec("network.mos", "network", N_("Estimated call quality (MOS)"), "MOS",
              "lower_is_worse",
              {"codec": ParamSpec(str, ("G.711", "G.711-noplc", "G.729", "Opus"),
                                  "codec assumed by the E-model")}),
    CheckSpec("network.hops", "network", N_("Where on the path problems start"), None, "state",
              {"loss_pct": ParamSpec((int, float), doc="loss (percentage points) a segment must "
                                     "add, lasting to the center, to be named"),
               "delay_ms": ParamSpec((int, float), doc="median round-trip time a segment must "
                                     "add, lasting to the center, to be named")}),
    CheckSpec("bandwidth.down", "bandwidth", N_("Download speed"), "Mbit/s", "lower_is_worse"),
    CheckSpec("bandwidth.up", "bandwidth", N_("Upload speed"), "Mbit/s", "lower_is_worse"),
    CheckSpec("bandwidth.bufferbloat", "bandwidth", N_("Latency under load"), "ms",
              "higher_is_worse"),
    CheckSpec("audio.headset", "audio", N_("Headset"), None, "state",
              {"builtin": ParamSpec(str, _STATUS_CHOICE, "status for a built-in microphone"),
               "webcam": ParamSpec(str, _STATUS_CHOICE, "status for a webcam microphone"),
               "bluetooth_handsfree": ParamSpec(
                   str, _STATUS_CHOICE, "status for a Bluetooth headset in hands-free profile"),
               "unapproved": ParamSpec(str, _STATUS_CHOICE,
                                       "status for a headset not on the approved list"),
               "approved": ParamSpec(list, doc="approved models: name patterns or "
                                     "'vvvv:pppp' USB vendor:product ids; empty = any headset")}),
    CheckSpec("audio.noise", "audio", N_("Background noise"), "dBFS(A)", "higher_is_worse"),
    CheckSpec("audio.speech_level", "audio", N_("Speech level"), "dBFS", "lower_is_worse"),
    CheckSpec("audio.snr", "audio", N_("Speech-to-noise ratio"), "dB", "lower_is_worse"),
    CheckSpec("audio.clipping", "audio", N_("Clipping"), "%", "higher_is_worse"),
    CheckSpec("audio.dropouts", "audio", N_("Dropouts"), "count", "higher_is_worse"),
    CheckSpec("audio.hum", "audio", N_("Mains hum (50/60 Hz)"), "dBFS", "higher_is_worse"),
)

BY_ID: dict[str, CheckSpec] = {spec.id: spec for spec in CATALOGUE}


def checks_of_group(group: str) -> tuple[CheckSpec, ...]:
    """The specs of one group, in catalogue order."""
    return tuple(s for s in CATALOGUE if s.group == group)
