"""Lab part: rooms to feed a virtual microphone, each with its truth (tests/test_room_sounds_lab.py,
bench/room_sounds.py).

Babble mixed from several espeak-ng voices (different voices, speeds and pitches, each looped
with its own pauses), scaled to a level sox's meter then reads from the file; sox's pink and
brown noise and a fan (brown noise with a 120 Hz blade hum); a door-slam train (noise bursts
with an instant attack and a 60 ms decay, 0.7-1.1 s apart) whose loudest 10 ms is computed here
with numpy; the agent's own voice at a headset's level; a quiet room. Never imports the
product.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np

from tests.lab.pulse import RATE, read_wav, sox, sox_rms_db, write_wav

LOOP_S = 12.0           # every room signal loops with this period
BABBLE_LINES = (
    ("en-us+m3", 150, 40, "I told him the parcel would come on Tuesday but it never did, so "
                          "we called the shop again and again"),
    ("en+f2", 175, 65, "Did you see the match last night? They scored twice in the last ten "
                       "minutes and the whole street was shouting"),
    ("en-gb+m7", 135, 30, "Put the kettle on, would you, and bring the biscuits from the top "
                          "shelf, the ones in the blue tin"),
    ("en-us+f4", 190, 75, "And then the weather turned, the rain came down, and everyone ran "
                          "back inside laughing and dripping wet"),
)


def espeak(d: Path, name: str, voice: str, speed: int, pitch: int, text: str) -> np.ndarray:
    raw = d / f"{name}22k.wav"
    subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-p", str(pitch), "-w", str(raw),
                    text], check=True, timeout=60, capture_output=True)
    out = d / f"{name}.wav"
    sox(str(raw), "-r", str(RATE), "-b", "16", str(out))
    return read_wav(out)


def looped(x: np.ndarray, seconds: float, offset: int = 0) -> np.ndarray:
    n = int(seconds * RATE)
    return x[(np.arange(n) + offset) % x.size]


def at_level(d: Path, name: str, x: np.ndarray, dbfs: float) -> tuple[np.ndarray, float]:
    """``x`` scaled to ``dbfs`` RMS, and the level sox's meter reads from the file."""
    rms = float(np.sqrt(np.mean(x * x)))
    y = x * (10 ** (dbfs / 20) / rms)
    return y, sox_rms_db(write_wav(d / f"{name}.wav", y))


def sox_noise(d: Path, name: str, color: str, dbfs: float) -> tuple[np.ndarray, float]:
    """LOOP_S of sox's ``color`` noise at ``dbfs`` RMS, and the level sox reads from the file."""
    path = d / f"{name}_raw.wav"
    sox("-n", "-r", str(RATE), "-c", "1", "-b", "16", str(path), "synth", str(LOOP_S), color,
        "vol", "0.3")
    return at_level(d, name, read_wav(path), dbfs)


def peak_10ms_dbfs(x: np.ndarray) -> float:
    """The loudest 10 ms (RMS, any alignment in 1 ms steps): the bangs' truth, from numpy."""
    sq = np.concatenate(([0.0], np.cumsum(x * x)))
    n = RATE // 100
    win = (sq[n::48] - sq[:-n:48][: sq[n::48].size]) / n
    return 10 * float(np.log10(win.max()))


class RoomSignals:
    """The rooms fed to the microphone, each LOOP_S long, with their truths."""

    def __init__(self, d: Path) -> None:
        self.floor, self.floor_db = sox_noise(d, "floor", "pinknoise", -70.0)
        voices = [espeak(d, f"voice{i}", *line) for i, line in enumerate(BABBLE_LINES)]
        # babble: four voices, each looped with its own pauses, started at different points
        mix = sum(looped(v, LOOP_S, offset=i * RATE * 7 // 5) for i, v in enumerate(voices))
        babble, self.babble_db = at_level(d, "babble", mix, -45.0)
        self.babble = babble + self.floor
        # a single talker across the room (a TV, a family member), pauses included
        talker, self.talker_db = at_level(d, "talker", looped(voices[1], LOOP_S), -50.0)
        self.talker = talker + self.floor
        self.pink, self.pink_db = sox_noise(d, "pink", "pinknoise", -42.0)
        self.brown, self.brown_db = sox_noise(d, "brown", "brownnoise", -30.0)
        # a fan: its rumble (brown noise) and its blade hum (120 Hz)
        rumble, _ = sox_noise(d, "rumble", "brownnoise", -32.0)
        hum_file = d / "hum.wav"
        sox("-n", "-r", str(RATE), "-c", "1", "-b", "16", str(hum_file), "synth", str(LOOP_S),
            "sine", "120", "vol", "0.5")
        hum, _ = at_level(d, "hum", read_wav(hum_file), -40.0)
        self.fan, self.fan_db = at_level(d, "fan", rumble + hum, -31.0)
        # far babble over a fan-like hiss
        self.hiss, self.hiss_db = sox_noise(d, "hiss", "pinknoise", -50.0)
        far, self.far_babble_db = at_level(d, "far_babble", mix, -48.0)
        self.fan_and_far_babble = self.hiss + far
        self.slams, self.slam_peaks_db = self._slams()
        own, self.own_db = at_level(d, "own", looped(voices[0], LOOP_S), -26.0)
        self.own_speech = own + self.floor

    def _slams(self) -> tuple[np.ndarray, list[float]]:
        """A door-slam train: brown-ish noise bursts, instant attack, 60 ms decay, every
        0.7-1.1 s, over the quiet floor."""
        rng = np.random.default_rng(20)
        out = self.floor.copy()
        burst_n = int(0.5 * RATE)
        t = np.arange(burst_n) / RATE
        at, peaks = 0.2, []
        while at + 0.5 < LOOP_S:
            white = rng.normal(0.0, 1.0, burst_n)
            thud = np.cumsum(white) - np.convolve(np.cumsum(white), np.ones(480) / 480, "same")
            burst = thud / np.sqrt(np.mean(thud[:480] ** 2)) * 0.1 * np.exp(-t / 0.06)
            i = int(at * RATE)
            out[i:i + burst_n] += burst
            peaks.append(peak_10ms_dbfs(out[i:i + burst_n]))
            at += rng.uniform(0.7, 1.1)
        return out, peaks
