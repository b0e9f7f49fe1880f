"""Play a signal through the call output while recording the call input, on one stream.

One full-duplex PortAudio stream (sounddevice): every callback hands over as many frames out as
in, so output frame k and input frame k share one index and one clock, and the echo's lag in
frames is exact. On Linux both ends are the ALSA ``pulse`` device, i.e. the sound server's
default sink and default source, the ones a softphone uses (PortAudio sees no other PulseAudio
device, ``probes.audio.capture``); elsewhere the default output and input.

The lag in frames holds this program's own buffering too. The sound system stamps each callback
with when its first input frame was captured and its first output frame will be played
(PortAudio's ``inputBufferAdcTime``/``outputBufferDacTime``): their difference is that buffering
(``internal_latency_ms``), so lag - buffering is the echo path outside this program (the sound
server, the device, the air). Where the stamps are missing or absurd, the stream's nominal
latencies stand in (``clock`` says which).

Privacy: the recording lives in memory for the analysis and is returned to the caller only.
"""

from __future__ import annotations

import statistics
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

STALL_MARGIN_S = 5.0


@dataclass(frozen=True)
class DuplexCapture:
    """The output as sent and the input as read, frame for frame, and the stream's own delay."""

    played: NDArray[np.float64]
    recorded: NDArray[np.int16]
    device: str
    internal_latency_ms: float    # output stamp - input stamp of the same callback
    clock: str                    # "timestamps" or "stream" (nominal latencies)
    underflows: int = 0
    overflows: int = 0


def call_devices() -> tuple[Any, str]:
    """(sounddevice device pair, label) for the call's input and output.

    Linux: the ``pulse`` device both ways (the server's defaults); elsewhere the defaults.
    """
    import sounddevice as sd  # type: ignore[import-untyped]

    for index, dev in enumerate(sd.query_devices()):
        if (dev["name"] == "pulse" and dev["max_input_channels"] > 0
                and dev["max_output_channels"] > 0):
            return (index, index), "pulse (the system's default source and sink)"
    default_in, default_out = sd.default.device
    if default_in is None or default_in < 0:
        raise RuntimeError("no microphone: the system has no default input device")
    if default_out is None or default_out < 0:
        raise RuntimeError("no speaker: the system has no default output device")
    return (default_in, default_out), (f"{sd.query_devices(default_in)['name']} / "
                                       f"{sd.query_devices(default_out)['name']}")


def play_and_record(signal: NDArray[np.float64], *, sample_rate: int, lead: int, tail: int,
                    device: Any = None,
                    on_level: Callable[[float], None] | None = None) -> DuplexCapture:
    """``lead`` frames of silence, ``signal``, ``tail`` frames of silence out; the input over
    exactly those frames in. ``on_level(dbfs)`` hears each input block's level."""
    import numpy as np
    import sounddevice as sd

    from probes.audio.capture import block_level_dbfs

    label = "the given device"
    if device is None:
        device, label = call_devices()
    total = lead + signal.size + tail
    played = np.zeros(total, dtype=np.float64)
    played[lead:lead + signal.size] = signal
    out32 = played.astype(np.float32)
    recorded = np.zeros(total, dtype=np.int16)
    stamps: list[float] = []
    flags = {"under": 0, "over": 0}
    pos = 0
    done = threading.Event()

    def callback(indata: Any, outdata: Any, frames: int, time_info: Any, status: Any) -> None:
        nonlocal pos
        if status.output_underflow:
            flags["under"] += 1
        if status.input_overflow:
            flags["over"] += 1
        start = pos
        end = min(total, start + frames)
        count = end - start
        outdata[:count, 0] = out32[start:end]
        outdata[count:, 0] = 0.0
        recorded[start:end] = np.clip(np.round(indata[:count, 0] * 32768.0), -32768, 32767)
        adc, dac = float(time_info.inputBufferAdcTime), float(time_info.outputBufferDacTime)
        if adc > 0 and dac > 0:
            stamps.append(dac - adc)
        pos = end
        if on_level is not None:
            on_level(block_level_dbfs(recorded[start:end]))
        if pos >= total:
            done.set()
            raise sd.CallbackStop

    with sd.Stream(samplerate=sample_rate, channels=1, dtype="float32", device=device,
                   callback=callback) as stream:
        nominal_ms = 1000.0 * (float(stream.latency[0]) + float(stream.latency[1]))
        if not done.wait(timeout=total / sample_rate + STALL_MARGIN_S):
            raise RuntimeError(f"the sound system played and recorded {pos / sample_rate:.1f} s "
                               f"in {total / sample_rate + STALL_MARGIN_S:.0f} s: it stalled")
    # the stamps of a healthy stream agree to a millisecond; outside 0-2 s they are not stamps
    internal = [1000.0 * s for s in stamps if 0.0 < s < 2.0]
    if len(internal) >= max(3, len(stamps) // 2):
        latency_ms, clock = statistics.median(internal), "timestamps"
    else:
        latency_ms, clock = nominal_ms, "stream"
    return DuplexCapture(played, recorded, label, latency_ms, clock, flags["under"],
                         flags["over"])
