"""The scored test call's contract, one definition for both sides: offer, receive record, score.

A test call is a stream of codec-sized RTP-like packets through the center's reflector (the path
test's packets, ``probes.network.path_packet``), as long as the center's reference clip. The
agent sends no audio at all: the center holds the synthetic reference clip (never the agent's
microphone) and knows what each packet carried; the network only decides *when* (or whether)
each packet arrived. So the agent sends the center its receive record, numbers only, and the
center rebuilds what a softphone at each end would have played (jitter buffer, packet-loss
concealment, decoder) and scores it against the reference with ViSQOL.

The offer (``GET /healthz``, key ``test_call``; ``null`` when the center cannot score)::

    {"path": "/api/v1/test-call", "clip": "en-1", "duration_s": 6.0, "packet_ms": 20,
     "codecs": [{"name": "G.711", "payload_bytes": 160}, {"name": "Opus", "payload_bytes": 60}]}

The record (``POST {path}``, JSON; the center refuses what is not one: 400/422 with
``{"error", "detail"}``)::

    {"codec": "G.711", "clip": "en-1", "packet_ms": 20, "jitter_buffer_ms": 60,
     "up_transit_ms":   [12.31, null, ...],   # per packet (sequence number = index): arrival
     "down_transit_ms": [11.92, 12.40, ...],  # minus send time on one clock offset; null: lost
     "assumed_up": 0, "assumed_down": 2}

``up`` is agent -> center (what the caller hears of the agent), ``down`` center -> agent (what
the agent hears). Transit = receive time - send time, with an unknown constant clock offset:
upstream the reflector's receive time minus the agent's send time, downstream the agent's
receive time minus the reflector's send time (the reflector sends each echo as it receives the
packet, so the downstream stream is taken as sent on the regular schedule it would have had).
Two cases the agent cannot observe are filled in, and counted in ``assumed_*``: a packet that
reached the reflector but whose echo was lost has no upstream arrival time (it is taken as
arriving with the median upstream transit), and a packet lost upstream never went downstream
(it is taken as arriving with the median downstream transit). A reflector that does not count
per session cannot tell which way a missing echo was lost: it is then lost both ways.

The score (``200``)::

    {"codec": "G.711", "clip": "en-1",
     "scorer": "visqol-python 3.8.0, speech mode, 16 kHz, lattice mapping, numba",
     "reference_mos_lqo": 4.37,            # the clip through the codec alone, no network
     "jitter_buffer_ms": 60, "cpu_s": 0.6,
     "up":   {"mos_lqo": 4.05, "packets": 300, "lost": 1, "late": 0, "concealed_ms": 20.0},
     "down": {"mos_lqo": 3.98, "packets": 300, "lost": 3, "late": 1, "concealed_ms": 80.0}}
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

CODEC_NAMES = ("G.711", "Opus")
MAX_PACKETS = 1500                # 30 s of 20 ms packets: more than any clip the center holds
MAX_TRANSIT_MS = 600_000.0        # a clock offset of up to 10 min between agent and center
JITTER_BUFFER_RANGE_MS = (20, 400)
DEFAULT_JITTER_BUFFER_MS = 60


class RecordError(ValueError):
    """A receive record (or an offer) that does not follow the contract; the text says why."""


@dataclass(frozen=True)
class CodecOffer:
    name: str             # "G.711" (mu-law) or "Opus"
    payload_bytes: int    # codec payload per packet: the packets the agent sends are this + 12


@dataclass(frozen=True)
class CallOffer:
    """What the center offers: where to send the record, which clip, which codecs."""

    path: str
    clip: str
    duration_s: float
    packet_ms: int
    codecs: tuple[CodecOffer, ...]

    @property
    def packets(self) -> int:
        """Packets in one test call: the clip's length in packets."""
        return max(1, math.ceil(self.duration_s * 1000 / self.packet_ms))

    def codec(self, name: str) -> CodecOffer | None:
        return next((c for c in self.codecs if c.name == name), None)

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "clip": self.clip, "duration_s": self.duration_s,
                "packet_ms": self.packet_ms,
                "codecs": [{"name": c.name, "payload_bytes": c.payload_bytes}
                           for c in self.codecs]}


def parse_offer(value: object) -> CallOffer | None:
    """The offer from ``/healthz``'s ``test_call``; None when absent or malformed (an agent
    then reports the check unknown: the center offers no test call)."""
    if not isinstance(value, dict):
        return None
    try:
        path, clip = value["path"], value["clip"]
        duration, packet_ms = value["duration_s"], value["packet_ms"]
        codecs = tuple(CodecOffer(str(c["name"]), int(c["payload_bytes"]))
                       for c in value["codecs"] if c.get("name") in CODEC_NAMES)
    except (KeyError, TypeError, ValueError, AttributeError):
        return None
    if not (isinstance(path, str) and path.startswith("/") and isinstance(clip, str)
            and isinstance(duration, (int, float)) and 0 < duration <= 30
            and isinstance(packet_ms, int) and packet_ms in (10, 20, 40, 60) and codecs):
        return None
    return CallOffer(path, clip, float(duration), packet_ms, codecs)


@dataclass(frozen=True)
class ReceiveRecord:
    """One test call as the two receivers saw it (see the module docstring)."""

    codec: str
    clip: str
    packet_ms: int
    jitter_buffer_ms: int
    up_transit_ms: tuple[float | None, ...]
    down_transit_ms: tuple[float | None, ...]
    assumed_up: int = 0
    assumed_down: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"codec": self.codec, "clip": self.clip, "packet_ms": self.packet_ms,
                "jitter_buffer_ms": self.jitter_buffer_ms,
                "up_transit_ms": [None if t is None else round(t, 3)
                                  for t in self.up_transit_ms],
                "down_transit_ms": [None if t is None else round(t, 3)
                                    for t in self.down_transit_ms],
                "assumed_up": self.assumed_up, "assumed_down": self.assumed_down}


