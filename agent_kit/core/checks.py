"""The catalogue of checks: every check id, its group, unit and how its thresholds read.

Each check is declared here once, as a module constant (``NETWORK_JITTER``); product code names
a check only through these (``tests/test_layers.py`` fails on a check id string anywhere else).
The policy loader validates against this list, the runner's units own what it says they own,
the dashboard's ``checks.js`` and the checks table of docs/policy.md are generated from it.
Thresholds live in the policy, not here.
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
    bounds: tuple[float, float] | None = None   # a number's allowed range, both ends included


@dataclass(frozen=True)
class CheckSpec:
    """One check, declared once: everything else (the runner's ownership lists, the policy
    loader's keys, the monitor, the diagnosis, the dashboard's ``checks.js``, docs/policy.md)
    reads it from here. Its evaluator is ``agent_kit.evaluate.<group>`` (``network.hops``:
    ``evaluate.hops``), which holds its messages and fix texts."""

    id: str
    group: str
    title: str      # English msgid, marked with N_; shown through _() (face.terminal.check_title)
    unit: str | None
    direction: Direction
    owner: str      # the probe unit (agent_kit.run.units) that measures it
    params: dict[str, ParamSpec] = field(default_factory=dict)
    summary: str = ""           # what it measures, for docs/policy.md (Markdown)
    chart: str | None = None    # the dashboard chart (CHARTS) its history is drawn in
    series: str | None = None   # its line's label in that chart

    @property
    def has_thresholds(self) -> bool:
        return self.direction != "state"


@dataclass(frozen=True)
class ChartSpec:
    """One chart of the dashboard's agent page; its lines are the checks naming it."""

    figure: str        # the <figure> id in agent.html
    title: str
    unit: str
    zero_based: bool   # a y axis from 0 (loss, delay) or fitted (MOS, levels)
    # The quantity's physical range: the y axis never reaches past it (no loss below 0 %, no
    # MOS above 4.5) unless a reading does. None: no limit on that side.
    floor: float | None = None
    ceiling: float | None = None


CHARTS: tuple[ChartSpec, ...] = (
    ChartSpec("chart-rtt", N_("Round-trip time"), "ms", True, floor=0),
    ChartSpec("chart-jitter", N_("Jitter"), "ms", True, floor=0),
    ChartSpec("chart-loss", N_("Packet loss"), "%", True, floor=0, ceiling=100),
    # G.107's MOS is 1 to 4.5 (STANDARDS.md: MOS clamped to [1, 4.5]); a test call's ViSQOL
    # MOS-LQO may read a little higher and then widens the axis
    ChartSpec("chart-mos", N_("Call quality (MOS)"), "MOS", False, floor=1, ceiling=4.5),
    ChartSpec("chart-noise", N_("Background noise"), "dBFS(A)", False, ceiling=0),  # full scale
    ChartSpec("chart-bandwidth", N_("Bandwidth"), "Mbit/s", True, floor=0),
)

_STATUS_CHOICE = ("pass", "warn", "fail")
_HIGHER: Direction = "higher_is_worse"
_LOWER: Direction = "lower_is_worse"
_STATE: Direction = "state"

SYSTEM_CPU = CheckSpec(
    "system.cpu", "system", N_("CPU load"), "%", _HIGHER, "system",
    {"min_cores": ParamSpec(int, doc="fewer logical cores than this fails")},
    summary="CPU load over half a second; fewer logical cores than `min_cores` fails")
SYSTEM_MEMORY = CheckSpec(
    "system.memory", "system", N_("Memory available"), "MB", _LOWER, "system",
    summary="memory available")
SYSTEM_DISK = CheckSpec(
    "system.disk", "system", N_("Disk free"), "GB", _LOWER, "system",
    summary="free space in the user's home folder")
SYSTEM_POWER = CheckSpec(
    "system.power", "system", N_("Battery charge (on battery)"), "%", _LOWER, "system",
    summary="battery charge, judged only while on battery; mains or no battery passes")
SYSTEM_UPTIME = CheckSpec(
    "system.uptime", "system", N_("Time since restart"), "days", _HIGHER, "system",
    summary="time since the last restart")
