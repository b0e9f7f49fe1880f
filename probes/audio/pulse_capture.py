"""The call input through the sound server's own client (PulseAudio or PipeWire), in a child.

On Linux the microphone calls use is the server's default source. Recording it through
PortAudio goes PortAudio -> ALSA's ``pulse`` plugin -> libpulse, and PortAudio's ALSA back-end
opens every PCM the ALSA configuration defines while it lists devices, so the plugins of
``/usr/share/alsa/alsa.conf.d`` (a52 with libavcodec, jack, speex, upmix...) stay mapped in a
long-lived process: about 14 MB of the monitor's resident size (docs/BENCHMARKS.md, "Monitor
cost"). libpulse itself is lighter but not light: libpulse-simple maps about 30 libraries
(libsndfile with its codecs, X11, systemd, gcrypt: 2.6 MB resident on load) and a connection
maps the server's memory pool. So the samples come from ``parec``, the sound server's own
recording client (pulseaudio-utils, the package that brings ``pactl``, which the device list
already uses; pipewire-pulse serves it too), as raw s16le mono on a pipe: everything libpulse
loads lives in that short-lived child, and this process only reads bytes.

What parec does not give: input overflows. It reads the server's record stream as fast as the
server delivers, and this process reads the pipe as fast as parec writes (a 64 KB pipe holds
0.7 s), so nothing is dropped for a slow reader; gaps inside the source itself still show as
digital silence (``dsp.digital_silence_gaps``).

Privacy: the samples pass from the child to this process through a pipe (kernel memory) and
are kept in this process's memory only; nothing is written or logged (parec writes raw audio
to its standard output only).
"""

from __future__ import annotations

import os
import select
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

CLIENT_NAME = "agent-kit"
STREAM_NAME = "microphone check"
STALL_MARGIN_S = 5.0         # a capture that has not delivered its samples by then has stalled
# A new record stream starts with a hole (the server's read index before the source's first
# samples reach the stream), and parec writes a hole as silence (pacat.c: "If there is a hole
# in the stream, we generate silence"): 80 ms of exact zeros here, before the first sample.
# Those zeros are no sound, and they would pass for a dropout or a silent stretch of the room
# (the quietest frames of a loud room read as digital silence, so its noise floor reads far
# too low): they are dropped, up to this long. A live microphone never gives exact zeros for
# milliseconds (``dsp.digital_silence_gaps``); a muted one gives nothing else, and after this
# bound its zeros are the capture (a silent microphone).
START_HOLE_MAX_S = 0.5
CHECK_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class PulseSource:
    """A source of the PulseAudio/PipeWire server; ``name`` None: the server's default source
    (the one softphones record from)."""

    name: str | None = None


DEFAULT_SOURCE = PulseSource()


def _env() -> dict[str, str]:
    return {**os.environ, "LC_ALL": "C"}   # parec's and pactl's messages untranslated


# A sound server with its own recording client only on Linux (PulseAudio, or PipeWire's
# pipewire-pulse); elsewhere the microphone is PortAudio's. Picked once.
if sys.platform.startswith("linux"):
    def server_answers() -> bool:
        """``parec`` is installed and a PulseAudio/PipeWire server answers (``pactl info``)."""
        if shutil.which("parec") is None or shutil.which("pactl") is None:
            return False
        try:
            return subprocess.run(["pactl", "info"], capture_output=True, env=_env(),
                                  timeout=CHECK_TIMEOUT_S).returncode == 0
        except (OSError, subprocess.TimeoutExpired):
            return False

else:
    def server_answers() -> bool:
        """No sound server client here: PortAudio records the microphone."""
        return False


