"""Judge the headset and the room: device inventory and microphone reading -> results with fixes.

``audio.headset`` looks at the device calls will use (the system's default microphone) and the
policy's ``builtin``/``webcam``/``bluetooth_handsfree``/``unapproved`` statuses and ``approved``
list. The room checks judge ``probes.audio.capture.AudioReading`` numbers against their
levels; ``audio.voice_bandwidth`` is judged by the policy's status for its class (narrowband,
wideband...). Every
problem comes with one thing a non-technical person can do.
"""

from __future__ import annotations

import fnmatch
import re
from typing import Any

from agent_kit.core.checks import (
    AUDIO_CLIPPING,
    AUDIO_DROPOUTS,
    AUDIO_HEADSET,
    AUDIO_HUM,
    AUDIO_NOISE,
    AUDIO_ROOM_SOUNDS,
    AUDIO_SNR,
    AUDIO_SPEECH_LEVEL,
    AUDIO_VOICE_BANDWIDTH,
)
from agent_kit.core.i18n import M_, Msg, render
from agent_kit.core.levels import level_result, state_result, status_named, unknown_result
from agent_kit.core.policy import Policy
from agent_kit.core.results import STATUS_RANK, CheckResult, Status
from agent_kit.evaluate.room_sounds import evaluate_room_sounds
from agent_kit.evaluate.voice_level import evaluate_voice_level, fix_quiet_voice, muted_fix
from probes.audio.capture import AudioReading
from probes.audio.devices import AudioDevice, DeviceInventory

ROOM_CHECKS = (AUDIO_NOISE.id, AUDIO_SPEECH_LEVEL.id, AUDIO_SNR.id, AUDIO_CLIPPING.id,
               AUDIO_DROPOUTS.id, AUDIO_HUM.id, AUDIO_ROOM_SOUNDS.id)
_USB_ID = re.compile(r"^[0-9a-f]{4}:[0-9a-f]{4}$")


def kind_label(kind: str) -> str:
    """The kind in plain words in the current language (shared with ``agent-kit devices``)."""
    return render(kind_msg(kind))


def kind_msg(kind: str) -> Msg | str:
    """The kind in plain words, as a message id (an unknown kind as it is)."""
    return {
        "usb_headset": M_("USB headset"),
        "analog_headset": M_("headset on the audio jack"),
        "bluetooth_headset": M_("Bluetooth headset"),
        "builtin": M_("built-in microphone/speakers"),
        "webcam": M_("webcam microphone"),
        "virtual": M_("virtual device (software)"),
        "unknown": M_("unknown device"),
    }.get(kind, kind)


def is_approved(device: AudioDevice, approved: list[str]) -> bool:
    """True when the policy's list is empty or a pattern/USB id matches the device."""
    if not approved:
        return True
    for pattern in approved:
        p = pattern.strip().lower()
        if _USB_ID.match(p):
            if device.usb_id == p:
                return True
        elif fnmatch.fnmatch(device.description.lower(), p) or fnmatch.fnmatch(
                device.name.lower(), p):
            return True
    return False


def _worst(*statuses: Status) -> Status:
    return max(statuses, key=lambda s: STATUS_RANK[s])


def _device_status(dev: AudioDevice, params: dict[str, Any], approved: list[str]) -> Status:
    unapproved = status_named(params.get("unapproved", "warn"))
    if dev.kind in ("usb_headset", "analog_headset"):
        return Status.PASS if is_approved(dev, approved) else unapproved
    if dev.kind == "bluetooth_headset":
        ok = Status.PASS if is_approved(dev, approved) else unapproved
        if dev.handsfree:
            return _worst(ok, status_named(params.get("bluetooth_handsfree", "warn")))
        return ok
    if dev.kind == "builtin":
        return status_named(params.get("builtin", "fail"))
    if dev.kind == "webcam":
        return status_named(params.get("webcam", "fail"))
    return unapproved  # virtual or unknown: not a headset IT can vouch for


