"""The guided microphone test (the ``room`` unit) with a person at the screen.

Before anything is recorded the person is told which microphone will be recorded (the system's
default input, the one calls use, by the name the sound settings show) and asked to put the
headset on and say when they are ready; then each step ("stay quiet", "read this aloud") comes
with how long it lasts, and the level of what the microphone hears arrives about every 50 ms
for a live meter. Only numbers leave the capture: the samples stay in the probe's memory.

After the capture the microphone recorded is read again with its input volume (only when a
fix may need it), so the voice-level fix names the device and the volume to set.

The face supplies a ``MicrophoneGuide`` (the window's panel); without one the unit prompts
through ``ProbeContext.prompt`` as before (the terminal), or records unguided (the monitor).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from agent_kit.core.i18n import _
from agent_kit.core.levels import unknown_result

if TYPE_CHECKING:
    from agent_kit.core.results import CheckResult
    from agent_kit.run.units import ProbeContext
    from probes.audio.capture import AudioReading
    from probes.audio.devices import AudioDevice

# How long the guide may wait for "I am ready" before the test is given up; the room unit's
# timeout adds it to the recording's, so a person taking a minute to find the headset is not
# reported as a stuck probe.
READY_WAIT_S = 120.0


@dataclass(frozen=True)
class MicrophoneInUse:
    """The microphone the test records: its name as the sound settings show it, and its kind
    (``probes.audio.devices.Kind``: "usb_headset", "builtin", "webcam"...); None: unknown."""

    name: str | None
    kind: str | None

    @property
    def is_headset(self) -> bool:
        return self.kind in ("usb_headset", "analog_headset", "bluetooth_headset")


class MicrophoneGuide(Protocol):
    """What a face shows during the microphone test. Called from the probe's threads."""

    def ready(self, microphone: MicrophoneInUse, timeout_s: float) -> bool:
        """Name the microphone, ask for the headset to be put on, and block until the person
        says they are ready (True) or ``timeout_s`` passes (False: the test is not run)."""

    def phase(self, text: str, seconds: float) -> None:
        """A step of the recording starts: show ``text`` and count ``seconds`` down."""

    def level(self, dbfs: float) -> None:
        """The live level of the microphone (RMS of the last ~50 ms, dBFS)."""

    def finished(self) -> None:
        """The recording is over (or was not made): hide the step."""


def microphone_in_use() -> MicrophoneInUse:
    """The system's default input, which calls (and the test) record from."""
    from probes.audio.devices import list_audio_devices

    try:
        default = list_audio_devices().default("input")
    except Exception:  # noqa: BLE001 - naming the device is a courtesy; the test still runs
        default = None
    if default is None:
        return MicrophoneInUse(None, None)
    return MicrophoneInUse(default.description or default.name, default.kind)


def room_results(ctx: ProbeContext) -> list[CheckResult]:
    """Record and judge the room: guided by ``ctx.microphone`` when a person is there."""
    from agent_kit.core.checks import ids_owned_by
    from agent_kit.evaluate.audio import evaluate_room
    from probes.audio.capture import measure_audio

    guide = ctx.microphone if ctx.interactive else None
    microphone = microphone_in_use() if guide is not None else None
    if microphone is not None and microphone.name is None and microphone.kind is None:
        # no input at all (no sound system, nothing plugged in): nothing to put on and wait
        # for; the recording fails at once with the reason, and the fix says what to plug in
        guide, microphone = None, None
    if (guide is not None and microphone is not None
            and not guide.ready(microphone, READY_WAIT_S)):
        guide.finished()
        reason = _("the microphone test was not started")
        fix = _("Put your headset on, press “Check again”, then press “Start the microphone "
                "test”.")
        return [unknown_result(cid, ctx.policy, reason, fix=fix) for cid in ids_owned_by("room")]
    try:
        reading = measure_audio(
            quiet_s=float(ctx.policy.setting("audio", "quiet_s", 3.0)),
            speech_s=float(ctx.policy.setting("audio", "speech_s", 6.0)),
            interactive=ctx.interactive, prompt=ctx.prompt,
            quiet_text=_("Microphone test: please stay quiet for {seconds:g} seconds..."),
            speech_text=_("Now read this sentence aloud: \"{sentence}\""),
            sentence=_("Good morning, and thank you for calling. How can I help you today? "
                       "Let me look that up for you."),
            device_label=microphone.name if microphone is not None else None,
            on_phase=guide.phase if guide is not None else None,
            on_level=guide.level if guide is not None else None)
    finally:
        if guide is not None:
            guide.finished()
    return evaluate_room(reading, ctx.policy, recorded_microphone(reading))


def recorded_microphone(reading: AudioReading) -> AudioDevice | None:
    """The default input (the device recorded) with its input volume, for the fixes that
    name it: read after the capture, and only when a fix may need it (speech heard or asked
    for, or only silence), so the monitor's quiet-room captures cost no ``pactl`` calls."""
    if reading.problem or not (reading.speech_heard or reading.prompted or reading.silent):
        return None
    from probes.audio.devices import default_input_device

    return default_input_device()
