"""Which lost packet was lost on which way, from the reflector's per-session counts. Pure.

The reflector (stateful, like a STAMP Session-Reflector in stateful mode, RFC 8762 section 4.3)
returns with each reply its count of the session's packets answered, the highest sequence
number answered and a window of which of the last 64 were answered
(``probes.network.path_packet.SessionCounts``). A packet that never came back was lost on the
way out when the reflector never answered it, on the way back when it did. So, without
synchronised clocks:

- forward loss = sent - answered by the reflector;
- return loss = answered by the reflector - echoes received back.

Per packet, from the windows: a packet is known to have reached the reflector when its echo
came back or a window has its bit set; known not to have reached it when a window covering it
(at or below that window's highest sequence number) has its bit clear, or, in the final count
answer taken after the stream, it lies above the highest number the reflector saw. Packets no
window covered (more than 64 replies in a row lost) are filled from the final count in
sequence order (which of them reached the reflector cannot be known) and counted in
``filled_from_count``. Without a final count, such packets leave the split unknown (None).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

from probes.network.path_packet import SessionCounts


@dataclass(frozen=True)
class DirectionSplit:
    """Per sequence number 0..sent-1: did the packet reach the reflector."""

    reached: tuple[bool, ...]
    filled_from_count: int      # packets placed from the final count, not from a window

    @property
    def reflected(self) -> int:
        """Packets that reached the reflector (and were answered)."""
        return sum(self.reached)


def split_directions(sent: int, echoed: Collection[int], replies: Sequence[SessionCounts],
                     final: SessionCounts | None = None) -> DirectionSplit | None:
    """Place each of ``sent`` packets on the way it was lost, if it was.

    ``echoed``: sequence numbers whose echo came back; ``replies``: the counts the echoes
    carried; ``final``: the count answer after the stream, if one came. None when there is
    nothing to go by (no counted reply: an old reflector, or one with a full session table)
    or when some packet cannot be placed without a final count.
    """
    if not replies and final is None:
        return None
    state: list[bool | None] = [None] * sent
    for seq in echoed:
        if 0 <= seq < sent:
            state[seq] = True
    observations = [*replies, *([final] if final is not None else [])]
    for counts in observations:
        low = max(0, counts.highest_seq - 63)
        for seq in range(low, min(sent, counts.highest_seq + 1)):
            if state[seq] is True:
                continue
            answered = counts.answered(seq)
            if answered:
                state[seq] = True
            elif answered is False:
                state[seq] = False
    if final is not None:
        for seq in range(final.highest_seq + 1, sent):
            if state[seq] is None:
                state[seq] = False   # the stream is over and the reflector never saw it
    unknown = [seq for seq, s in enumerate(state) if s is None]
    if unknown and final is None:
        return None
    if unknown and final is not None:
        known_reached = sum(1 for s in state if s)
        fill = min(len(unknown), max(0, final.reflected - known_reached))
        for i, seq in enumerate(unknown):
            state[seq] = i < fill
    return DirectionSplit(tuple(bool(s) for s in state), len(unknown))