def evaluate_headset(inventory: DeviceInventory, policy: Policy) -> CheckResult:
    """audio.headset: is the default microphone the issued headset?"""
    params = policy.check(AUDIO_HEADSET.id).params
    approved = [str(a) for a in params.get("approved", [])]
    inputs = inventory.of("input")
    if not inventory.devices and inventory.problem:
        return unknown_result(AUDIO_HEADSET.id, policy,
                              M_("cannot list the audio devices: {reason}",
                                  reason=inventory.problem),
                              fix=M_("Restart the computer; if this stays, tell IT the sound "
                                    "system does not answer."))
    if not inputs:
        return state_result(AUDIO_HEADSET.id, Status.FAIL, None, policy,
                            message=M_("no microphone found"),
                            fix=M_("Plug in the headset IT gave you, straight into the computer "
                                  "(not a hub or dock), and wait ten seconds."))
    default_in = inventory.default("input")
    good = [d for d in inputs if _device_status(d, params, approved) is Status.PASS]
    details: dict[str, Any] = {
        "default_input": default_in.description if default_in else None,
        "kind": default_in.kind if default_in else None,
        "evidence": list(default_in.evidence) if default_in else [],
        "headsets": [d.description for d in inputs if d.is_headset],
        "backend": inventory.backend,
    }
    if default_in is None:
        fix = (M_("Select '{name}' as the default microphone in your sound settings.",
            name=good[0].description) if good else _plug_in())
        return state_result(AUDIO_HEADSET.id, Status.FAIL, None, policy,
                            message=M_("no default microphone is set"), fix=fix, details=details)
    status = _device_status(default_in, params, approved)
    value = default_in.kind
    if status is Status.PASS:
        return _check_output(inventory, default_in, policy, details)
    message = M_("calls would use {name} ({kind})",
        name=default_in.description, kind=kind_msg(default_in.kind))
    if default_in.kind == "bluetooth_headset" and default_in.handsfree:
        message = M_("calls would use {name}, a Bluetooth headset in hands-free mode "
                    "(narrowband, telephone-quality sound)", name=default_in.description)
    elif default_in.is_headset and not is_approved(default_in, approved):
        message = M_("{name} is not one of the headsets IT approved",
            name=default_in.description)
    others = [d for d in good if d is not default_in]
    if others:
        fix = M_("Select '{name}' as the default microphone in your sound settings, and in "
                "your softphone.", name=others[0].description)
    elif default_in.kind == "bluetooth_headset":
        fix = M_("Use the USB headset IT gave you (or the headset's USB dongle) instead of a "
                "Bluetooth connection.")
    elif default_in.is_headset:
        fix = M_("Use the headset IT issued ({models}); ask IT for one if you do not have "
                "it.", models=", ".join(approved))
    else:
        fix = _plug_in()
    return state_result(AUDIO_HEADSET.id, status, value, policy, message=message, fix=fix,
                        details=details)


def _plug_in() -> Msg:
    return M_("Plug in the headset IT gave you; if it is plugged in, unplug and replug the USB "
             "headset, wait ten seconds and select it as the default microphone.")


def _check_output(inventory: DeviceInventory, mic: AudioDevice, policy: Policy,
                  details: dict[str, Any]) -> CheckResult:
    """The microphone is right; warn when calls would still play through other speakers."""
    out = inventory.default("output")
    details["default_output"] = out.description if out else None
    if out is None or out.is_headset or not inventory.of("output"):
        return state_result(AUDIO_HEADSET.id, Status.PASS, mic.kind, policy,
                            message=M_("calls use {name} ({kind})",
                                name=mic.description, kind=kind_msg(mic.kind)),
                            details=details)
    match = next((o for o in inventory.of("output")
                  if o.is_headset and o.description == mic.description), None) or next(
        (o for o in inventory.of("output") if o.is_headset), None)
    fix = (M_("Select '{name}' as the default speaker (output) in your sound settings.",
        name=match.description) if match else
        M_("Select your headset as the default speaker (output) in your sound settings."))
    return state_result(AUDIO_HEADSET.id, Status.WARN, mic.kind, policy,
                        message=M_("the microphone is {mic}, but sound plays through {out}",
                            mic=mic.description, out=out.description),
                        fix=fix, details=details)


# ------------------------------------------------------------------ the room

def _fix_noise() -> Msg:
    return M_("Move away from the window, close the door, and turn off fans, radio or TV "
             "nearby; keep the microphone close to your mouth.")


