"""Which packets of a test call a softphone's jitter buffer would have played. Pure.

A fixed jitter buffer, as most softphones start (and as ``[checks."network.test_call"]
jitter_buffer_ms`` sets it, 60 ms by default): packet ``i`` is played at
``anchor + i x packet_ms + buffer_ms`` on the receiver's clock, where the anchor is the earliest
arrival-minus-schedule among the first ``ANCHOR_PACKETS`` packets received (the buffer settles
on the path's base delay during the first 100 ms instead of trusting one first packet that may
itself have been delayed). A packet that arrives after its play time is *late*: the receiver
has already made that audio up and drops the packet, exactly as if it had been lost. Transit
times carry an unknown constant clock offset, which the anchor cancels.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

ANCHOR_PACKETS = 5


@dataclass(frozen=True)
class Playout:
    played: tuple[bool, ...]   # per packet: arrived in time and was played
    lost: int                  # never arrived
    late: int                  # arrived after its play time

    @property
    def concealed(self) -> int:
        return self.lost + self.late


def play_out(transit_ms: Sequence[float | None], buffer_ms: float) -> Playout:
    """The fate of each packet (``None``: never arrived) behind a fixed ``buffer_ms`` buffer.

    Transits are arrival minus the packet's regular send time (any constant offset), so the
    play deadline of every packet is the same transit: ``anchor + buffer_ms``."""
    if buffer_ms < 0:
        raise ValueError("buffer_ms must be >= 0")
    arrived = [t for t in transit_ms if t is not None]
    if not arrived:
        return Playout(tuple(False for _ in transit_ms), len(transit_ms), 0)
    deadline = min(arrived[:ANCHOR_PACKETS]) + buffer_ms
    played = tuple(t is not None and t <= deadline for t in transit_ms)
    lost = sum(t is None for t in transit_ms)
    late = sum(t is not None and t > deadline for t in transit_ms)
    return Playout(played, lost, late)