NETWORK_LINK = CheckSpec(
    "network.link", "network", N_("Connection type"), None, _STATE, "link",
    {"wifi": ParamSpec(str, _STATUS_CHOICE, "status when the default route uses Wi-Fi"),
     "cellular": ParamSpec(str, _STATUS_CHOICE,
                           "status when the default route uses a mobile modem")},
    summary="cable, Wi-Fi or mobile data on the default route (under a VPN: the physical "
            "link); `wifi`/`cellular` give the status (`\"pass\"`, `\"warn\"`, `\"fail\"`) for "
            "that link")
VPN_CONNECTED = CheckSpec(
    "vpn.connected", "vpn", N_("VPN tunnel"), None, _STATE, "vpn",
    {"mode": ParamSpec(str, ("required", "optional", "off"),
                       "required: no tunnel fails; optional: no tunnel passes; "
                       "off: the VPN checks are not judged")},
    summary="a VPN tunnel is up; `mode`: `\"required\"` (no tunnel fails), `\"optional\"` (no "
            "tunnel passes), `\"off\"` (VPN checks not judged)")
VPN_ROUTE = CheckSpec(
    "vpn.route", "vpn", N_("Center reached through the VPN"), None, _STATE, "vpn",
    {"split_tunnel": ParamSpec(str, ("allowed", "forbidden"),
                               "forbidden: the default route must use the tunnel too")},
    summary="the center's address is routed through the tunnel; `split_tunnel = "
            "\"forbidden\"` also requires the default route to use the tunnel")
NETWORK_RTT = CheckSpec(
    "network.rtt", "network", N_("Round-trip time to the center"), "ms", _HIGHER, "path",
    summary="round-trip time to the center's reflector (median)",
    chart="chart-rtt", series=N_("RTT"))
NETWORK_JITTER = CheckSpec(
    "network.jitter", "network", N_("Jitter (RFC 3550)"), "ms", _HIGHER, "path",
    summary="RFC 3550 interarrival jitter J at the end of the path test, the worse direction "
            "(the steady mean transit difference per direction is in the details)",
    chart="chart-jitter", series=N_("Jitter"))
NETWORK_LOSS = CheckSpec(
    "network.loss", "network", N_("Packet loss"), "%", _HIGHER, "path",
    summary="packet loss of the worse direction (towards the center or back, from the "
            "reflector's per-session count); round trip against a reflector that does not "
            "count", chart="chart-loss", series=N_("Loss"))
NETWORK_MOS = CheckSpec(
    "network.mos", "network", N_("Estimated call quality (MOS)"), "MOS", _LOWER, "path",
    {"codec": ParamSpec(str, ("G.711", "G.711-noplc", "G.729", "Opus"),
                        "codec assumed by the E-model")},
    summary="ITU-T G.107 E-model estimate for the worse direction, each fed its listener's "
            "one-way loss; `codec`: `\"G.711\"` (with PLC), `\"G.711-noplc\"`, `\"G.729\"`, "
            "`\"Opus\"` (estimated as narrowband)",
    chart="chart-mos", series=N_("MOS"))
NETWORK_TEST_CALL = CheckSpec(
    "network.test_call", "network", N_("Test call quality (ViSQOL MOS-LQO)"), "MOS", _LOWER,
    "call",
    {"codec": ParamSpec(str, ("G.711", "Opus"), "codec of the test call (the center must "
                        "offer it)"),
     "jitter_buffer_ms": ParamSpec(int, doc="the fixed jitter buffer the receivers are "
                                   "given (20..400 ms)", bounds=(20, 400))},
    summary="a synthetic reference clip sent as RTP through the center's reflector, both "
            "ways, played through a fixed jitter buffer and packet-loss concealment as a "
            "softphone would and scored against the clip by the center with ViSQOL v3 (speech "
            "mode, 16 kHz) as MOS-LQO; the worse direction, the E-model estimate of the same "
            "seconds beside it; `codec`: `\"G.711\"` (mu-law, G.711 Appendix I concealment) "
            "or `\"Opus\"` (its own concealment); only when the center offers it",
    chart="chart-mos", series=N_("Test call"))
NETWORK_HOPS = CheckSpec(
    "network.hops", "network", N_("Where on the path problems start"), None, _STATE, "path",
    {"loss_pct": ParamSpec((int, float), doc="loss (percentage points) a segment must "
                           "add, lasting to the center, to be named"),
     "delay_ms": ParamSpec((int, float), doc="median round-trip time a segment must "
                           "add, lasting to the center, to be named")},
    summary="informational traceroute to the reflector: warns naming the segment (home "
            "network, ISP, beyond) where loss rises by `loss_pct` points or the median RTT by "
            "`delay_ms` and stays so to the center; `unknown` without raw-socket privileges "
            "(see below)")