def _command(source: PulseSource, sample_rate: int, block_frames: int) -> list[str]:
    latency_ms = max(10, 1000 * block_frames // sample_rate)
    return ["parec", "--raw", "--format=s16le", f"--rate={sample_rate}", "--channels=1",
            f"--latency-msec={latency_ms}", f"--client-name={CLIENT_NAME}",
            f"--stream-name={STREAM_NAME}",
            *([f"--device={source.name}"] if source.name else [])]


def record(seconds: float, *, source: PulseSource = DEFAULT_SOURCE, sample_rate: int = 48000,
           block_frames: int = 4800, on_mark: Callable[[str], None] | None = None,
           marks: tuple[tuple[float, str], ...] = (),
           on_block: Callable[[NDArray[np.int16]], None] | None = None) -> NDArray[np.int16]:
    """Mono int16 samples for ``seconds`` from ``source``, from its first sample on.

    A reader thread reads the child's pipe (``block_frames`` at most per read) and hands each
    block to ``on_block`` (on that thread: it must be quick); meanwhile this thread calls
    ``on_mark(text)`` at each (time since the first samples arrived, text) of ``marks``.
    The stream's start hole is dropped (``START_HOLE_MAX_S``). Raises RuntimeError when the
    source stalls or the child fails.
    """
    import numpy as np

    wanted = int(seconds * sample_rate)
    hole_max = int(START_HOLE_MAX_S * sample_rate)
    samples = np.empty(wanted, dtype=np.int16)
    filled = 0
    failure: list[BaseException] = []
    started, done = threading.Event(), threading.Event()
    proc = subprocess.Popen(_command(source, sample_rate, block_frames), stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env())
    assert proc.stdout is not None
    pipe = proc.stdout.fileno()
    deadline = time.monotonic() + seconds + START_HOLE_MAX_S + STALL_MARGIN_S

    def read_blocks() -> None:
        nonlocal filled
        pending = b""          # an odd byte a read split off a sample
        skipped = 0            # zero samples of the start hole dropped so far
        in_hole = True
        try:
            while filled < wanted:
                if not select.select([pipe], [], [], max(0.0, deadline - time.monotonic()))[0]:
                    return                                   # stalled: the waiter says so
                chunk = pending + os.read(pipe, 2 * block_frames)
                if len(chunk) == len(pending):
                    return                                   # parec ended early
                usable = len(chunk) // 2 * 2
                block, pending = np.frombuffer(chunk[:usable], dtype="<i2"), chunk[usable:]
                if in_hole:
                    sound = np.flatnonzero(block)
                    lead = int(sound[0]) if sound.size else block.size
                    lead = min(lead, max(0, hole_max - skipped))
                    skipped += lead
                    block = block[lead:]
                    # the first sample, or zeros past the bound: a muted microphone's silence
                    in_hole = not (sound.size or skipped >= hole_max)
                    if block.size == 0:
                        continue
                take = min(block.size, wanted - filled)
                samples[filled:filled + take] = block[:take]
                filled += take
                started.set()
                if on_block is not None:
                    on_block(samples[filled - take:filled])
        except Exception as exc:  # noqa: BLE001 - handed to the waiting thread
            failure.append(exc)
        finally:
            started.set()
            done.set()

    reader = threading.Thread(target=read_blocks, name="pulse-capture", daemon=True)
    reader.start()
    try:
        started.wait(timeout=max(0.0, deadline - time.monotonic()))
        show_marks(marks, on_mark)
        done.wait(timeout=max(0.0, deadline - time.monotonic()) + 1.0)
    finally:
        proc.terminate()
        try:
            _, err = proc.communicate(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
    if failure:
        raise RuntimeError(str(failure[0])) from failure[0]
    if filled < wanted:
        reason = err.decode(errors="replace").strip().splitlines()
        if reason and proc.returncode not in (0, -15):
            raise RuntimeError(f"parec: {reason[-1]}")
        raise RuntimeError(f"the microphone delivered {filled / sample_rate:.1f} s of audio in "
                           f"{seconds + STALL_MARGIN_S:.0f} s: the device stalled")
    return samples


def show_marks(marks: Sequence[tuple[float, str]],
               on_mark: Callable[[str], None] | None) -> None:
    """Hand each ``(seconds after now, text)`` mark to ``on_mark`` at its time, in order,
    while a recording runs (the guided capture's "now read aloud"); returns after the last."""
    t0 = time.monotonic()
    for at, text in sorted(marks):
        delay = t0 + at - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        if on_mark is not None:
            on_mark(text)
