"""The scored test call at the center: rebuild what each end heard, score it with ViSQOL.

The agent streamed codec-sized packets through the reflector and sent back when each one
arrived (``agent_kit.core.wire.test_call``). Here, per direction, the center

1. takes the reference clip (``clips/en-1.wav``: synthetic speech made with espeak-ng, 16 kHz;
   never anyone's microphone) through the codec a softphone would use: G.711 mu-law at 8 kHz
   (``agent_kit.center.g711``) or Opus at 16 kHz, 20 ms frames, constant bit rate (libopus
   through ``opuslib``, where the library is installed);
2. decides with a fixed jitter buffer which packets were played
   (``agent_kit.center.jitter_buffer``);
3. decodes the played packets and conceals the others as that softphone would: G.711
   Appendix I for G.711, Opus's own packet-loss concealment (the decoder called without a
   packet) for Opus; no forward error correction;
4. scores the result against the clip in the codec's own audio band with ViSQOL v3 in speech
   mode at 16 kHz (``visqol-python``, which ships its models: nothing is downloaded) as
   MOS-LQO, with the deep-lattice mapping the C++ ViSQOL uses by default (``[lattice]``: the
   TFLite runtime; without it the package's polynomial mapping, named in ``scorer``) and its
   numba kernels (``[accel]``: about 0.3 s of CPU per score instead of 2-3 s).

The reference is the clip as a perfect channel of the codec's band would carry it: wideband
(the clip itself) for Opus, narrowband (the clip through the 8 kHz resampler's anti-alias
filter, i.e. up to 4 kHz) for G.711. Against the wideband clip every G.711 call scores about
2.3 whatever the line, because ViSQOL rates the missing 4-8 kHz band; the check judges the line,
not the codec's bandwidth, so each codec is held to its own band (the codecs' difference in
band is in docs/BENCHMARKS.md).

``reference_mos_lqo`` is the same clip through the same codec with every packet played (the
codec alone, no network): the best a test call with that codec can score, so a clean path is
judged against it. It is computed once per codec and kept.

What the score leaves out, on purpose: delay (ViSQOL compares listening quality and aligns the
signals; the E-model's delay impairment is beside it in the check), echo and the terminals.
"""

from __future__ import annotations

import threading
import time
import wave
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent_kit.core.wire.test_call import (
    CallOffer,
    CallScore,
    CodecOffer,
    DirectionScore,
    ReceiveRecord,
    RecordError,
)

if TYPE_CHECKING:
    import numpy as np

CLIPS = Path(__file__).resolve().parent / "clips"
CLIP_NAME = "en-1"
SAMPLE_RATE = 16_000        # ViSQOL speech mode
PACKET_MS = 20
OPUS_BITRATE = 24_000       # wideband speech at 24 kbit/s CBR: 60 bytes per 20 ms
G711_PAYLOAD = 160          # 20 ms at 8 kHz, one byte per sample
OFFER_PATH = "/api/v1/test-call"


class ScorerUnavailable(RuntimeError):
    """ViSQOL (or numpy/scipy) is not installed at the center: no test call is offered."""