BANDWIDTH_DOWN = CheckSpec(
    "bandwidth.down", "bandwidth", N_("Download speed"), "Mbit/s", _LOWER, "bandwidth",
    summary="download capacity to the center's bandwidth endpoint",
    chart="chart-bandwidth", series=N_("Down"))
BANDWIDTH_UP = CheckSpec(
    "bandwidth.up", "bandwidth", N_("Upload speed"), "Mbit/s", _LOWER, "bandwidth",
    summary="upload capacity", chart="chart-bandwidth", series=N_("Up"))
BANDWIDTH_BUFFERBLOAT = CheckSpec(
    "bandwidth.bufferbloat", "bandwidth", N_("Latency under load"), "ms", _HIGHER, "bandwidth",
    summary="latency added under load (loaded RTT minus idle RTT), with its grade A+..F")
AUDIO_HEADSET = CheckSpec(
    "audio.headset", "audio", N_("Headset"), None, _STATE, "headset",
    {"builtin": ParamSpec(str, _STATUS_CHOICE, "status for a built-in microphone"),
     "webcam": ParamSpec(str, _STATUS_CHOICE, "status for a webcam microphone"),
     "bluetooth_handsfree": ParamSpec(
         str, _STATUS_CHOICE, "status for a Bluetooth headset in hands-free profile"),
     "unapproved": ParamSpec(str, _STATUS_CHOICE,
                             "status for a headset not on the approved list"),
     "approved": ParamSpec(list, doc="approved models: name patterns or "
                           "'vvvv:pppp' USB vendor:product ids; empty = any headset")},
    summary="the call microphone is a headset; the first four give the status for that kind "
            "of device; `approved` lists approved models (name patterns or `vvvv:pppp` USB "
            "ids; empty: any headset)")
AUDIO_NOISE = CheckSpec(
    "audio.noise", "audio", N_("Background noise"), "dBFS(A)", _HIGHER, "room",
    summary="A-weighted background-noise floor between words",
    chart="chart-noise", series=N_("Noise"))
AUDIO_SPEECH_LEVEL = CheckSpec(
    "audio.speech_level", "audio", N_("Speech level"), "dBFS", _LOWER, "room",
    {"loud_warn": ParamSpec((int, float), doc="active level (dBFS) from which the voice is "
                            "too loud: warns"),
     "loud_fail": ParamSpec((int, float), doc="active level (dBFS) from which the voice is "
                            "too loud: fails"),
     "near_clip_ms": ParamSpec((int, float), doc="time (ms) the voice's peaks spend within "
                               "1 dB of full scale that warns as too loud"),
     "target": ParamSpec((int, float), doc="the active level (dBFS) the suggested input "
                         "volume aims at")},
    summary="ITU-T P.56 active speech level: too quiet at `warn`/`fail` and below, too loud at "
            "`loud_warn`/`loud_fail` and above or when its peaks spend `near_clip_ms` within "
            "1 dB of full scale; the fix names the microphone and the input volume that brings "
            "the voice to `target`")
AUDIO_SNR = CheckSpec(
    "audio.snr", "audio", N_("Speech-to-noise ratio"), "dB", _LOWER, "room",
    summary="speech level minus noise floor")
AUDIO_CLIPPING = CheckSpec(
    "audio.clipping", "audio", N_("Clipping"), "%", _HIGHER, "room",
    summary="share of samples in clipped runs (6+ full-scale samples)")
AUDIO_DROPOUTS = CheckSpec(
    "audio.dropouts", "audio", N_("Dropouts"), "count", _HIGHER, "room",
    summary="gaps or digital silence in the middle of the capture")
AUDIO_HUM = CheckSpec(
    "audio.hum", "audio", N_("Mains hum (50/60 Hz)"), "dBFS", _HIGHER, "room",
    summary="50/60 Hz mains hum and harmonics, unweighted")
