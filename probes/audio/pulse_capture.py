"""The call input through the sound server's own client library (PulseAudio or PipeWire).

On Linux the microphone calls use is the server's default source. Recording it through
PortAudio goes PortAudio -> ALSA's ``pulse`` plugin -> libpulse, and PortAudio's ALSA back-end
opens every PCM the ALSA configuration defines while it lists devices, so the plugins of
``/usr/share/alsa/alsa.conf.d`` (a52 with libavcodec, jack, speex, upmix...) stay mapped in a
long-lived process: about 14 MB of the monitor's resident size (docs/BENCHMARKS.md, "Monitor
cost"). Here the samples come from the server's simple API (libpulse-simple, through the
``pasimple`` binding): one record stream on the default source, s16le mono, nothing else
loaded. pipewire-pulse serves the same API.

What the simple API does not give: input overflows. A record stream's server-side buffer is
made as long as the server allows (``maxlength`` -1: 4 MB, over 40 s of 48 kHz mono), far
longer than any capture here, so the server never has to drop samples for a slow reader; gaps
inside the source itself still show as digital silence (``dsp.digital_silence_gaps``).

Privacy: the samples are read into this process's memory only; nothing is written or logged.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

APP_NAME = "agent-kit"
STREAM_NAME = "microphone check"
SERVER_MAX = 0xFFFFFFFF      # (uint32_t) -1 in pa_buffer_attr: the server's maximum / default
STALL_MARGIN_S = 5.0         # a capture that has not delivered its samples by then has stalled


@dataclass(frozen=True)
class PulseSource:
    """A source of the PulseAudio/PipeWire server; ``name`` None: the server's default source
    (the one softphones record from)."""

    name: str | None = None


DEFAULT_SOURCE = PulseSource()


def _open(source: PulseSource, sample_rate: int, block_frames: int) -> Any:
    """A record stream (s16le mono) on ``source``, delivering ``block_frames`` per fragment.
    Raises ``pasimple.PaSimpleError`` when the library or the server is not there."""
    import pasimple  # type: ignore[import-untyped]

    return pasimple.PaSimple(pasimple.PA_STREAM_RECORD, pasimple.PA_SAMPLE_S16LE, 1, sample_rate,
                             app_name=APP_NAME, stream_name=STREAM_NAME,
                             device_name=source.name, maxlength=SERVER_MAX,
                             fragsize=2 * block_frames)


# A sound server with its own client library only on Linux (PulseAudio, or PipeWire's
# pipewire-pulse); elsewhere the microphone is PortAudio's. Picked once.
if sys.platform.startswith("linux"):
    def server_answers() -> bool:
        """A PulseAudio/PipeWire server takes a record stream from this process
        (libpulse-simple loads, a server is configured and accepts the connection): open
        one and close it again."""
        try:
            import pasimple  # type: ignore[import-untyped]
        except ImportError:
            return False
        try:
            _open(DEFAULT_SOURCE, 48000, 2400).close()
        except (pasimple.PaSimpleError, OSError):
            return False
        return True

else:
    def server_answers() -> bool:
        """No sound server client library here: PortAudio records the microphone."""
        return False


def record(seconds: float, *, source: PulseSource = DEFAULT_SOURCE, sample_rate: int = 48000,
           block_frames: int = 4800, on_mark: Callable[[str], None] | None = None,
           marks: tuple[tuple[float, str], ...] = (),
           on_block: Callable[[NDArray[np.int16]], None] | None = None) -> NDArray[np.int16]:
    """Mono int16 samples for ``seconds`` from ``source``.

    A reader thread reads ``block_frames`` at a time (``pa_simple_read`` blocks until a block
    is there) and hands each block to ``on_block`` (on that thread: it must be quick);
    meanwhile this thread calls ``on_mark(text)`` at each (time since the stream opened,
    text) of ``marks``. Raises RuntimeError when the source stalls (the reader thread is then
    left to end with its blocked read, and closes the stream itself) or fails.
    """
    import numpy as np

    wanted = int(seconds * sample_rate)
    stream = _open(source, sample_rate, block_frames)
    chunks: list[NDArray[np.int16]] = []
    got = 0
    failure: list[BaseException] = []
    done = threading.Event()
    abandon = threading.Event()

    def read_blocks() -> None:
        nonlocal got
        try:
            while got < wanted and not abandon.is_set():
                block = np.frombuffer(stream.read(2 * min(block_frames, wanted - got)),
                                      dtype="<i2")
                chunks.append(block)
                got += block.size
                if on_block is not None:
                    on_block(block)
        except Exception as exc:  # noqa: BLE001 - handed to the waiting thread
            failure.append(exc)
        finally:
            stream.close()
            done.set()

    reader = threading.Thread(target=read_blocks, name="pulse-capture", daemon=True)
    reader.start()
    t0 = time.monotonic()
    for at, text in sorted(marks):
        delay = t0 + at - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        if on_mark is not None:
            on_mark(text)
    if not done.wait(timeout=seconds + STALL_MARGIN_S):
        abandon.set()
        raise RuntimeError(f"the microphone delivered {got / sample_rate:.1f} s of audio in "
                           f"{seconds + STALL_MARGIN_S:.0f} s: the device stalled")
    if failure:
        raise RuntimeError(str(failure[0])) from failure[0]
    data = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int16)
    chunks.clear()
    return data
