"""Which audio devices this computer has, what kind each is, and which ones calls will use.

Two sources, picked once (psutil style):
- Linux with PulseAudio or PipeWire (``pactl -f json``): every source and sink with its
  properties (``device.bus``, ``device.form_factor``, USB vendor/product ids, Bluetooth
  profile, active port) and the server's default source and sink, which softphones use. PortAudio
  cannot tell these apart there: it sees only the ALSA devices ``pulse`` and ``default``.
- Everywhere else (Windows, macOS, Linux without a sound server): sounddevice/PortAudio device
  names and its default input/output, classified by name.

Each device gets a kind with the evidence for it. Measuring only: whether a kind is acceptable is
the policy's business (``agent_kit.evaluate.audio``).

A microphone also carries its input volume where the sound server holds one
(``InputVolume``, read from the same ``pactl`` list): the slider the person moves in the sound
settings, and its gain on the server's volume curve (``volume_pct_to_db``), so a fix can say
"set to 20 %: raise it to about 70 %".
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

Kind = Literal["usb_headset", "analog_headset", "bluetooth_headset", "builtin", "webcam",
               "virtual", "unknown"]
Direction = Literal["input", "output"]
KINDS: tuple[Kind, ...] = ("usb_headset", "analog_headset", "bluetooth_headset", "builtin",
                           "webcam", "virtual", "unknown")

PACTL_TIMEOUT_S = 5.0
PA_VOLUME_NORM = 0x10000   # PulseAudio's 100 % (0 dB); pipewire-pulse uses the same scale

_HEADSET_FORM = {"headset", "headphone", "handset", "hands-free"}
_BT_HANDSFREE = re.compile(r"head_unit|headset[-_]head|hands[-_ ]?free|\bhfp\b|\bhsp\b|"
                           r"ag audio", re.I)
_WEBCAM = re.compile(r"webcam|web cam|camera|\bcam\b|\bc9[0-9]{2}\b|\bbrio\b|facecam|kiyo|"
                     r"streamcam|lifecam|\bc270\b|\bc310\b", re.I)
_BUILTIN = re.compile(r"built-?in|internal|microphone array|digital microphone|\bdmic\b|"
                      r"macbook|imac|realtek|hda intel|\balc\d{3}\b|conexant|smart sound|"
                      r"sof-hda|cirrus", re.I)
_VIRTUAL = re.compile(r"virtual|vb-audio|\bcable (in|out)put|voicemeeter|blackhole|soundflower|"
                      r"loopback|krisp|broadcast|null|dummy|monitor of|zoomaudio|teams audio|"
                      r"echo[- ]cancel|remap", re.I)
_BLUETOOTH = re.compile(r"bluetooth|airpods|hands-?free|ag audio|\bbt\b|bluez", re.I)
_HEADSET_NAME = re.compile(r"headset|jabra|plantronics|\bpoly\b|blackwire|voyager|savi|evolve|"
                           r"engage|\bepos\b|sennheiser|yealink|logitech h\d|\bh[35]\d0\b|"
                           r"zone wired|evolve2", re.I)
# ALSA plugin names PortAudio lists on Linux: routes, not devices.
_ALSA_ROUTES = {"pulse", "default", "pipewire", "sysdefault", "dmix", "dsnoop", "jack", "spdif",
                "samplerate", "speexrate", "upmix", "vdownmix", "lavrate", "a52", "hdmi"}


@dataclass(frozen=True)
class InputVolume:
    """A microphone's input volume as the sound settings' slider shows it.

    ``percent``: the slider (100 = the server's nominal 0 dB; PulseAudio allows up to 153 %
    as software boost); the loudest channel when channels differ (pavucontrol's locked
    slider). ``db``: its gain on the server's curve (``volume_pct_to_db``) when the server
    maps the volume to decibels (flag ``DECIBEL_VOLUME``; a software volume always is); None
    when the slider drives a hardware mixer with no dB information, so no change in percent
    can be computed from a change in dB.
    """

    percent: float
    db: float | None
    muted: bool
    source: str = "pulseaudio"   # whose slider: PulseAudio's (PipeWire serves the same API)


def volume_pct_to_db(percent: float) -> float:
    """The gain of a PulseAudio/PipeWire volume in dB: the cubic mapping.

    PulseAudio maps its volume v to a linear factor (v / PA_VOLUME_NORM)^3
    (``pa_sw_volume_to_linear``, src/pulse/volume.c, cubic since 0.9.16) and so to
    ``pa_sw_volume_to_dB`` = 20 log10((v / NORM)^3) = 60 log10(percent / 100); pipewire-pulse
    converts its linear channel volumes with the same cube root. 100 % is 0 dB, 50 % is
    -18.06 dB, 30 % is -31.37 dB; 0 % is silence (-inf, reported as -200 dB).
    """
    if percent <= 0.0:
        return -200.0
    return 60.0 * math.log10(percent / 100.0)


def volume_db_to_pct(db: float) -> float:
    """The slider position (percent) that gives ``db`` on the cubic curve (inverse of
    ``volume_pct_to_db``)."""
    return 100.0 * 10.0 ** (db / 60.0)


@dataclass(frozen=True)
class AudioDevice:
    """One microphone or speaker, as the system describes it, with its kind and why."""

    direction: Direction
    name: str                    # system id: PulseAudio name, or PortAudio device name
    description: str             # what the person sees in the sound settings
    kind: Kind
    evidence: tuple[str, ...]    # the facts the kind rests on, "key=value"
    is_default: bool             # the system default, i.e. what calls use
    bus: str | None = None
    form_factor: str | None = None
    vendor_id: str | None = None   # 4 hex digits (USB)
    product_id: str | None = None
    handsfree: bool | None = None  # Bluetooth only: in the narrowband hands-free profile
    backend: str = ""              # "pulseaudio" or "portaudio"
    input_volume: InputVolume | None = None   # inputs whose volume the server reports

    @property
    def usb_id(self) -> str | None:
        if self.vendor_id and self.product_id:
            return f"{self.vendor_id.lower()}:{self.product_id.lower()}"
        return None

    @property
    def is_headset(self) -> bool:
        return self.kind in ("usb_headset", "analog_headset", "bluetooth_headset")


@dataclass(frozen=True)
class DeviceInventory:
    backend: str                 # "pulseaudio", "portaudio" or "" when nothing answered
    devices: tuple[AudioDevice, ...] = ()
    problem: str | None = None   # why the list is empty or partial

    def default(self, direction: Direction) -> AudioDevice | None:
        return next((d for d in self.devices if d.direction == direction and d.is_default), None)

    def of(self, direction: Direction) -> tuple[AudioDevice, ...]:
        return tuple(d for d in self.devices if d.direction == direction)


# ------------------------------------------------------------------ classification

def classify(direction: Direction, name: str, description: str,
             props: Mapping[str, str] | None = None,
             active_port: str | None = None) -> tuple[Kind, tuple[str, ...], bool | None]:
    """(kind, evidence, handsfree) from PulseAudio-style properties and/or the device's name.

    Properties win over names: ``device.bus`` and ``device.form_factor`` are what the kernel
    and the sound server know; names are the fallback (Windows, macOS, ALSA-only Linux).
    """
    props = props or {}
    bus = (props.get("device.bus") or "").lower()
    form = (props.get("device.form_factor") or "").lower()
    text = f"{name} {description}"
    port = (active_port or "").lower()
    ev: list[str] = []
    if bus:
        ev.append(f"device.bus={bus}")
    if form:
        ev.append(f"device.form_factor={form}")

    profile = (props.get("bluetooth.protocol") or props.get("api.bluez5.profile")
               or props.get("device.profile.name") or "")
    if bus == "bluetooth" or name.startswith("bluez_") or (not bus and _BLUETOOTH.search(text)):
        if profile:
            ev.append(f"profile={profile}")
        elif not bus:
            ev.append("name=bluetooth")
        codec = props.get("api.bluez5.codec") or props.get("bluetooth.codec")
        if codec:  # CVSD: 8 kHz narrowband; mSBC/LC3: 16 kHz wideband hands-free
            ev.append(f"codec={codec}")
        # A Bluetooth microphone exists only in the hands-free/headset profiles: A2DP is
        # playback only. An output is hands-free when its profile (or name) says so.
        handsfree = (direction == "input" or bool(_BT_HANDSFREE.search(profile))
                     or bool(_BT_HANDSFREE.search(text)))
        return "bluetooth_headset", tuple(ev), handsfree
    if form == "webcam" or (form in ("", "microphone") and _WEBCAM.search(text)):
        if form != "webcam":
            ev.append("name=webcam")
        return "webcam", tuple(ev), None
    if form in _HEADSET_FORM:
        if bus == "usb":
            return "usb_headset", tuple(ev), None
        if bus in ("pci", "platform", "isa") or "analog" in port:
            return "analog_headset", tuple(ev), None
    if form == "internal":
        return "builtin", tuple(ev), None
    if bus in ("pci", "platform", "isa", "sdio"):
        # An on-board codec: the jack's active port tells a plugged headset from the laptop's
        # own microphone and speakers.
        if re.search(r"headset|headphone", port):
            ev.append(f"port={active_port}")
            return "analog_headset", tuple(ev), None
        if port:
            ev.append(f"port={active_port}")
        return "builtin", tuple(ev), None
    if bus == "usb":
        if _HEADSET_NAME.search(text):
            ev.append("name=headset model")
            return "usb_headset", tuple(ev), None
        return "unknown", tuple(ev), None
    if props and not bus:
        cls = (props.get("device.class") or "").lower()
        if cls in ("abstract", "filter", "monitor") or _VIRTUAL.search(text) or not cls:
            ev.append(f"device.class={cls or 'none'}")
            return "virtual", tuple(ev), None
    # Names only (PortAudio)
    if name.split(":")[0].strip().lower() in _ALSA_ROUTES or _VIRTUAL.search(text):
        ev.append("name=virtual/route")
        return "virtual", tuple(ev), None
    if _HEADSET_NAME.search(text):
        ev.append("name=headset model")
        return "usb_headset", tuple(ev), None
    if _BUILTIN.search(text):
        ev.append("name=built-in")
        return "builtin", tuple(ev), None
    return "unknown", tuple(ev), None


# ------------------------------------------------------------------ PulseAudio / PipeWire

def _pactl(*args: str) -> str:
    # LC_ALL=C: the text output is translated otherwise
    proc = subprocess.run(["pactl", *args], capture_output=True, text=True,
                          timeout=PACTL_TIMEOUT_S, env={**os.environ, "LC_ALL": "C"})
    if proc.returncode != 0:
        first = (proc.stderr.strip().splitlines() or [""])[0]
        raise RuntimeError(first or f"pactl {' '.join(args)} failed")
    return proc.stdout


# "front-left: 19661 /  30% / -31.37 dB,   front-right: ..." (pactl list, LC_ALL=C)
_TEXT_VOLUME = re.compile(r"([\w-]+): (\d+) /\s*\d+% /\s*(-?(?:[\d.]+|inf)) dB")


def parse_pactl_list(text: str) -> list[dict[str, Any]]:
    """``pactl list sources|sinks`` text (LC_ALL=C) as the entries ``pactl -f json`` gives.

    For pactl older than 16 (Ubuntu 22.04's pipewire-pulse ships 15.99), which has no JSON.
    """
    entries: list[dict[str, Any]] = []
    current: dict[str, Any] | None = None
    in_props = False
    for line in text.splitlines():
        if re.match(r"^(Source|Sink) #\d+", line):
            current = {"properties": {}}
            entries.append(current)
            in_props = False
            continue
        if current is None or not line.strip():
            continue
        depth = len(line) - len(line.lstrip("\t"))
        stripped = line.strip()
        if depth == 1:
            in_props = stripped == "Properties:"
            key, sep, value = stripped.partition(": ")
            if sep:
                field_name = {"Name": "name", "Description": "description",
                              "Active Port": "active_port",
                              "Monitor of Sink": "monitor_of_sink"}.get(key)
                if field_name:
                    current[field_name] = value.strip()
                elif key == "Volume":
                    current["volume"] = {
                        channel: {"value": int(raw), "db": f"{db} dB"}
                        for channel, raw, db in _TEXT_VOLUME.findall(value)}
                elif key == "Mute":
                    current["mute"] = value.strip() == "yes"
                elif key == "Flags":
                    current["flags"] = value.split()
        elif depth == 2 and in_props:
            key, sep, value = stripped.partition(" = ")
            if sep:
                current["properties"][key] = value.strip().strip('"')
    return entries


def _pactl_info_defaults() -> dict[str, str]:
    try:
        info = json.loads(_pactl("-f", "json", "info"))
        return {"source": info.get("default_source_name") or "",
                "sink": info.get("default_sink_name") or ""}
    except (RuntimeError, ValueError):
        text = _pactl("info")
        found = dict(re.findall(r"^Default (Source|Sink): (.*)$", text, re.M))
        return {"source": found.get("Source", ""), "sink": found.get("Sink", "")}


def _pactl_entries(kind: str) -> list[dict[str, Any]]:
    try:
        data = json.loads(_pactl("-f", "json", "list", kind))
        if isinstance(data, list):
            return data
    except (RuntimeError, ValueError):
        pass
    return parse_pactl_list(_pactl("list", kind))


def pulse_input_volume(entry: Mapping[str, Any]) -> InputVolume | None:
    """The input volume of one ``pactl -f json list sources`` entry (or the text parser's).

    The raw channel values are exact (``value`` / PA_VOLUME_NORM); the loudest channel is the
    slider. None when the entry carries no volume.
    """
    channels = entry.get("volume")
    if not isinstance(channels, Mapping) or not channels:
        return None
    try:
        raw = max(int(ch["value"]) for ch in channels.values())
    except (KeyError, TypeError, ValueError):
        return None
    percent = 100.0 * raw / PA_VOLUME_NORM
    flags = entry.get("flags")
    # A source without DECIBEL_VOLUME drives a hardware mixer whose steps have no known dB.
    mapped = not isinstance(flags, list) or "DECIBEL_VOLUME" in flags
    return InputVolume(percent=round(percent, 2),
                       db=round(volume_pct_to_db(percent), 2) if mapped else None,
                       muted=bool(entry.get("mute", False)))


def _from_pulse_entry(entry: Mapping[str, Any], direction: Direction,
                      default_name: str | None) -> AudioDevice | None:
    props = {str(k): str(v) for k, v in (entry.get("properties") or {}).items()}
    if props.get("device.class") == "monitor" or entry.get("monitor_of_sink") not in (None, "",
                                                                                     "n/a"):
        return None  # a sink's monitor: not a microphone
    name = str(entry.get("name", ""))
    description = str(entry.get("description") or props.get("device.description") or name)
    kind, evidence, handsfree = classify(direction, name, description, props,
                                         entry.get("active_port"))
    return AudioDevice(
        direction=direction, name=name, description=description, kind=kind, evidence=evidence,
        is_default=name == default_name, bus=props.get("device.bus"),
        form_factor=props.get("device.form_factor"),
        vendor_id=props.get("device.vendor.id"), product_id=props.get("device.product.id"),
        handsfree=handsfree, backend="pulseaudio",
        input_volume=pulse_input_volume(entry) if direction == "input" else None)


def pulse_inventory() -> DeviceInventory:
    """Sources and sinks from the PulseAudio/PipeWire server (``pactl -f json``, else text)."""
    defaults = _pactl_info_defaults()
    devices: list[AudioDevice] = []
    for kind, direction, default in (("sources", "input", defaults["source"]),
                                     ("sinks", "output", defaults["sink"])):
        for entry in _pactl_entries(kind):
            dev = _from_pulse_entry(entry, direction, default)  # type: ignore[arg-type]
            if dev is not None:
                devices.append(dev)
    return DeviceInventory("pulseaudio", tuple(devices))


def pulse_default_input() -> AudioDevice | None:
    """The server's default source (what calls record), with its volume: two ``pactl``
    calls (no sinks), for the room unit's fix after each capture."""
    default = _pactl_info_defaults()["source"]
    for entry in _pactl_entries("sources"):
        if entry.get("name") == default:
            return _from_pulse_entry(entry, "input", default)
    return None


# ------------------------------------------------------------------ PortAudio (everywhere)

def os_mixer_input_volume(device_name: str) -> InputVolume | None:
    """The OS mixer's input volume of a PortAudio device: not read; None.

    A placeholder with the type the fix needs, so nothing is guessed: Windows keeps the
    microphone's level in Core Audio (``IAudioEndpointVolume::GetMasterVolumeLevelScalar``,
    or its dB form), macOS in CoreAudio (``kAudioDevicePropertyVolumeScalar`` of the input
    scope), ALSA-only Linux in the ALSA mixer's capture control; PortAudio exposes none of
    them and agent-kit does not call those APIs yet. Without a volume the fix names the
    device and says where the slider is, without a percentage.
    """
    del device_name
    return None


def _preferred_hostapi(hostapis: list[dict[str, Any]], default_in: int) -> int | None:
    """One host API, so each device is listed once: WASAPI on Windows (full names, the
    system's own defaults; MME cuts names at 31 characters and DirectSound/WDM-KS repeat every
    device), else the host API of the default input."""
    for index, api in enumerate(hostapis):
        if "WASAPI" in str(api.get("name", "")):
            return index
    for index, api in enumerate(hostapis):
        if default_in in api.get("devices", ()):
            return index
    return None


def portaudio_inventory() -> DeviceInventory:
    """Devices as sounddevice/PortAudio names them, classified by name."""
    import sounddevice as sd  # type: ignore[import-untyped]

    default_in, default_out = sd.default.device
    hostapis = list(sd.query_hostapis())
    api = _preferred_hostapi(hostapis, default_in)
    if api is not None:
        default_in = hostapis[api].get("default_input_device", default_in)
        default_out = hostapis[api].get("default_output_device", default_out)
    devices: list[AudioDevice] = []
    for index, dev in enumerate(sd.query_devices()):
        if api is not None and dev.get("hostapi") != api:
            continue
        name = str(dev["name"])
        for direction, channels, default in (("input", "max_input_channels", default_in),
                                             ("output", "max_output_channels", default_out)):
            if dev[channels] <= 0:
                continue
            kind, evidence, handsfree = classify(direction, name, name)  # type: ignore[arg-type]
            devices.append(AudioDevice(direction=direction, name=name,  # type: ignore[arg-type]
                                       description=name, kind=kind, evidence=evidence,
                                       is_default=index == default, handsfree=handsfree,
                                       backend="portaudio",
                                       input_volume=os_mixer_input_volume(name)
                                       if direction == "input" else None))
    return DeviceInventory("portaudio", tuple(devices))


# The sound server's own list first where there is one (PulseAudio or PipeWire on Linux),
# picked once; PortAudio everywhere else and as the fallback.
if sys.platform.startswith("linux"):
    def _sound_server_present() -> bool:
        """pactl is installed, so a PulseAudio or PipeWire server can be asked."""
        return shutil.which("pactl") is not None

else:
    def _sound_server_present() -> bool:
        """No sound server with its own device list: PortAudio lists the devices."""
        return False


def list_audio_devices() -> DeviceInventory:
    """Every input and output device, classified, with the call defaults marked. Never raises."""
    problems: list[str] = []
    if _sound_server_present():
        try:
            return pulse_inventory()
        except (OSError, RuntimeError, ValueError, subprocess.TimeoutExpired) as exc:
            problems.append(f"PulseAudio/PipeWire: {exc}")
    try:
        inv = portaudio_inventory()
    except Exception as exc:  # noqa: BLE001 - PortAudio missing or broken: say so
        problems.append(f"PortAudio: {exc}")
        return DeviceInventory("", (), "; ".join(problems))
    return DeviceInventory(inv.backend, inv.devices, "; ".join(problems) or None)


def default_input_device() -> AudioDevice | None:
    """The microphone calls use, with its input volume where the server reports one.
    Never raises: None when it cannot be told (the fix then stays general)."""
    if _sound_server_present():
        try:
            return pulse_default_input()
        except (OSError, RuntimeError, ValueError, subprocess.TimeoutExpired):
            pass
    try:
        device = portaudio_inventory().default("input")
    except Exception:  # noqa: BLE001 - PortAudio missing or broken: no device to name
        return None
    if device is None or device.name.split(":")[0].strip().lower() in _ALSA_ROUTES:
        return None   # ALSA's "default"/"pulse" route is no device a person could find
    return device