def _transits(value: object, name: str) -> tuple[float | None, ...]:
    if not isinstance(value, list) or not 1 <= len(value) <= MAX_PACKETS:
        raise RecordError(f"{name} must be a list of 1..{MAX_PACKETS} numbers or nulls")
    out: list[float | None] = []
    for item in value:
        if item is None:
            out.append(None)
        elif isinstance(item, (int, float)) and not isinstance(item, bool) \
                and math.isfinite(item) and abs(item) <= MAX_TRANSIT_MS:
            out.append(float(item))
        else:
            raise RecordError(f"{name} holds {item!r}: each entry is a number of ms "
                              f"(|x| <= {MAX_TRANSIT_MS:.0f}) or null")
    return tuple(out)


def _count(body: dict[str, Any], key: str, limit: int) -> int:
    value = body.get(key, 0)
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= limit:
        raise RecordError(f"{key} must be an integer 0..{limit}")
    return value


def parse_record(body: object) -> ReceiveRecord:
    """The record in a request body (decoded JSON); RecordError with the reason if it is not
    one. Extra keys are refused, like every body the center takes."""
    if not isinstance(body, dict):
        raise RecordError("the body must be a JSON object")
    known = {"codec", "clip", "packet_ms", "jitter_buffer_ms", "up_transit_ms",
             "down_transit_ms", "assumed_up", "assumed_down"}
    extra = sorted(set(body) - known)
    if extra:
        raise RecordError(f"unknown keys: {', '.join(map(str, extra))[:200]}")
    codec, clip, packet_ms = body.get("codec"), body.get("clip"), body.get("packet_ms")
    if codec not in CODEC_NAMES:
        raise RecordError(f"codec must be one of {', '.join(CODEC_NAMES)}")
    if not isinstance(clip, str) or not 1 <= len(clip) <= 40:
        raise RecordError("clip must be the offer's clip name")
    if not isinstance(packet_ms, int) or isinstance(packet_ms, bool) or packet_ms <= 0:
        raise RecordError("packet_ms must be a positive integer")
    buffer_ms = body.get("jitter_buffer_ms", DEFAULT_JITTER_BUFFER_MS)
    low, high = JITTER_BUFFER_RANGE_MS
    if not isinstance(buffer_ms, int) or isinstance(buffer_ms, bool) \
            or not low <= buffer_ms <= high:
        raise RecordError(f"jitter_buffer_ms must be an integer {low}..{high}")
    up = _transits(body.get("up_transit_ms"), "up_transit_ms")
    down = _transits(body.get("down_transit_ms"), "down_transit_ms")
    if len(up) != len(down):
        raise RecordError("up_transit_ms and down_transit_ms must have one entry per packet")
    return ReceiveRecord(codec, clip, packet_ms, buffer_ms, up, down,
                         _count(body, "assumed_up", len(up)),
                         _count(body, "assumed_down", len(down)))


@dataclass(frozen=True)
class DirectionScore:
    mos_lqo: float
    packets: int
    lost: int            # never arrived
    late: int            # arrived after the jitter buffer had to play it
    concealed_ms: float  # audio the receiver made up (packet-loss concealment)

    def to_json(self) -> dict[str, Any]:
        return {"mos_lqo": round(self.mos_lqo, 3), "packets": self.packets, "lost": self.lost,
                "late": self.late, "concealed_ms": round(self.concealed_ms, 1)}


@dataclass(frozen=True)
class CallScore:
    """The center's answer: MOS-LQO per direction beside the codec's own clean score."""

    codec: str
    clip: str
    scorer: str
    reference_mos_lqo: float
    jitter_buffer_ms: int
    cpu_s: float
    up: DirectionScore
    down: DirectionScore

    def to_json(self) -> dict[str, Any]:
        return {"codec": self.codec, "clip": self.clip, "scorer": self.scorer,
                "reference_mos_lqo": round(self.reference_mos_lqo, 3),
                "jitter_buffer_ms": self.jitter_buffer_ms, "cpu_s": round(self.cpu_s, 3),
                "up": self.up.to_json(), "down": self.down.to_json()}


def _direction(value: object) -> DirectionScore:
    if not isinstance(value, dict):
        raise RecordError("a direction's score must be an object")
    try:
        mos = float(value["mos_lqo"])
        score = DirectionScore(mos, int(value["packets"]), int(value["lost"]),
                               int(value["late"]), float(value["concealed_ms"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise RecordError(f"a direction's score is incomplete: {exc}") from None
    if not (math.isfinite(mos) and 1.0 <= mos <= 5.0):
        raise RecordError(f"mos_lqo {mos!r} outside 1..5")
    return score


def parse_score(body: object) -> CallScore:
    """The center's answer, checked (the agent trusts no number it cannot judge)."""
    if not isinstance(body, dict):
        raise RecordError("the score must be a JSON object")
    try:
        reference = float(body["reference_mos_lqo"])
        return CallScore(str(body["codec"]), str(body["clip"]), str(body["scorer"])[:200],
                         reference, int(body["jitter_buffer_ms"]), float(body["cpu_s"]),
                         _direction(body["up"]), _direction(body["down"]))
    except (KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, RecordError):
            raise
        raise RecordError(f"the score is incomplete: {exc}") from None
