"""Judge what the room sent to the microphone while the agent was silent (``audio.room_sounds``).

The probe (``probes.audio.room_sounds``) tells steady noise, other voices and bangs apart and
measures each; here each kind is weighed against its policy level, and the result names the
kind that matters most, with the fix for that kind: other voices (close the door, move away
from the TV) win over bangs (keep away from the kitchen) over steady noise (turn the fan off).

Whose voice: in the guided check the agent was asked to stay quiet, so every voice is someone
else's. An unprompted capture (the monitor) may hold the agent's own speech: a headset's
microphone hears its wearer 20-30 dB louder than anyone across the room, so voices at
``own_voice_dbfs`` or louder are the agent talking (``talking``, not judged); the monitor also
leaves voices unjudged during a call (``agent_kit.loop.monitor``).
"""

from __future__ import annotations

from typing import Any

from agent_kit.core.checks import AUDIO_ROOM_SOUNDS
from agent_kit.core.i18n import M_, Msg
from agent_kit.core.levels import state_result, status_named, unknown_result
from agent_kit.core.policy import Policy
from agent_kit.core.results import STATUS_RANK, CheckResult, Status
from probes.audio.capture import AudioReading
from probes.audio.room_sounds import RoomSounds

KINDS = ("voices", "impulses", "steady")   # the order ties are broken in
TALKING = "talking"
QUIET = "quiet"


def fix_for(kind: str) -> Msg:
    """The one thing to do about a kind of room sound."""
    return {
        "voices": M_("Close the door of your room, move away from the TV or radio (or turn it "
                     "off), and ask the people near you to talk elsewhere while you take calls."),
        "impulses": M_("Take calls in a room with the door closed, away from the kitchen and "
                       "the front door, so bangs and knocks do not reach your microphone."),
        "steady": M_("Turn off the fan, heater or air conditioner near you, or point it away "
                     "from you; if the noise comes from the street, close the window."),
    }[kind]


def _param(params: dict[str, Any], key: str) -> float:
    """A level of the policy (the default policy holds every one; a site file merges over it)."""
    return float(params[key])


def evaluate_room_sounds(reading: AudioReading, policy: Policy,
                         common: dict[str, Any] | None = None) -> CheckResult:
    """audio.room_sounds: quiet, steady noise, voices or bangs, the dominant kind named."""
    cid = AUDIO_ROOM_SOUNDS.id
    room = reading.room
    if room is None:
        return unknown_result(cid, policy, M_("too little sound was recorded to tell what the "
                                              "room holds"))
    params = policy.check(cid).params
    own_level = _param(params, "own_voice_dbfs")

    def wearer(r: RoomSounds) -> bool:   # the headset's wearer talking (unprompted only)
        return (not reading.prompted and r.voices and r.voices_dbfs is not None
                and r.voices_dbfs >= own_level)

    talked = wearer(room)
    if talked:   # judge the room between the wearer's phrases, when there was such a stretch
        between = reading.room_between_speech
        if between is None or wearer(between):
            details = _details(room, common)
            details["own_voice"] = True
            return state_result(cid, Status.UNKNOWN, TALKING, policy,
                                message=M_("you were talking: other voices in the room are "
                                           "judged while you are silent"), details=details)
        room = between
    details = _details(room, common)
    details["between_speech"] = talked
    # True: the wearer spoke; False: voices from across the room only; None: no voices
    details["own_voice"] = True if talked else (False if room.voices else None)
    voices_at = room.voices_dbfs if room.voices else None
    heard: list[str] = []
    if voices_at is not None and voices_at >= _param(params, "voices_dbfs"):
        heard.append("voices")
    if room.impulse_peak_dbfs is not None and \
            room.impulse_peak_dbfs >= _param(params, "impulses_dbfs"):
        heard.append("impulses")
    if room.floor_dbfs_a >= _param(params, "steady_dbfs_a"):
        heard.append("steady")
    details["heard"] = heard
    if not heard:
        return state_result(cid, Status.PASS, QUIET, policy,
                            message=M_("the room is quiet: no voices, bangs or steady noise "
                                       "loud enough to matter"), details=details)
    statuses = {k: status_named(str(params.get(k, "warn"))) for k in heard}
    kind = max(heard, key=lambda k: (STATUS_RANK[statuses[k]], -KINDS.index(k)))
    details["kind"] = kind
    return state_result(cid, statuses[kind], kind, policy, message=_message(kind, room),
                        fix=fix_for(kind), details=details)


def _details(room: RoomSounds, common: dict[str, Any] | None) -> dict[str, Any]:
    def r(v: float | None, nd: int = 1) -> float | None:
        return round(v, nd) if v is not None else None

    return {**(common or {}), "room_s": round(room.seconds, 2),
            "floor_dbfs_a": r(room.floor_dbfs_a), "floor_dbfs": r(room.floor_dbfs),
            "spread_db": r(room.spread_db), "flatness": r(room.flatness, 3),
            "voice_s": r(room.voice_s, 2), "syllabic_ratio": r(room.syllabic_ratio),
            "voices_dbfs": r(room.voices_dbfs), "impulses": room.impulses,
            "impulse_peak_dbfs": r(room.impulse_peak_dbfs), "vad": room.vad}


def _message(kind: str, room: RoomSounds) -> Msg:
    if kind == "voices":
        return M_("other people's voices reach your microphone ({level:.0f} dBFS)",
                  level=room.voices_dbfs)
    if kind == "impulses":
        return M_("sudden loud sounds (a door, dishes, knocking) reach your microphone: "
                  "{n} in {seconds:.0f} s, up to {level:.0f} dBFS", n=room.impulses,
                  seconds=room.seconds, level=room.impulse_peak_dbfs)
    return M_("steady noise (a fan, a machine or traffic) reaches your microphone "
              "({level:.0f} dBFS(A))", level=room.floor_dbfs_a)


def not_judged_in_call(policy: Policy) -> CheckResult:
    """The monitor's answer during a call: the voices heard are the call's."""
    return unknown_result(AUDIO_ROOM_SOUNDS.id, policy,
                          M_("not judged during a call: your own voice fills the microphone"))
