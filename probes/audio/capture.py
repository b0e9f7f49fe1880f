"""The room and the microphone: capture a short guided window from the call input and measure it.

``measure_audio`` records ``quiet_s`` seconds (the person stays quiet) then ``speech_s`` seconds
(the person reads a sentence aloud) from the device calls will use: on Linux PulseAudio's/
PipeWire's default source, through the server's own client library
(``probes.audio.pulse_capture``); elsewhere PortAudio's default input (sounddevice).
``analyze_capture`` turns the samples into numbers (``probes.audio.dsp``): A-weighted noise floor
in the frames without speech, P.56 active speech level, SNR, clipping, dropouts, mains hum, and
how far up the spectrum the voice reaches (``probes.audio.voice_band``).
what the room sent while the agent was silent (``probes.audio.room_sounds``: steady noise, other
voices, bangs; in the guided quiet phase, or the whole of an unprompted capture).

Privacy: the samples live in this process's memory only, for the few seconds of the analysis;
nothing is written, logged or sent. Only the numbers leave this module.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from probes.audio.dsp import Dropout
from probes.audio.room_sounds import RoomSounds
from probes.audio.voice_band import VoiceBand

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

SAMPLE_RATE = 48000
SETTLE_S = 0.2           # dropped at the start: devices click and pipes fill when a stream opens
MIN_NOISE_S = 0.5        # non-speech time needed to trust the VAD's split
MIN_SPEECH_S = 1.0       # speech time needed to call it speech
SPEECH_OVER_NOISE_DB = 6.0  # and the P.56 level must stand this far above the noise
# The VAD hears the capture raised so its room sits at VAD_FLOOR_DBFS (``_vad_gain_db``).
# Chosen from a sweep of espeak-ng speech over pink-noise rooms: raised to -45 dBFS, the VAD
# found a -58 dBFS sentence over every room of -70 dBFS and below and no speech (<= 0.1 s) in
# rooms alone from -45 to -95 dBFS; raised to -60 it missed that sentence over -70 (0.6 s).
# Steady noise louder than about -30 dBFS is what the VAD takes for speech (dsp), 15 dB away.
# At most VAD_MAX_GAIN_DB (16-bit samples hold nothing useful further down), and never with
# the loudest 20 ms frame above VAD_LOUDEST_FRAME_DBFS (a normal voice is not pushed to clip).
VAD_FLOOR_DBFS = -45.0
VAD_MAX_GAIN_DB = 40.0
VAD_LOUDEST_FRAME_DBFS = -20.0
LONG_FRAME_RUN = 8       # 8 x 20 ms = 160 ms frames for the A-weighted floor
LONG_FRAMES_MIN = 3      # at least 0.48 s of them, else the 20 ms frames
# What an agent says on a call, about six seconds of speech (speech_s): a pangram reads like a
# typing test and makes people hurry or stumble.
SENTENCE = ("Good morning, and thank you for calling. How can I help you today? Let me look "
            "that up for you.")
LEVEL_FLOOR_DBFS = -100.0   # what a block of digital silence reports to ``on_level``
PULSE_BLOCKS_PER_S = 5      # sound-server reads without a meter: 200 ms (fewer wake-ups)


@dataclass(frozen=True)
class AudioReading:
    """What the microphone heard, as numbers only. ``problem`` set: nothing could be measured."""

    device: str | None
    sample_rate: int
    captured_s: float
    prompted: bool                   # a person was asked to stay quiet, then to speak
    problem: str | None = None
    silent: bool = False             # every sample is digital zero: muted or dead microphone
    vad: str = ""                    # "webrtcvad" or "energy"
    noise_dbfs_a: float | None = None   # A-weighted noise floor, non-speech frames
    noise_dbfs: float | None = None     # same frames, unweighted (the SNR's reference)
    noise_method: str = ""           # "vad": frames without speech; "quietest": quietest fifth
    noise_s: float = 0.0
    speech_s: float = 0.0            # time the VAD called speech
    speech_heard: bool = False
    speech_level_dbfs: float | None = None  # P.56 active speech level
    speech_activity: float | None = None    # P.56 activity factor, 0..1
    snr_db: float | None = None
    clipping_pct: float = 0.0
    clipped_runs: int = 0
    dropouts: tuple[Dropout, ...] = ()
    overflows: int = 0               # input overflows reported by the audio driver
    hum_dbfs: float | None = None
    hum_hz: int | None = None
    peak_dbfs: float | None = None      # sample peak of the speech heard (the voice's headroom)
    near_full_scale_ms: float = 0.0     # its time within 1 dB of full scale (dsp.peaks)
    vad_gain_db: float = 0.0            # the gain the VAD heard the capture with
    voice_band: VoiceBand | None = None  # the voice's upper edge and class (speech heard only)
    room: RoomSounds | None = None   # what the room sent while the agent was silent
    # unprompted: the room in the longest stretch without the VAD's speech (the wearer silent
    # between phrases), when the capture holds speech; the judge takes it when ``room`` is the
    # wearer talking
    room_between_speech: RoomSounds | None = None

    @property
    def dropout_count(self) -> int:
        return len(self.dropouts) + self.overflows


def analyze_capture(samples: NDArray[np.int16] | NDArray[np.float64], sample_rate: int, *,
                    overflows: int = 0, device: str | None = None,
                    prompted: bool = False, room_s: float | None = None) -> AudioReading:
    """Numbers from a mono capture (int16, or floats in [-1, 1)). Pure: no I/O.

    ``room_s``: the first seconds in which the agent was asked to stay quiet (the guided quiet
    phase): the room's sounds (``probes.audio.room_sounds``) are told apart there only; None
    (an unprompted capture): in the whole capture."""
    import numpy as np

    from probes.audio import dsp as dsp
    from probes.audio.room_sounds import analyze_room
    from probes.audio.voice_band import measure_voice_band

    raw = np.asarray(samples)
    scale = 1.0 / 32768.0 if raw.dtype == np.int16 else 1.0
    x = np.asarray(raw, dtype=np.float64).ravel() * scale
    base: dict[str, Any] = dict(device=device, sample_rate=sample_rate,
                                captured_s=x.size / sample_rate, prompted=prompted,
                                overflows=overflows)
    frame_len = sample_rate * dsp.VAD_FRAME_MS // 1000
    if x.size < frame_len * 50:
        return AudioReading(**base, problem="less than a second of audio was captured")
    clip = dsp.clipping(x)
    base.update(clipping_pct=clip.percent, clipped_runs=clip.runs,
                dropouts=dsp.digital_silence_gaps(x, sample_rate))
    if not np.any(x):
        return AudioReading(**base, silent=True)

    power = dsp.frame_mean_squares(x, frame_len)
    vad_gain_db = _vad_gain_db(power)
    speech, vad_name = dsp.speech_frames(x * 10.0 ** (vad_gain_db / 20.0), sample_rate)
    # The room's sounds are told apart on the VAD's frames of the capture as recorded: raised,
    # a fan or hiss can pass for speech and hide the pauses between the wearer's phrases
    # (without a gain the two are the same frames)
    room_speech, room_vad = (speech, vad_name) if vad_gain_db == 0 else \
        dsp.speech_frames(x, sample_rate)
    room_n = min(x.size, int(room_s * sample_rate)) if room_s else x.size
    base["room"] = analyze_room(x[:room_n], sample_rate,
                                speech=(room_speech[: room_n // frame_len], room_vad))
    if not room_s and room_speech.any():
        base["room_between_speech"] = _room_between_speech(x, sample_rate, room_speech,
                                                           room_vad)
    n = min(speech.size, power.size)
    speech, power = speech[:n], power[:n]
    frame_s = dsp.VAD_FRAME_MS / 1000
    # Keep 40 ms around speech out of the noise estimate (onsets, breaths, VAD latency).
    near_speech = speech.copy()
    for shift in (1, 2):
        near_speech[shift:] |= speech[:-shift]
        near_speech[:-shift] |= speech[shift:]
    quiet = ~near_speech
    if quiet.sum() * frame_s >= MIN_NOISE_S:
        method, noise_sel = "vad", quiet
    else:  # speech (or loud steady noise) everywhere: minimum statistics on the quietest fifth
        # (on steady noise this reads 1-2 dB below the true level: lenient, never alarmist)
        order = np.argsort(power)
        noise_sel = np.zeros(n, dtype=bool)
        noise_sel[order[: max(1, n // 5)]] = True
        method = "quietest"
    noise = dsp.power_db(float(power[noise_sel].mean()))
    noise_a = _a_weighted_floor(x, sample_rate, noise_sel, frame_len,
                                quietest=method == "quietest")

    active = dsp.active_speech_level(x, sample_rate)
    speech_s = float(speech.sum()) * frame_s
    heard = (speech_s >= MIN_SPEECH_S and active.level_dbfs > dsp.LEVEL_FLOOR_DBFS
             and active.level_dbfs - noise >= SPEECH_OVER_NOISE_DB)

    # Hum is steady: measure it where nobody speaks when there is enough such time.
    hum_src = x
    if method == "vad":
        hum_src = dsp.frames(x, frame_len)[:n][noise_sel].ravel()
        if hum_src.size < sample_rate * 2:
            hum_src = x
    hum = dsp.mains_hum(hum_src, sample_rate)
    # The voice's headroom: peaks of the frames around speech only (a door slam in the quiet
    # phase is not the voice). 20 ms frames are whole 1 ms blocks, so joining them keeps the
    # blocks aligned.
    voice = (dsp.peaks(dsp.frames(x, frame_len)[:n][near_speech].ravel(), sample_rate)
             if heard else None)
    band = measure_voice_band(x, sample_rate, frame_len, speech, noise_sel) if heard else None
    return AudioReading(
        **base, vad=vad_name, noise_dbfs_a=noise_a, noise_dbfs=noise, noise_method=method,
        noise_s=float(noise_sel.sum()) * frame_s, speech_s=speech_s, speech_heard=heard,
        speech_level_dbfs=active.level_dbfs if heard else None,
        speech_activity=active.activity if heard else None,
        snr_db=active.level_dbfs - noise if heard else None,
        hum_dbfs=hum.level_dbfs, hum_hz=hum.mains_hz,
        peak_dbfs=voice.peak_dbfs if voice is not None else None,
        near_full_scale_ms=voice.near_full_scale_ms if voice is not None else 0.0,
        vad_gain_db=round(vad_gain_db, 1), voice_band=band)


def _vad_gain_db(power: NDArray[np.float64]) -> float:
    """The gain the VAD hears the capture with: the room's floor brought up to
    ``VAD_FLOOR_DBFS``, never lowered, at most ``VAD_MAX_GAIN_DB``, and never so much that the
    loudest 20 ms frame passes ``VAD_LOUDEST_FRAME_DBFS``.

    The WebRTC VAD judges absolute levels as well as spectra: in the lab it found no speech in
    espeak-ng speech at -58 dBFS whatever the room under it (-61, -70 or -82 dBFS), and only
    part of it at -52, while it found 4 s of the same sentence at -26. A microphone turned down
    lowers the voice and the room together, so the VAD is given the capture as if the input
    volume were normal: a quiet talker is then heard, and
    judged too quiet, instead of "no speech heard"; a silent room stays a quiet room. The
    measurement itself (levels, floor) is taken on the samples as recorded.
    """
    import numpy as np

    from probes.audio import dsp as dsp

    if power.size == 0:
        return 0.0
    ordered = np.sort(power)
    floor = dsp.power_db(float(ordered[: max(1, power.size // 5)].mean()))
    loudest = dsp.power_db(float(ordered[-1]))
    gain = min(VAD_FLOOR_DBFS - floor, VAD_MAX_GAIN_DB, VAD_LOUDEST_FRAME_DBFS - loudest)
    return max(0.0, gain)


BETWEEN_SPEECH_PAD = 10    # 20 ms frames (200 ms, P.56's hangover) kept clear of speech


def _room_between_speech(x: NDArray[np.float64], sample_rate: int, speech: NDArray[np.bool_],
                         vad_name: str) -> RoomSounds | None:
    """The room in the longest stretch the VAD (aggressive mode: it flags a headset wearer's
    speech, rarely far voices) calls free of speech, 200 ms clear of it; None under 1 s."""
    import numpy as np

    from probes.audio import dsp as dsp
    from probes.audio.room_sounds import analyze_room

    busy = speech.copy()
    for shift in range(1, BETWEEN_SPEECH_PAD + 1):
        busy[shift:] |= speech[:-shift]
        busy[:-shift] |= speech[shift:]
    free = np.flatnonzero(~busy)
    if free.size == 0:
        return None
    breaks = np.flatnonzero(np.diff(free) != 1) + 1
    starts = np.concatenate(([0], breaks))
    ends = np.concatenate((breaks, [free.size]))
    longest = int(np.argmax(ends - starts))
    first, count = int(free[starts[longest]]), int(ends[longest] - starts[longest])
    frame_len = sample_rate * dsp.VAD_FRAME_MS // 1000
    return analyze_room(x[first * frame_len:(first + count) * frame_len], sample_rate,
                        speech=(speech[first:first + count], vad_name))


def _a_weighted_floor(x: NDArray[np.float64], sample_rate: int, noise_frames: NDArray[np.bool_],
                      frame_len: int, *, quietest: bool = False) -> float:
    """A-weighted level of the noise frames, from Hann-windowed long frames where possible.

    20 ms frames let low rumble leak into bins A-weighting favours (``audio_dsp``); so the
    floor is taken on 160 ms frames made entirely of noise frames, when at least
    ``LONG_FRAMES_MIN`` of them exist, else on the 20 ms frames themselves. ``quietest``:
    the VAD found no room to measure, so the quietest fifth of the long frames stands in.
    """
    import numpy as np

    from probes.audio import dsp as dsp

    n = noise_frames.size // LONG_FRAME_RUN * LONG_FRAME_RUN
    whole = noise_frames[:n].reshape(-1, LONG_FRAME_RUN).all(axis=1)
    if whole.sum() >= LONG_FRAMES_MIN or (quietest and whole.size >= 5 * LONG_FRAMES_MIN):
        long_a = dsp.a_weighted_frame_mean_squares(x[: n * frame_len], sample_rate,
                                                   frame_len * LONG_FRAME_RUN, hann=True)
        if quietest:  # minimum statistics on the long frames themselves
            return dsp.power_db(float(np.sort(long_a)[: max(1, long_a.size // 5)].mean()))
        return dsp.power_db(float(long_a[: whole.size][whole].mean()))
    power_a = dsp.a_weighted_frame_mean_squares(x, sample_rate, frame_len)[: noise_frames.size]
    return dsp.power_db(float(power_a[noise_frames].mean()))


PULSE_LABEL = "pulse (the system's default source)"


def call_input_device() -> tuple[Any, str]:
    """(device, label) of the input calls use, for ``record``.

    Linux with a PulseAudio/PipeWire server that answers: its default source (the one
    softphones use), recorded through the server's own client library
    (``probes.audio.pulse_capture``), so PortAudio and the ALSA plugins it maps are never
    loaded. Elsewhere, and on Linux when no server answers: sounddevice/PortAudio, on Linux
    its ALSA ``pulse`` device when it lists one, else the default input.
    """
    from probes.audio import pulse_capture

    if pulse_capture.server_answers():
        return pulse_capture.DEFAULT_SOURCE, PULSE_LABEL
    import sounddevice as sd  # type: ignore[import-untyped]

    devices = sd.query_devices()
    for index, dev in enumerate(devices):
        if dev["name"] == "pulse" and dev["max_input_channels"] > 0:
            return index, PULSE_LABEL
    default_in = sd.default.device[0]
    if default_in is None or default_in < 0:
        raise RuntimeError("no microphone: the system has no default input device")
    return default_in, str(sd.query_devices(default_in)["name"])


def block_level_dbfs(block: NDArray[np.int16]) -> float:
    """RMS level of one block of int16 samples in dBFS (0 dBFS = a full-scale sine's RMS + 3 dB,
    i.e. the plain RMS against 32768); ``LEVEL_FLOOR_DBFS`` for digital silence."""
    import numpy as np

    if block.size == 0:
        return LEVEL_FLOOR_DBFS
    rms = float(np.sqrt(np.mean(np.square(block, dtype=np.float64)))) / 32768.0
    return max(LEVEL_FLOOR_DBFS, 20.0 * float(np.log10(rms))) if rms > 0 else LEVEL_FLOOR_DBFS


def record(seconds: float, *, on_mark: Callable[[str], None] | None = None,
           marks: tuple[tuple[float, str], ...] = (), device: Any = None,
           sample_rate: int = SAMPLE_RATE,
           on_level: Callable[[float], None] | None = None) -> tuple[NDArray[np.int16], int]:
    """Mono int16 samples for ``seconds`` from ``device`` (``call_input_device``), and the
    number of input overflows.

    ``on_mark(text)`` is called at each (time, text) of ``marks`` while recording, so prompts
    stay in step with the stream. ``on_level(dbfs)`` hears each block's level (about every
    50 ms) for a live meter: a number only, called on the audio thread, so it must be quick.
    The samples are kept in memory only. A ``pulse_capture.PulseSource`` is recorded through
    the sound server's client library (which reports no overflows: 0, see there), anything
    else through sounddevice.
    """
    from probes.audio import pulse_capture

    # 50 ms blocks: a level meter that moves smoothly, few enough wake-ups to stay cheap
    meter_block = sample_rate // 20
    if isinstance(device, pulse_capture.PulseSource):
        on_block = None if on_level is None else (
            lambda block: on_level(block_level_dbfs(block)))
        samples = pulse_capture.record(
            seconds, source=device, sample_rate=sample_rate, on_mark=on_mark, marks=marks,
            on_block=on_block, block_frames=meter_block if on_level is not None
            else sample_rate // PULSE_BLOCKS_PER_S)
        return samples, 0
    return _record_portaudio(seconds, on_mark=on_mark, marks=marks, device=device,
                             sample_rate=sample_rate, on_level=on_level,
                             blocksize=meter_block if on_level is not None else 0)


def _record_portaudio(seconds: float, *, on_mark: Callable[[str], None] | None,
                      marks: tuple[tuple[float, str], ...], device: Any, sample_rate: int,
                      on_level: Callable[[float], None] | None,
                      blocksize: int) -> tuple[NDArray[np.int16], int]:
    """``record`` through sounddevice/PortAudio (Windows, macOS, Linux without a sound
    server): a callback stream, with the driver's input overflows counted."""
    import numpy as np
    from probes.audio import pulse_capture
    import sounddevice as sd

    chunks: list[NDArray[np.int16]] = []
    overflows = 0
    lock = threading.Lock()
    wanted = int(seconds * sample_rate)
    got = 0
    done = threading.Event()

    def callback(indata: Any, frames: int, _time: Any, status: Any) -> None:
        nonlocal overflows, got
        with lock:
            if status.input_overflow:
                overflows += 1
            chunks.append(indata[:, 0].copy())
            got += frames
            if got >= wanted:
                done.set()
        if on_level is not None:
            on_level(block_level_dbfs(indata[:, 0]))

    with sd.InputStream(samplerate=sample_rate, channels=1, dtype="int16", device=device,
                        blocksize=blocksize, callback=callback):
        pulse_capture.show_marks(marks, on_mark)
        if not done.wait(timeout=seconds + 5.0):
            raise RuntimeError(f"the microphone delivered {got / sample_rate:.1f} s of audio in "
                               f"{seconds + 5:.0f} s: the device stalled")
    with lock:
        data = np.concatenate(chunks)[:wanted] if chunks else np.zeros(0, dtype=np.int16)
        chunks.clear()
    return data, overflows


