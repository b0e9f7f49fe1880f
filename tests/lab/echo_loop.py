"""Lab part: a desk whose speaker leaks into its microphone, by a gain and a delay the test sets.

``EchoLoop`` loads a ``module-pipe-source`` (the desk's microphone, described like a laptop's
built-in one) and feeds its FIFO from the speaker sink's monitor: ``parec`` reads what the sink
plays, a sample-exact delay line holds it back ``delay`` frames, it is scaled by ``gain_db``
and added to a looped room background, and written to the FIFO at once. The microphone is thus
paced by the sink's own clock (no second clock, no drift), and the only latency besides the set
delay is the sound server's own (the monitor's fragment and the pipe), which the test measures
independently. ``gain_db = None``: nothing leaks (a closed headset); the room stays.
"""

from __future__ import annotations

import os
import subprocess
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tests.lab.pulse import RATE, PulseServer, _props, to_pcm

FRAGMENT_MS = 5


@dataclass
class EchoLoop:
    server: PulseServer
    sink: str
    source: str
    background: np.ndarray = field(default_factory=lambda: np.zeros(RATE))
    delay: int = 0
    gain_db: float | None = None
    error: BaseException | None = None
    _line: np.ndarray = field(default_factory=lambda: np.zeros(0))
    _bg_pos: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stop: threading.Event = field(default_factory=threading.Event)
    _proc: subprocess.Popen[bytes] | None = None
    _thread: threading.Thread | None = None

    @property
    def microphone(self) -> str:
        """The source name to make the default input."""
        return self.source

    def start(self, description: str, **props: str) -> None:
        fifo = self.server.runtime_dir / f"{self.source}.fifo"
        described = _props(description, None, None, None, None, props)
        self.server.pactl("load-module", "module-pipe-source", f"source_name={self.source}",
                          f"file={fifo}", "format=s16le", f"rate={RATE}", "channels=1",
                          f'source_properties="{described}"')
        self._proc = subprocess.Popen(
            ["parec", f"--device={self.sink}.monitor", "--raw", "--format=s16le",
             f"--rate={RATE}", "--channels=1", f"--latency-msec={FRAGMENT_MS}"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=self.server.env)
        self._line = np.zeros(self.delay)
        self._thread = threading.Thread(target=self._run, args=(fifo,), daemon=True,
                                        name=f"echo-loop-{self.source}")
        self._thread.start()

    def set(self, *, delay_s: float, gain_db: float | None) -> None:
        """Leak the speaker into the microphone ``delay_s`` later, ``gain_db`` louder (None:
        not at all). Takes effect at once; the delay line is refilled with silence."""
        with self._lock:
            self.delay = int(round(delay_s * RATE))
            self.gain_db = gain_db
            self._line = np.zeros(self.delay)

    def set_background(self, samples: np.ndarray) -> None:
        with self._lock:
            self.background, self._bg_pos = np.asarray(samples, dtype=np.float64), 0

    def _mix(self, block: np.ndarray) -> np.ndarray:
        with self._lock:
            line = np.concatenate((self._line, block))
            out, self._line = line[:block.size], line[block.size:]
            bg = self.background
            idx = (self._bg_pos + np.arange(block.size)) % bg.size
            self._bg_pos = int((self._bg_pos + block.size) % bg.size)
            gain = 0.0 if self.gain_db is None else 10 ** (self.gain_db / 20)
            return gain * out + bg[idx]

    def _run(self, fifo: Path) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        try:
            fd = os.open(fifo, os.O_WRONLY)
        except OSError as exc:
            self.error = exc
            return
        src = self._proc.stdout.fileno()
        pending = b""
        try:
            while not self._stop.is_set():
                data = os.read(src, RATE * 2 * FRAGMENT_MS // 1000 * 2)
                if not data:
                    break
                data = pending + data
                usable = len(data) // 2 * 2
                pending = data[usable:]
                block = np.frombuffer(data[:usable], "<i2").astype(np.float64) / 32768
                os.write(fd, to_pcm(self._mix(block)).tobytes())
        except OSError as exc:
            if not self._stop.is_set():
                self.error = exc
        finally:
            os.close(fd)

    def stop(self) -> None:
        self._stop.set()
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
        if self._thread is not None:
            self._thread.join(timeout=2)
        if self._proc is not None and self._proc.stdout is not None:
            self._proc.stdout.close()