def load_clip(name: str = CLIP_NAME) -> np.ndarray:
    """The reference clip as float samples in [-1, 1) at 16 kHz, mono."""
    import numpy as np

    with wave.open(str(CLIPS / f"{name}.wav"), "rb") as w:
        if w.getframerate() != SAMPLE_RATE or w.getnchannels() != 1 or w.getsampwidth() != 2:
            raise ValueError(f"clip {name}: must be 16 kHz mono 16-bit")
        data = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    # whole packets only: the call is as long as the clip, cut to 20 ms
    per_packet = SAMPLE_RATE * PACKET_MS // 1000
    data = data[:len(data) // per_packet * per_packet]
    return data.astype(np.float64) / 32768.0


class _G711:
    name = "G.711"
    payload_bytes = G711_PAYLOAD

    def __init__(self, clip: np.ndarray) -> None:
        from scipy.signal import resample_poly

        from agent_kit.center import g711

        self._g711 = g711
        narrow = resample_poly(clip, 1, 2)   # 16 -> 8 kHz, with its anti-alias filter
        pcm = (narrow * 32768.0).clip(-32768, 32767).astype("int16")
        # the decoded frames as the far end's decoder gives them (the codec is memoryless)
        self._decoded = g711.ulaw_decode(g711.ulaw_encode(pcm)).astype("float64")

    def play(self, played: tuple[bool, ...]) -> np.ndarray:
        from scipy.signal import resample_poly

        conceal = self._g711.Concealer()
        frame = self._g711.FRAME
        per_packet = frame * PACKET_MS // 10
        for i, ok in enumerate(played):
            for k in range(0, per_packet, frame):
                if ok:
                    start = i * per_packet + k
                    conceal.good(self._decoded[start:start + frame])
                else:
                    conceal.lost()
        return resample_poly(conceal.output() / 32768.0, 2, 1)


class _Opus:
    name = "Opus"
    payload_bytes = OPUS_BITRATE * PACKET_MS // 8000

    def __init__(self, clip: np.ndarray) -> None:
        import opuslib  # libopus through ctypes; ImportError/OSError when it is missing

        self._opuslib = opuslib
        encoder = opuslib.Encoder(SAMPLE_RATE, 1, opuslib.APPLICATION_VOIP)
        encoder.bitrate = OPUS_BITRATE
        encoder.vbr = False
        per_packet = SAMPLE_RATE * PACKET_MS // 1000
        pcm = (clip * 32768.0).clip(-32768, 32767).astype("<i2")
        self._frame = per_packet
        self._packets = [encoder.encode(pcm[i:i + per_packet].tobytes(), per_packet)
                         for i in range(0, len(pcm), per_packet)]

    def play(self, played: tuple[bool, ...]) -> np.ndarray:
        import numpy as np

        decoder = self._opuslib.Decoder(SAMPLE_RATE, 1)
        out = []
        for packet, ok in zip(self._packets, played, strict=True):
            # no packet: the decoder's own concealment (libopus PLC)
            pcm = decoder.decode(packet if ok else b"", self._frame)
            out.append(np.frombuffer(pcm, dtype="<i2"))
        return np.concatenate(out).astype(np.float64) / 32768.0


class CallScorer:
    """Holds the clip, the codecs that load here and ViSQOL; scores one record at a time
    (``score`` is serialised: ViSQOL is CPU-bound and its objects are not shared safely)."""

    def __init__(self, clip: str = CLIP_NAME) -> None:
        try:
            import numpy  # noqa: F401
            import scipy.signal  # noqa: F401
            from visqol import VisqolApi
        except ImportError as exc:
            raise ScorerUnavailable(f"the test call needs visqol-python and scipy: {exc}") \
                from None
        self.clip_name = clip
        self._clip = load_clip(clip)
        self._api = VisqolApi()
        try:
            self._api.create(mode="speech", use_lattice_model=True)
            mapping = "lattice mapping"
        except ImportError:   # the [lattice] extra (ai-edge-litert) is not installed
            self._api.create(mode="speech", use_lattice_model=False)
            mapping = "polynomial mapping"
        self._lock = threading.Lock()
        self._codecs: dict[str, Any] = {"G.711": _G711(self._clip)}
        from scipy.signal import resample_poly

        narrow = resample_poly(resample_poly(self._clip, 1, 2), 2, 1)[:len(self._clip)]
        self._band = {"G.711": narrow, "Opus": self._clip}
        try:
            self._codecs["Opus"] = _Opus(self._clip)
        except Exception as exc:  # noqa: BLE001 - opuslib missing, or libopus0 missing
            self.opus_problem: str | None = f"{type(exc).__name__}: {exc}"
        else:
            self.opus_problem = None
        self._reference: dict[str, float] = {}
        self.scorer = _scorer_name(mapping)

    @property
    def duration_s(self) -> float:
        return len(self._clip) / SAMPLE_RATE

    @property
    def packets(self) -> int:
        return len(self._clip) * 1000 // (SAMPLE_RATE * PACKET_MS)

    def offer(self) -> CallOffer:
        return CallOffer(OFFER_PATH, self.clip_name, round(self.duration_s, 3), PACKET_MS,
                             tuple(CodecOffer(c.name, c.payload_bytes)
                                   for c in self._codecs.values()))

    def mos_lqo(self, degraded: np.ndarray, codec: str = "Opus") -> float:
        """ViSQOL speech-mode MOS-LQO of ``degraded`` against the clip in ``codec``'s band."""
        import numpy as np

        n = len(self._clip)
        deg = np.zeros(n)
        deg[:min(n, len(degraded))] = degraded[:n]
        result = self._api.measure_from_arrays(self._band[codec], deg, sample_rate=SAMPLE_RATE)
        return float(result.moslqo)

    def reference_mos_lqo(self, codec: str) -> float:
        """The clip through ``codec`` alone (every packet played), computed once."""
        with self._lock:
            return self._reference_locked(codec)

    def _reference_locked(self, codec: str) -> float:
        if codec not in self._reference:
            played = tuple(True for _ in range(self.packets))
            self._reference[codec] = self.mos_lqo(self._codecs[codec].play(played), codec)
        return self._reference[codec]

    def score(self, record: ReceiveRecord, *, reference: bool = True) -> CallScore:
        """Both directions of one test call. RecordError when the record does not fit the
        offer (another clip, codec or packet count)."""
        from agent_kit.center.jitter_buffer import play_out

        codec = self._codecs.get(record.codec)
        if codec is None:
            raise RecordError(f"this center does not offer {record.codec}")
        if record.clip != self.clip_name or record.packet_ms != PACKET_MS:
            raise RecordError(f"the offer is clip {self.clip_name} at {PACKET_MS} ms packets")
        if len(record.up_transit_ms) != self.packets:
            raise RecordError(f"clip {self.clip_name} is {self.packets} packets, the record "
                              f"{len(record.up_transit_ms)}")
        with self._lock:
            ref = self._reference_locked(record.codec) if reference else float("nan")
            # the process's CPU: the numba kernels run in threads of their own (with one score
            # at a time, the rest of the center's work in between is small beside it)
            start = time.process_time()
            ways = {}
            for way, transit in (("up", record.up_transit_ms), ("down", record.down_transit_ms)):
                fate = play_out(transit, record.jitter_buffer_ms)
                mos = self.mos_lqo(codec.play(fate.played), record.codec)
                ways[way] = DirectionScore(mos, len(transit), fate.lost, fate.late,
                                           float(fate.concealed * PACKET_MS))
            cpu = time.process_time() - start
        return CallScore(record.codec, self.clip_name, self.scorer, ref,
                         record.jitter_buffer_ms, cpu, ways["up"], ways["down"])


def opus_available() -> str | None:
    """None when Opus can be used here (opuslib and libopus), else why not."""
    try:
        import opuslib  # noqa: F401  (loads libopus through ctypes)
    except Exception as exc:  # noqa: BLE001 - ImportError, or opuslib's own "no libopus"
        return f"{type(exc).__name__}: {exc}"
    return None


def offer_here(clip: str = CLIP_NAME) -> tuple[CallOffer | None, str | None]:
    """What this center can offer, found cheaply (no model loaded): None and why when ViSQOL
    or scipy is not installed."""
    from importlib.util import find_spec

    missing = [name for name in ("numpy", "scipy", "visqol") if find_spec(name) is None]
    if missing:
        return None, f"the test call needs {', '.join(missing)} at the center (visqol-python)"
    with wave.open(str(CLIPS / f"{clip}.wav"), "rb") as w:
        per_packet = SAMPLE_RATE * PACKET_MS // 1000
        packets = w.getnframes() // per_packet
    codecs = [CodecOffer("G.711", G711_PAYLOAD)]
    if opus_available() is None:
        codecs.append(CodecOffer("Opus", _Opus.payload_bytes))
    return CallOffer(OFFER_PATH, clip, packets * PACKET_MS / 1000, PACKET_MS,
                         tuple(codecs)), None


def _scorer_name(mapping: str) -> str:
    from importlib.metadata import PackageNotFoundError, version
    from importlib.util import find_spec

    try:
        v = version("visqol-python")
    except PackageNotFoundError:
        v = "?"
    accel = ", numba" if find_spec("numba") is not None else ""
    return f"visqol-python {v}, speech mode, 16 kHz, {mapping}{accel}"
