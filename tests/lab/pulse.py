"""Lab part: a real PulseAudio server with a virtual headset whose microphone we feed (LAB.md).

``pulse_server()`` starts a private ``pulseaudio`` daemon in its own XDG_RUNTIME_DIR (parallel
sessions never meet), and tears it down. ``PulseServer.add_microphone`` loads a
``module-pipe-source`` described with the device properties a real one has (``device.bus``,
``device.form_factor``, USB ids): the agent classifies it exactly as it would a plugged-in
device. A ``MicFeed`` writer thread streams s16le mono audio into the source's FIFO in real time,
looping a background (the room) and playing programs (speech, clicks, gaps) over it on demand.
Recording the source (the agent's ``probes.audio.pulse_capture``, or sounddevice's ALSA
``pulse`` device) then returns those samples.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import tempfile
import threading
import time
import wave
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tests.lab.netns import LabError

RATE = 48000
CHUNK_S = 0.02
FIFO_BYTES = 4096           # the microphone FIFO's capacity (one page: the least Linux allows)


def require_audio_tools() -> None:
    missing = [t for t in ("pulseaudio", "pactl", "sox", "espeak-ng") if shutil.which(t) is None]
    if missing:
        raise LabError(f"audio lab tools missing: {', '.join(missing)} (scripts/install-deps.sh "
                       "test installs them)")


def sox(*args: str, timeout: float = 60) -> str:
    """Run sox; its report (stats) comes on stderr."""
    proc = subprocess.run(["sox", *args], capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise LabError(f"sox {' '.join(args)} -> {proc.returncode}: {proc.stderr.strip()}")
    return proc.stderr


def sox_rms_db(path: Path) -> float:
    """sox's reference meter: ``stats`` "RMS lev dB"."""
    for line in sox(str(path), "-n", "stats").splitlines():
        if line.startswith("RMS lev dB"):
            return float(line.split()[-1])
    raise LabError(f"sox stats gave no RMS level for {path}")


def read_wav(path: Path) -> np.ndarray:
    """Mono 16-bit samples of a WAV file, as floats in [-1, 1)."""
    with wave.open(str(path)) as w:
        if w.getsampwidth() != 2 or w.getnchannels() != 1:
            raise LabError(f"{path}: expected 16-bit mono")
        return np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(np.float64) / 32768


def write_wav(path: Path, samples: np.ndarray, rate: int = RATE) -> Path:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(to_pcm(samples).tobytes())
    return path


def to_pcm(samples: np.ndarray) -> np.ndarray:
    return np.clip(np.round(samples * 32768), -32768, 32767).astype("<i2")


@dataclass
class MicFeed:
    """Real-time writer into a pipe source's FIFO: background loop + programs played once."""

    fifo: Path
    background: np.ndarray = field(default_factory=lambda: np.zeros(RATE))
    _program: list[np.ndarray] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _bg_pos: int = 0
    error: BaseException | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"mic-feed-{self.fifo.name}",
                                        daemon=True)
        self._thread.start()

    def set_background(self, samples: np.ndarray) -> None:
        with self._lock:
            self.background, self._bg_pos = to_pcm(samples), 0

    def play(self, samples: np.ndarray, *, then: np.ndarray | None = None) -> float:
        """Play ``samples`` once from the next chunk on (then loop ``then`` if given).

        Returns the program's length in seconds."""
        with self._lock:
            self._program = [to_pcm(samples)]
            if then is not None:
                self.background, self._bg_pos = to_pcm(then), 0
        return samples.size / RATE

    def _next_chunk(self, n: int) -> bytes:
        with self._lock:
            if self._program:
                prog = self._program[0]
                chunk, rest = prog[:n], prog[n:]
                self._program = [rest] if rest.size else []
                if chunk.size == n:
                    return chunk.tobytes()
                n_more = n - chunk.size
            else:
                chunk, n_more = np.zeros(0, dtype="<i2"), n
            bg = self.background
            idx = (self._bg_pos + np.arange(n_more)) % bg.size
            self._bg_pos = int((self._bg_pos + n_more) % bg.size)
            return np.concatenate((chunk, bg[idx])).tobytes()

    def _run(self) -> None:
        try:
            fd = os.open(self.fifo, os.O_WRONLY)
            # One page of FIFO (42 ms), not Linux's 64 KB (0.7 s): the pipe source reads the FIFO
            # only while something records, so what it holds when a recording starts is what
            # was written before, a room a test has since changed. A real microphone has no
            # such past; a page of it falls inside the capture's settle time (SETTLE_S).
            fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, FIFO_BYTES)
        except OSError as exc:
            self.error = exc
            return
        n = int(RATE * CHUNK_S)
        t0 = time.monotonic()
        i = 0
        try:
            while not self._stop.is_set():
                os.write(fd, self._next_chunk(n))
                i += 1
                delay = t0 + i * CHUNK_S - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                elif delay < -0.1:
                    # The FIFO was full (nobody recording): resume at real time, without a
                    # burst of catch-up chunks that would reach a recorder faster than real time.
                    t0 -= delay
        except OSError as exc:
            if not self._stop.is_set():
                self.error = exc
        finally:
            os.close(fd)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)