def evaluate_room(reading: AudioReading, policy: Policy,
                  microphone: AudioDevice | None = None) -> list[CheckResult]:
    """audio.noise, audio.speech_level, audio.snr, audio.clipping, audio.dropouts, audio.hum,
    audio.room_sounds (``agent_kit.evaluate.room_sounds``), then audio.voice_bandwidth.
    ``microphone``: the device recorded, with its input volume where known; the voice-level
    and mute fixes name it (``evaluate.voice_level``)."""
    if reading.problem:
        reason = M_("could not record from the microphone: {reason}",
            reason=reading.problem)
        fix = M_("Unplug and replug the USB headset, close other programs that use the "
                "microphone, and run the check again.")
        return [unknown_result(cid, policy, reason, fix=fix)
                for cid in (*ROOM_CHECKS, AUDIO_VOICE_BANDWIDTH.id)]
    common = {"device": reading.device, "captured_s": round(reading.captured_s, 2)}
    out: list[CheckResult] = []
    if reading.silent:
        reason = M_("the microphone sends only silence: it is muted or not working")
        fix = muted_fix(microphone) or M_(
            "Unmute the microphone (the mute button on the headset or its cable, and in the "
            "sound settings), or unplug and replug the USB headset.")
        for cid in ROOM_CHECKS:
            if cid == AUDIO_SPEECH_LEVEL.id and reading.prompted:
                out.append(state_result(cid, Status.FAIL, None, policy, message=reason,
                                        fix=fix, details=common))
            elif cid == AUDIO_DROPOUTS.id:
                out.append(_dropouts(reading, policy, common))
            else:
                out.append(unknown_result(cid, policy, reason, fix=fix))
        out.append(unknown_result(AUDIO_VOICE_BANDWIDTH.id, policy, reason, fix=fix))
        return out
    assert reading.noise_dbfs_a is not None and reading.noise_dbfs is not None
    out.append(level_result(
        AUDIO_NOISE.id, reading.noise_dbfs_a, policy,
        message=M_("background noise {level:.0f} dBFS(A)", level=reading.noise_dbfs_a),
        fix_if_bad=_fix_noise(), ndigits=1,
        details={**common, "method": reading.noise_method, "noise_s": round(reading.noise_s, 2),
                 "unweighted_dbfs": round(reading.noise_dbfs, 1), "vad": reading.vad}))
    out += _speech(reading, policy, common, microphone)
    out.append(level_result(
        AUDIO_CLIPPING.id, reading.clipping_pct, policy,
        message=M_("{pct:.3f} % of the sound clipped ({runs} times)",
            pct=reading.clipping_pct, runs=reading.clipped_runs),
        fix_if_bad=M_("Lower the microphone volume in the sound settings (to about 70 %) and "
                     "keep the microphone out of your breath, at the corner of your mouth."),
        ndigits=3, details={**common, "runs": reading.clipped_runs}))
    out.append(_dropouts(reading, policy, common))
    hum_value = reading.hum_dbfs if reading.hum_dbfs is not None else -120.0
    message = (M_("mains hum at {hz} Hz: {level:.0f} dBFS", hz=reading.hum_hz,
                                                                   level=hum_value)
               if reading.hum_hz else M_("no mains hum"))
    out.append(level_result(
        AUDIO_HUM.id, hum_value, policy, message=message,
        fix_if_bad=M_("Unplug the laptop charger during calls or plug it into another socket, "
                     "keep the headset cable away from power cables, and prefer the USB "
                     "headset to the audio jack."),
        ndigits=1, details={**common, "mains_hz": reading.hum_hz}))
    out.append(evaluate_room_sounds(reading, policy, common))
    out.append(evaluate_voice_bandwidth(reading, policy))
    return out


def band_msg(band: str) -> Msg | str:
    """A voice bandwidth class in plain words, as a message id (an unknown class as it is)."""
    return {
        "narrowband": M_("narrowband (telephone quality)"),
        "wideband": M_("wideband (HD voice)"),
        "superwideband": M_("super-wideband"),
        "fullband": M_("fullband"),
    }.get(band, band)


