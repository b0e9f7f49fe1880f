"""How much faster than real time the room analysis runs (target: at least 500x).

Builds a 9 s capture like the onboarding check's (3 s of room noise, then 6 s of speech-like
voice over it, 48 kHz, 16-bit), then times ``probes.audio.capture.analyze_capture`` (VAD, A-weighted
noise floor, P.56, clipping, dropouts, hum, the room's sounds in the quiet phase) and each DSP
step on it. Prints the median of
repeated runs. Usage: python bench/audio_analysis.py [--repeat N]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from probes.audio import dsp as dsp  # noqa: E402
from probes.audio.capture import analyze_capture  # noqa: E402
from probes.audio.room_sounds import analyze_room  # noqa: E402

FS = 48000


def capture(seconds: float = 9.0) -> np.ndarray:
    rng = np.random.default_rng(1)
    n = int(seconds * FS)
    t = np.arange(n) / FS
    x = rng.normal(0, 10 ** (-60 / 20), n)
    f0 = 140 + 20 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(f0) / FS
    voice = sum(np.sin(k * phase) / k for k in range(1, 20)) * (np.sin(2 * np.pi * 4 * t) > -0.2)
    voice *= 10 ** (-26 / 20) / np.sqrt(np.mean(voice**2))
    x[3 * FS:] += voice[3 * FS:]
    return (np.clip(x, -1, 1 - 1 / 32768) * 32768).astype(np.int16)


def median_s(fn, repeat: int) -> float:
    fn()  # warm-up (imports, caches)
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()
    pcm = capture()
    x = pcm.astype(np.float64) / 32768
    seconds = pcm.size / FS
    print(f"machine: {platform.machine()} {platform.system()} Python {platform.python_version()}"
          f", numpy {np.__version__}")
    print(f"capture: {seconds:.1f} s at {FS} Hz; median of {args.repeat} runs")
    quiet_vad = dsp.speech_frames(x[: 3 * FS], FS)
    steps = {
        "voice activity (webrtcvad)": lambda: dsp.speech_frames(x, FS),
        "A-weighted 160 ms frames": lambda: dsp.a_weighted_frame_mean_squares(x, FS, 7680,
                                                                       hann=True),
        "P.56 active speech level": lambda: dsp.active_speech_level(x, FS),
        "clipping": lambda: dsp.clipping(x),
        "peaks (headroom)": lambda: dsp.peaks(x, FS),
        "dropouts": lambda: dsp.digital_silence_gaps(x, FS),
        "mains hum": lambda: dsp.mains_hum(x, FS),
        "room sounds (3 s quiet phase)": lambda: analyze_room(x[: 3 * FS], FS, speech=quiet_vad),
    }
    for name, fn in steps.items():
        print(f"  {name:28s} {median_s(fn, args.repeat) * 1000:7.2f} ms")
    total = median_s(lambda: analyze_capture(pcm, FS, prompted=True, room_s=3.0), args.repeat)
    print(f"whole analysis (analyze_capture) {total * 1000:7.2f} ms "
          f"= {seconds / total:.0f}x faster than real time (target >= 500x)")
    # unprompted (the monitor, --json): the room's sounds are told apart in the whole capture
    total = median_s(lambda: analyze_capture(pcm, FS), args.repeat)
    print(f"unprompted (room sounds in all)  {total * 1000:7.2f} ms "
          f"= {seconds / total:.0f}x faster than real time")


if __name__ == "__main__":
    main()