@dataclass
class PulseServer:
    runtime_dir: Path
    feeds: dict[str, MicFeed] = field(default_factory=dict)

    @property
    def env(self) -> dict[str, str]:
        """Environment for any client (pactl, sounddevice, agent-kit) of this server."""
        return {**os.environ, "XDG_RUNTIME_DIR": str(self.runtime_dir),
                "PULSE_SERVER": f"unix:{self.runtime_dir}/pulse/native"}

    def pactl(self, *args: str) -> str:
        proc = subprocess.run(["pactl", *args], capture_output=True, text=True, timeout=10,
                              env=self.env)
        if proc.returncode != 0:
            raise LabError(f"pactl {' '.join(args)} -> {proc.returncode}: "
                           f"{proc.stderr.strip()}")
        return proc.stdout.strip()

    def add_microphone(self, name: str, description: str, *, bus: str | None = None,
                       form_factor: str | None = None, vendor_id: str | None = None,
                       product_id: str | None = None, extra: dict[str, str] | None = None,
                       default: bool = False) -> MicFeed:
        """A pipe source described like a real device, with its feed running."""
        fifo = self.runtime_dir / f"{name}.fifo"
        props = _props(description, bus, form_factor, vendor_id, product_id, extra)
        self.pactl("load-module", "module-pipe-source", f"source_name={name}", f"file={fifo}",
                   "format=s16le", f"rate={RATE}", "channels=1", f'source_properties="{props}"')
        feed = MicFeed(fifo)
        feed.start()
        self.feeds[name] = feed
        if default:
            self.pactl("set-default-source", name)
        return feed

    def add_speaker(self, name: str, description: str, *, bus: str | None = None,
                    form_factor: str | None = None, default: bool = False) -> None:
        props = _props(description, bus, form_factor, None, None, None)
        self.pactl("load-module", "module-null-sink", f"sink_name={name}",
                   f'sink_properties="{props}"')
        if default:
            self.pactl("set-default-sink", name)

    def set_default_source(self, name: str) -> None:
        self.pactl("set-default-source", name)


def _props(description: str, bus: str | None, form_factor: str | None, vendor_id: str | None,
           product_id: str | None, extra: dict[str, str] | None) -> str:
    items = {"device.description": description}
    if bus:
        items["device.bus"] = bus
    if form_factor:
        items["device.form_factor"] = form_factor
    if vendor_id:
        items["device.vendor.id"] = vendor_id
    if product_id:
        items["device.product.id"] = product_id
    items.update(extra or {})
    # PulseAudio's proplist syntax: key='value with spaces', inside the modarg's double quotes.
    return " ".join(f"{k}='{v}'" for k, v in items.items())


def _refresh_portaudio() -> None:
    """PortAudio lists ALSA's ``pulse`` device only if a server answered when it started."""
    import sys

    sd = sys.modules.get("sounddevice")
    if sd is not None:
        sd._terminate()
        sd._initialize()


@contextmanager
def pulse_server(*, set_process_env: bool = True) -> Iterator[PulseServer]:
    """A private PulseAudio daemon; with ``set_process_env`` this process's clients use it."""
    require_audio_tools()
    runtime = Path(tempfile.mkdtemp(prefix="agentkit-pulse-"))
    server = PulseServer(runtime)
    saved = {k: os.environ.get(k) for k in ("XDG_RUNTIME_DIR", "PULSE_SERVER")}
    proc = subprocess.run(["pulseaudio", "--daemonize=yes", "--exit-idle-time=-1", "-n",
                           "--load=module-native-protocol-unix", "--log-target=stderr"],
                          capture_output=True, text=True, timeout=30, env=server.env)
    try:
        if proc.returncode != 0:
            raise LabError(f"pulseaudio did not start: {proc.stderr.strip()[-500:]}")
        deadline = time.monotonic() + 10
        while True:
            try:
                server.pactl("info")
                break
            except LabError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        if set_process_env:
            os.environ.update({k: server.env[k] for k in ("XDG_RUNTIME_DIR", "PULSE_SERVER")})
            _refresh_portaudio()
        yield server
    finally:
        for feed in server.feeds.values():
            feed.stop()
        subprocess.run(["pulseaudio", "--kill"], capture_output=True, timeout=10, env=server.env)
        if set_process_env:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
        shutil.rmtree(runtime, ignore_errors=True)