AUDIO_VOICE_BANDWIDTH = CheckSpec(
    "audio.voice_bandwidth", "audio", N_("Voice bandwidth"), "kHz", _STATE, "room",
    {band: ParamSpec(str, _STATUS_CHOICE, f"status when the voice reaches the far end as "
                     f"{words} sound")
     for band, words in (("narrowband", "narrowband (telephone, up to 3.4 kHz)"),
                         ("wideband", "wideband (up to 7 kHz)"),
                         ("superwideband", "super-wideband (up to 14 kHz)"),
                         ("fullband", "fullband (up to 20 kHz)"))},
    summary="how far up the spectrum the read-aloud voice reaches (the highest 250 Hz band where "
            "it stands clearly above the noise and the path's roll-off), in kHz, and its ITU-T "
            "class; `narrowband`, `wideband`, `superwideband`, `fullband` give the status for "
            "each class; `unknown` without enough speech")
_LEVEL = (int, float)
AUDIO_ROOM_SOUNDS = CheckSpec(
    "audio.room_sounds", "audio", N_("Sounds in the room"), None, _STATE, "room",
    {"voices_dbfs": ParamSpec(_LEVEL, doc="other voices at or above this level (dBFS, over "
                              "the background) are judged; fainter ones are ignored"),
     "impulses_dbfs": ParamSpec(_LEVEL, doc="bangs whose loudest 10 ms reach this level "
                                "(dBFS) are judged"),
     "steady_dbfs_a": ParamSpec(_LEVEL, doc="a steady background at or above this level "
                                "(dBFS(A)) is judged"),
     "own_voice_dbfs": ParamSpec(_LEVEL, doc="unprompted captures (the monitor): voices at or "
                                 "above this level are the agent's own, not the room's"),
     "voices": ParamSpec(str, _STATUS_CHOICE, "status when other voices are heard"),
     "impulses": ParamSpec(str, _STATUS_CHOICE, "status when bangs are heard"),
     "steady": ParamSpec(str, _STATUS_CHOICE, "status when steady noise is heard")},
    summary="what reaches the microphone while the agent is silent: `quiet`, `steady` noise "
            "(a fan, traffic), other `voices` (a TV, family) or `impulses` (a door, dishes); "
            "each kind at or above its level (`voices_dbfs`, `steady_dbfs_a`, "
            "`impulses_dbfs`) gets its status (`voices`, `steady`, `impulses`); voices win "
            "over bangs over steady noise. In the monitor's unprompted captures, voices at "
            "`own_voice_dbfs` or louder are the agent talking (`talking`: not judged)")

CATALOGUE: tuple[CheckSpec, ...] = (
    SYSTEM_CPU, SYSTEM_MEMORY, SYSTEM_DISK, SYSTEM_POWER, SYSTEM_UPTIME,
    NETWORK_LINK, VPN_CONNECTED, VPN_ROUTE,
    NETWORK_RTT, NETWORK_JITTER, NETWORK_LOSS, NETWORK_MOS, NETWORK_HOPS, NETWORK_TEST_CALL,
    BANDWIDTH_DOWN, BANDWIDTH_UP, BANDWIDTH_BUFFERBLOAT,
    AUDIO_HEADSET, AUDIO_NOISE, AUDIO_SPEECH_LEVEL, AUDIO_SNR, AUDIO_CLIPPING, AUDIO_DROPOUTS,
    AUDIO_HUM, AUDIO_ROOM_SOUNDS, AUDIO_VOICE_BANDWIDTH,
)

BY_ID: dict[str, CheckSpec] = {spec.id: spec for spec in CATALOGUE}


def checks_of_group(group: str) -> tuple[CheckSpec, ...]:
    """The specs of one group, in catalogue order."""
    return tuple(s for s in CATALOGUE if s.group == group)


def ids_owned_by(unit: str) -> tuple[str, ...]:
    """The check ids one probe unit produces, in catalogue order."""
    return tuple(s.id for s in CATALOGUE if s.owner == unit)


_DIRECTION_WORDS = {"higher_is_worse": "higher", "lower_is_worse": "lower", "state": "state"}


def policy_doc_table() -> str:
    """The checks table of docs/policy.md (Markdown), made from the catalogue."""
    rows = ["| check id | unit | worse when | own keys | what it measures |",
            "|---|---|---|---|---|"]
    for s in CATALOGUE:
        keys = ", ".join(f"`{k}`" for k in s.params)
        rows.append(f"| `{s.id}` | {s.unit or ''} | {_DIRECTION_WORDS[s.direction]} | {keys} "
                    f"| {s.summary} |")
    return "\n".join(rows) + "\n"