def evaluate_voice_bandwidth(reading: AudioReading, policy: Policy) -> CheckResult:
    """audio.voice_bandwidth: the class of the voice's upper edge, by the policy's status for it.

    ``unknown`` when no speech was heard (the monitor hears speech only during calls), when
    there was too little of it, or when the room's noise hid the voice above a narrowband edge
    (a noisy room is not a narrowband path)."""
    cid = AUDIO_VOICE_BANDWIDTH.id
    band = reading.voice_band
    if not reading.speech_heard:
        reason = (M_("no speech heard") if reading.prompted else
                  M_("no speech heard: nobody was asked to speak (run 'agent-kit check' at a "
                     "terminal to test your voice)"))
        return unknown_result(cid, policy, reason)
    if band is None:
        return unknown_result(
            cid, policy, M_("too little speech ({seconds:.1f} s) to measure the voice "
                            "bandwidth", seconds=reading.speech_s))
    details = {"device": reading.device, "band": band.band, "edge_hz": band.edge_hz,
               "noise_limited": band.noise_limited, "speech_s": round(reading.speech_s, 2)}
    if band.band == "narrowband" and band.noise_limited:
        return unknown_result(
            cid, policy, M_("the background noise hides the high tones of your voice, so the "
                            "voice bandwidth cannot be measured"), fix=_fix_noise())
    status = status_named(str(policy.check(cid).params.get(band.band, "pass")))
    message = M_("the microphone sends your voice up to {khz:.1f} kHz: {band} sound",
                 khz=band.edge_khz, band=band_msg(band.band))
    fix: Msg | None = None
    if band.band == "narrowband":
        fix = M_("Your headset or its connection sends telephone-quality (narrowband) sound. "
                 "Connect the headset with its USB cable or its own USB dongle instead of "
                 "Bluetooth, and not through an old adapter or dock; if it stays so, ask IT for "
                 "a wideband (HD voice) headset.")
    elif status is not Status.PASS:
        fix = M_("Ask IT which headset and connection give the sound quality they require.")
    return state_result(cid, status, round(band.edge_khz, 2), policy, message=message,
                        fix=fix, details=details)


def _speech(reading: AudioReading, policy: Policy, common: dict[str, Any],
            microphone: AudioDevice | None = None) -> list[CheckResult]:
    if not reading.speech_heard or reading.speech_level_dbfs is None or reading.snr_db is None:
        if reading.prompted:
            fail = state_result(
                AUDIO_SPEECH_LEVEL.id, Status.FAIL, None, policy,
                message=M_("we asked you to read a sentence aloud but heard no speech"),
                fix=M_("Check that the microphone is not muted and is close to your mouth, then "
                      "run the check again and read the sentence aloud."),
                details={**common, "speech_s": round(reading.speech_s, 2)})
            return [fail, unknown_result(AUDIO_SNR.id, policy, M_("no speech heard"))]
        reason = M_("no speech heard: nobody was asked to speak (run 'agent-kit check' at a "
                   "terminal to test your voice)")
        return [unknown_result(AUDIO_SPEECH_LEVEL.id, policy, reason),
                unknown_result(AUDIO_SNR.id, policy, reason)]
    details = {**common, "activity": round(reading.speech_activity or 0.0, 3),
               "speech_s": round(reading.speech_s, 2)}
    level = evaluate_voice_level(reading, policy, details, microphone)
    snr = level_result(
        AUDIO_SNR.id, reading.snr_db, policy,
        message=M_("your voice is {snr:.0f} dB above the background", snr=reading.snr_db),
        fix_if_bad=M_("{noise} {voice}", noise=_fix_noise(), voice=fix_quiet_voice()),
        ndigits=1, details=details)
    return [level, snr]


def _dropouts(reading: AudioReading, policy: Policy, common: dict[str, Any]) -> CheckResult:
    gaps = [round(d.duration_ms, 1) for d in reading.dropouts]
    return level_result(
        AUDIO_DROPOUTS.id, reading.dropout_count, policy,
        message=M_("{n} dropouts in {seconds:.0f} s of sound",
            n=reading.dropout_count, seconds=reading.captured_s),
        fix_if_bad=M_("Unplug and replug the USB headset straight into the computer (not a hub "
                     "or dock), and close other programs that use the microphone."),
        ndigits=0, details={**common, "gaps_ms": gaps, "overflows": reading.overflows})
