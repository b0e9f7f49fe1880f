"""The echo test's playback and recording: the call output plays while the call input records.

Kept apart from ``probes.audio.capture`` behind one function (``play_and_record``: a signal in,
a ``DuplexCapture`` of numbers in memory out) so it can move to another audio backend with the
capture; ``probes.audio.echo`` needs only that function and the capture's stamps.

One full-duplex PortAudio stream (sounddevice): every callback hands over as many frames out as
in, so output frame k and input frame k share one index and one clock, and the echo's lag in
frames is exact. On Linux both ends are the ALSA ``pulse`` device, i.e. the sound server's
default sink and default source, the ones a softphone uses (PortAudio sees no other PulseAudio
device, ``probes.audio.capture``); elsewhere the default output and input.

The lag in frames holds this program's own buffering too, and that buffering is not fixed: a
full-duplex stream starts its output before its input delivers (PortAudio feeds silence in,
"input underflow", for the first few callbacks), so the offset between the two is set anew at
every start, and an underrun moves it. The sound system stamps each callback with when its
first input frame was captured and its first output frame will be played (PortAudio's
``inputBufferAdcTime``/``outputBufferDacTime``): the time of any frame follows from the nearest
stamped callback, so the echo path outside this program (the sound server, the device, the
air) is the echo's capture time minus the probe's play time. Callbacks with a driver gap are
kept (``Block.gap``) so the caller can refuse a recording that a gap cut through.

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

STALL_MARGIN_S = 3.0
STAMPS_STEADY_S = 0.004   # chosen: a sound card's stamps hold within 0.1 ms; a pipe source's
#                           jitter by +-5 ms per callback, +-2 ms as a median over half a second


class StreamStalled(RuntimeError):
    """The stream stopped delivering (PortAudio's ALSA poll gives up on a starved machine)."""


@dataclass(frozen=True)
class Block:
    """One callback: its first frame, its length, the sound system's stamps (seconds on the
    stream's clock: when its first input frame was captured, when its first output frame will
    be played) and whether the driver reported a gap (an under- or overflow) in it."""

    start: int
    frames: int
    adc_s: float
    dac_s: float
    gap: bool

    @property
    def stamped(self) -> bool:
        # PortAudio gives 0 when the host has no stamp; a stamp pair further apart than 2 s
        # (seen after an ALSA underrun recovery) is not this stream's buffering
        return self.adc_s > 0 and self.dac_s > 0 and 0.0 < self.dac_s - self.adc_s < 2.0


@dataclass(frozen=True)
class DuplexCapture:
    """The output as sent and the input as read, frame for frame, and each callback's stamps."""

    played: NDArray[np.float64]
    recorded: NDArray[np.int16]
    device: str
    sample_rate: int
    blocks: tuple[Block, ...]
    nominal_latency_s: float      # the stream's own input + output latency, as opened

    def gap_after(self, frame: int) -> bool:
        """A driver gap in a callback that ends after ``frame`` (the stream's first callbacks
        feed silence in while the input starts: that is before the signal, and harmless)."""
        return any(b.gap and b.start + b.frames > frame for b in self.blocks)

    def input_time(self, frame: int, *, settled: int = 0) -> float | None:
        """When input ``frame`` was captured (stream clock); ``settled``: the first frame
        after the stream's start-up (``_origin``)."""
        origin = self._origin(output=False, settled=settled)
        return None if origin is None else origin + frame / self.sample_rate

    def output_time(self, frame: int, *, settled: int = 0) -> float | None:
        """When output ``frame`` was played (stream clock)."""
        origin = self._origin(output=True, settled=settled)
        return None if origin is None else origin + frame / self.sample_rate

    def stamps_steady(self, settled: int, tolerance_s: float = STAMPS_STEADY_S) -> bool:
        """Whether each direction's origin is one number from ``settled`` on: the medians of
        the first and the second half of the callbacks agree within ``tolerance_s``. A sound
        card's stamps do; a source without a clock of its own (a pipe, a stalled server) can
        step by tens of milliseconds in mid-stream, and then no stamp tells the echo's time."""
        for output in (True, False):
            origins = self._origins(output=output, settled=settled)
            if len(origins) < 6:
                continue
            half = len(origins) // 2
            if abs(statistics.median(origins[:half])
                   - statistics.median(origins[half:])) > tolerance_s:
                return False
        return True

    def _origins(self, *, output: bool, settled: int) -> list[float]:
        # a block with a gap holds silence PortAudio made up, not frames it captured or played
        return [(b.dac_s if output else b.adc_s) - b.start / self.sample_rate
                for b in self.blocks if b.stamped and not b.gap and b.start >= settled]

    def _origin(self, *, output: bool, settled: int) -> float | None:
        """The stream time of frame 0 of one direction: each good callback's stamp minus its
        first frame's offset, the median over the callbacks from ``settled`` on (between gaps
        the origin is one number; a single stamp jitters with the sound server's latency
        reports, and the first callbacks of a full-duplex start can be hundreds of ms off).
        None when the host gave no stamps."""
        origins = self._origins(output=output, settled=settled)
        return statistics.median(origins) if len(origins) >= 3 else None


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
    blocks: list[Block] = []
    pos = 0
    done = threading.Event()

    def callback(indata: Any, outdata: Any, frames: int, time_info: Any, status: Any) -> None:
        nonlocal pos
        start = pos
        end = min(total, start + frames)
        count = end - start
        outdata[:count, 0] = out32[start:end]
        outdata[count:, 0] = 0.0
        recorded[start:end] = np.clip(np.round(indata[:count, 0] * 32768.0), -32768, 32767)
        gap = bool(status.input_underflow or status.input_overflow or status.output_underflow
                   or status.output_overflow)
        blocks.append(Block(start, count, float(time_info.inputBufferAdcTime),
                            float(time_info.outputBufferDacTime), gap))
        pos = end
        if on_level is not None:
            on_level(block_level_dbfs(recorded[start:end]))
        if pos >= total:
            done.set()
            raise sd.CallbackStop

    with sd.Stream(samplerate=sample_rate, channels=1, dtype="float32", device=device,
                   callback=callback) as stream:
        nominal_s = float(stream.latency[0]) + float(stream.latency[1])
        if not done.wait(timeout=total / sample_rate + STALL_MARGIN_S):
            raise StreamStalled(f"the sound system played and recorded {pos / sample_rate:.1f} s "
                               f"in {total / sample_rate + STALL_MARGIN_S:.0f} s: it stalled")
    return DuplexCapture(played, recorded, label, sample_rate, tuple(blocks), nominal_s)