def measure_audio(*, quiet_s: float = 3.0, speech_s: float = 6.0, interactive: bool = False,
                  prompt: Callable[[str], None] | None = None,
                  quiet_text: str = "Please stay quiet for {seconds:g} seconds...",
                  speech_text: str = "Now read this sentence aloud: \"{sentence}\"",
                  sentence: str = SENTENCE, device_label: str | None = None,
                  on_phase: Callable[[str, float], None] | None = None,
                  on_level: Callable[[float], None] | None = None) -> AudioReading:
    """Capture the guided window from the call input and analyse it.

    Interactive: ``prompt`` shows "stay quiet", then the sentence to read, in step with the
    recording; ``on_phase(text, seconds)``, when given, is called instead with how long each
    step lasts (a countdown), and ``on_level`` hears the live level (``record``).
    Non-interactive: the same window is recorded with no prompt and whatever is heard is
    measured (speech results are absent when nobody spoke). ``device_label``: the name the
    person knows the recorded device by (the sound server's description of its default
    source), put in the reading instead of PortAudio's route name. Capture failures come back
    as a reading with ``problem`` set, never as an exception.
    """
    try:
        device, label = call_input_device()
    except Exception as exc:  # noqa: BLE001 - PortAudio missing, no device: a reason, not a crash
        return AudioReading(None, SAMPLE_RATE, 0.0, interactive,
                            problem=f"cannot open the audio system: {exc}")
    label = device_label or label
    marks: tuple[tuple[float, str], ...] = ()
    on_mark: Callable[[str], None] | None = prompt
    guided = interactive and (prompt is not None or on_phase is not None)
    if guided:
        steps = {quiet_text.format(seconds=quiet_s): quiet_s,
                 speech_text.format(sentence=sentence): speech_s}
        marks = tuple(zip((0.0, SETTLE_S + quiet_s), steps, strict=True))
        if on_phase is not None:
            def on_mark(text: str) -> None:
                on_phase(text, steps[text])
    try:
        samples, overflows = record(SETTLE_S + quiet_s + speech_s, on_mark=on_mark,
                                    marks=marks, device=device, on_level=on_level)
    except Exception as exc:  # noqa: BLE001 - driver errors become a reason
        return AudioReading(label, SAMPLE_RATE, 0.0, interactive,
                            problem=f"recording from {label} failed: {exc}")
    settle = int(SETTLE_S * SAMPLE_RATE)
    reading = analyze_capture(samples[settle:], SAMPLE_RATE, overflows=overflows, device=label,
                              prompted=guided, room_s=quiet_s if guided else None)
    del samples
    return reading
