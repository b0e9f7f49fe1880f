"""The voice's level (``audio.speech_level``): too quiet, too loud, and the input volume to set.

One check with two sides. The ITU-T P.56 active speech level is judged low by the check's
``warn``/``fail`` (a voice the customer strains to hear) and high by its own
``loud_warn``/``loud_fail`` (a voice that distorts); a voice whose peaks keep reaching the last
decibel below full scale for ``near_clip_ms`` warns as too loud even when its active level
does not (no headroom left: the next louder word clips). Why one check and not a new one: it is
one reading of one quantity, the slider that fixes it is the same on both sides, and a voice is
never both; a second check would add a catalogue entry, a heartbeat field and a dashboard row
for a state that is either/or. ``audio.clipping`` still counts what did clip.

The fix names the microphone (its description in the sound settings) and, where the sound
server reports it, its input volume now and the volume that brings the voice to ``target``.
The measured level moves decibel for decibel with the slider's gain, and the slider's gain on
PulseAudio and PipeWire is the cubic curve (``probes.audio.devices.volume_pct_to_db``: 60
log10(percent / 100) dB), so

    suggested % = volume_db_to_pct(current dB + (target - level)),

the change limited so the loudest peak keeps ``PEAK_HEADROOM_DBFS`` below full scale, capped at
100 % (above it the server boosts in software: room noise and clipping with the voice), and
rounded to 5 %. Where the volume is not known (Windows/macOS mixers are not read yet,
``probes.audio.devices.os_mixer_input_volume``) the fix names the device and where its slider
is, without a percentage. Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from agent_kit.core.checks import AUDIO_SPEECH_LEVEL
from agent_kit.core.i18n import M_, Msg
from agent_kit.core.levels import judge_level, state_result
from agent_kit.core.policy import Policy
from agent_kit.core.results import STATUS_RANK, CheckResult, Status
from probes.audio.capture import AudioReading
from probes.audio.devices import AudioDevice, InputVolume, volume_db_to_pct

ROUND_TO_PCT = 5
MAX_SUGGESTED_PCT = 100.0   # chosen: the slider's nominal top; above it is software boost
MIN_SUGGESTED_PCT = 5.0
PEAK_HEADROOM_DBFS = -6.0   # chosen: a suggested volume leaves the loudest peak 6 dB of headroom
DEFAULT_TARGET_DBFS = -26.0  # the policy's `target` when a site policy leaves it out
RAISE_MIN_PCT = 5           # a suggestion less than this above the current volume is no raise


@dataclass(frozen=True)
class VolumeAdvice:
    """The input volume that would bring the voice to the target, from the volume now."""

    current_pct: float
    suggested_pct: int
    gain_db: float    # the change the measurement asks for (limited by the peaks' headroom)
    capped: bool      # the target needs more than MAX_SUGGESTED_PCT


def suggest_volume(level_dbfs: float, peak_dbfs: float | None, target_dbfs: float,
                   volume: InputVolume) -> VolumeAdvice | None:
    """The slider position that moves ``level_dbfs`` to ``target_dbfs`` on the server's
    curve; None when the volume is not mapped to decibels (a hardware mixer without dB
    steps: a change in percent cannot be computed)."""
    if volume.db is None:
        return None
    gain = target_dbfs - level_dbfs
    if peak_dbfs is not None:
        gain = min(gain, PEAK_HEADROOM_DBFS - peak_dbfs)
    wanted = volume_db_to_pct(volume.db + gain)
    pct = min(MAX_SUGGESTED_PCT, max(MIN_SUGGESTED_PCT, wanted))
    suggested = int(ROUND_TO_PCT * round(pct / ROUND_TO_PCT))
    return VolumeAdvice(volume.percent, suggested, round(gain, 1), wanted > MAX_SUGGESTED_PCT)


def _worst(*statuses: Status) -> Status:
    return max(statuses, key=lambda s: STATUS_RANK[s])


def _number(params: dict[str, Any], key: str, default: float | None) -> float | None:
    value = params.get(key, default)
    return None if value is None or value == "none" else float(value)


def evaluate_voice_level(reading: AudioReading, policy: Policy, details: dict[str, Any],
                         microphone: AudioDevice | None = None) -> CheckResult:
    """audio.speech_level for a capture in which speech was heard."""
    assert reading.speech_level_dbfs is not None
    level = reading.speech_level_dbfs
    rule = policy.check(AUDIO_SPEECH_LEVEL.id)
    params = rule.params
    target = _number(params, "target", DEFAULT_TARGET_DBFS)
    target = DEFAULT_TARGET_DBFS if target is None else target
    near_limit = _number(params, "near_clip_ms", None)
    low = judge_level(level, rule.warn, rule.fail, "lower_is_worse")
    loud_by_level = judge_level(level, _number(params, "loud_warn", None),
                                _number(params, "loud_fail", None), "higher_is_worse")
    peaks_at_limit = near_limit is not None and reading.near_full_scale_ms >= near_limit
    high = _worst(loud_by_level, Status.WARN) if peaks_at_limit else loud_by_level
    volume = microphone.input_volume if microphone is not None else None
    name = (microphone.description or microphone.name) if microphone is not None else None
    details = {**details, "target_dbfs": target, "peak_dbfs": _round(reading.peak_dbfs),
               "near_full_scale_ms": round(reading.near_full_scale_ms, 1),
               "vad_gain_db": reading.vad_gain_db,
               "microphone": name,
               "input_volume_pct": round(volume.percent, 1) if volume else None,
               "input_volume_db": volume.db if volume else None}
    advice = (suggest_volume(level, reading.peak_dbfs, target, volume)
              if volume is not None else None)
    details["suggested_volume_pct"] = advice.suggested_pct if advice is not None else None
    if low is not Status.PASS:
        details["voice"] = "too_quiet"
        message = M_("your voice is too quiet: {level:.0f} dBFS (P.56 active level; about "
                     "{target:.0f} dBFS is right)", level=level, target=target)
        return state_result(AUDIO_SPEECH_LEVEL.id, low, round(level, 1), policy,
                            message=message, fix=_quiet_fix(name, advice), details=details)
    if high is not Status.PASS:
        details["voice"] = "too_loud"
        if loud_by_level is Status.PASS:   # the peaks alone
            message = M_("your voice is too loud: its peaks come within 1 dB of the "
                         "microphone's limit ({peak:.1f} dBFS) for {ms:.0f} ms",
                         peak=reading.peak_dbfs if reading.peak_dbfs is not None else 0.0,
                         ms=reading.near_full_scale_ms)
        else:
            message = M_("your voice is too loud: {level:.0f} dBFS (P.56 active level; about "
                         "{target:.0f} dBFS is right)", level=level, target=target)
        return state_result(AUDIO_SPEECH_LEVEL.id, high, round(level, 1), policy,
                            message=message, fix=_loud_fix(name, advice), details=details)
    details["voice"] = "ok"
    return state_result(AUDIO_SPEECH_LEVEL.id, Status.PASS, round(level, 1), policy,
                        message=M_("your voice reaches {level:.0f} dBFS (P.56 active level)",
                                   level=level), details=details)


def _round(value: float | None) -> float | None:
    return round(value, 1) if value is not None else None


def fix_quiet_voice() -> Msg:
    """The fix for a quiet voice when the microphone cannot be named (also ``audio.snr``'s)."""
    return M_("Bring the headset's microphone to the corner of your mouth (two fingers away), "
              "check that it is not muted, and raise the microphone volume in the sound "
              "settings.")


def _quiet_fix(name: str | None, advice: VolumeAdvice | None) -> Msg:
    if name is None:
        return fix_quiet_voice()
    if advice is None:
        return M_("Raise the input volume of your microphone “{name}” (Sound settings > "
                  "Input), and keep the microphone at the corner of your mouth, two fingers "
                  "away.", name=name)
    if advice.suggested_pct >= advice.current_pct + RAISE_MIN_PCT:
        return M_("Your microphone “{name}” is set to {volume:.0f} %: raise its input volume "
                  "to about {suggested} % (Sound settings > Input), and keep the microphone "
                  "at the corner of your mouth, two fingers away.",
                  name=name, volume=advice.current_pct, suggested=advice.suggested_pct)
    return M_("Your microphone “{name}” is already at {volume:.0f} %: bring the microphone to "
              "the corner of your mouth, two fingers away; if your voice stays quiet, ask IT "
              "to check the headset.", name=name, volume=advice.current_pct)


def _loud_fix(name: str | None, advice: VolumeAdvice | None) -> Msg:
    if name is None:
        return M_("Lower the microphone volume in the sound settings (Input), and keep the "
                  "microphone out of your breath, at the corner of your mouth.")
    if advice is None or advice.suggested_pct > advice.current_pct - RAISE_MIN_PCT:
        return M_("Lower the input volume of your microphone “{name}” (Sound settings > "
                  "Input), and keep the microphone out of your breath, at the corner of your "
                  "mouth.", name=name)
    return M_("Your microphone “{name}” is set to {volume:.0f} %: lower its input volume to "
              "about {suggested} % (Sound settings > Input), and keep the microphone out of "
              "your breath, at the corner of your mouth.",
              name=name, volume=advice.current_pct, suggested=advice.suggested_pct)


def muted_fix(microphone: AudioDevice | None) -> Msg | None:
    """The fix for a silent capture when the sound server says the microphone is muted."""
    volume = microphone.input_volume if microphone is not None else None
    if microphone is None or volume is None or not volume.muted:
        return None
    return M_("Your microphone “{name}” is muted in the sound settings: unmute it (Sound "
              "settings > Input), and check the mute button on the headset or its cable.",
              name=microphone.description or microphone.name)
