"""Pure statistics of an RTP-like packet stream: jitter, loss, burst loss, reordering, RTT.

No I/O; every function takes plain sequences so it can be checked against golden values.

- Interarrival jitter: RFC 3550 section 6.4.1 and appendix A.8. For packets i-1, i in arrival
  order, D = (R_i - R_{i-1}) - (S_i - S_{i-1}) = transit_i - transit_{i-1};
  J += (|D| - J) / 16. Only transit differences matter, so the two clocks need no sync.
  The RFC 3550 figure is J at the end of the stream (what an RTCP receiver report, iperf3 and
  WebRTC give: ``rfc3550_jitter``). J starts at 0 and weighs the last ~16-30 packets, so a
  short stream also gets a steady figure: the mean of |D| over every packet
  (``mean_transit_difference``), the quantity J is the running estimate of ("the mean
  deviation (smoothed absolute value) of the difference D", RFC 3550 6.4.1), without J's
  warm-up from 0.
- Reordering: RFC 4737 section 3.3 in its simplest form: a packet whose sequence number is
  lower than one already received is reordered.
- Burst loss: the worst loss fraction among packets sent within any full window (200 ms: the
  Microsoft Teams criterion "burst < 10 % in any 200 ms"); windows that run past the end of
  the stream hold too few packets to judge (one lost packet of one is not a 100 % burst).
- Loss per direction (``split_directions``): which lost packet was lost on which way, from the
  reflector's per-session counts (below).
- BurstR (ITU-T G.113 Appendix I / G.107): for a two-state Markov loss model with
  p = P(loss | previous received) and q = P(received | previous lost), BurstR = 1 / (p + q);
  1 for random loss, larger for bursty loss.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from probes.network.path_packet import SessionCounts

JITTER_GAIN = 16          # RFC 3550 6.4.1: the 1/16 gain of the running estimate
BURST_WINDOW_MS = 200.0   # Microsoft Teams: burst loss in any 200 ms


def rfc3550_jitter_series(transits_ms: Sequence[float]) -> list[float]:
    """The running RFC 3550 jitter J after each packet (from the second), in ms.

    ``transits_ms`` are arrival-minus-send times (any constant clock offset) in arrival order.
    """
    series: list[float] = []
    jitter = 0.0
    for prev, cur in zip(transits_ms, transits_ms[1:], strict=False):
        jitter += (abs(cur - prev) - jitter) / JITTER_GAIN
        series.append(jitter)
    return series


def rfc3550_jitter(transits_ms: Sequence[float]) -> float:
    """The final RFC 3550 jitter J (what an RTCP receiver report or iperf3 shows), in ms."""
    series = rfc3550_jitter_series(transits_ms)
    return series[-1] if series else 0.0


def mean_transit_difference(transits_ms: Sequence[float]) -> float:
    """The mean |D| over the stream, in ms: the steady value RFC 3550's J estimates.

    J is an exponentially weighted mean of |D| with gain 1/16 (RFC 3550 6.4.1), started at 0;
    for i.i.d. transits both tend to E|D|. The plain mean weighs every packet once and has no
    warm-up, so on 150-300 packets it does not read low as J (or a mean of J) does.
    """
    diffs = [abs(cur - prev) for prev, cur in zip(transits_ms, transits_ms[1:], strict=False)]
    return sum(diffs) / len(diffs) if diffs else 0.0


def mean_jitter(transits_ms: Sequence[float], warmup: int = JITTER_GAIN) -> float:
    """The RFC 3550 running jitter averaged over the stream, after ``warmup`` packets.

    Not what the checks report (they give ``rfc3550_jitter`` and
    ``mean_transit_difference``): the running J starts at 0, so even after the warm-up its
    mean reads a few percent low on 150-300 packets.
    """
    series = rfc3550_jitter_series(transits_ms)
    settled = series[warmup:] if len(series) > warmup else series
    return sum(settled) / len(settled) if settled else 0.0


def loss_pct(sent: int, received: int) -> float:
    """Packets that never came back, in percent of those sent (duplicates not counted)."""
    if sent <= 0:
        return 0.0
    return 100.0 * max(0, sent - received) / sent


def burst_loss_pct(send_times_ms: Sequence[float], lost: Sequence[bool],
                   window_ms: float = BURST_WINDOW_MS) -> float:
    """The worst loss, in percent, among the packets sent within any full window of
    ``window_ms``.

    Windows start at each packet's send time (sorted). A window is full when the stream runs
    to its end: it starts no later than ``window_ms`` before the last send time plus one
    packet interval (the median gap between sends), so the last 200 ms window of a 20 ms
    stream holds its 10 packets and a window near the end never holds one or two. A stream
    shorter than one window counts as one window.
    """
    if len(send_times_ms) != len(lost):
        raise ValueError("send_times_ms and lost differ in length")
    n = len(lost)
    if n == 0:
        return 0.0
    gaps = [b - a for a, b in zip(send_times_ms, send_times_ms[1:], strict=False)]
    interval = percentile(gaps, 50) if gaps else 0.0
    last_start = send_times_ms[-1] + interval - window_ms
    if send_times_ms[0] > last_start + 1e-9:
        return 100.0 * sum(lost) / n
    worst, end, lost_in = 0.0, 0, 0
    for start in range(n):
        if send_times_ms[start] > last_start + 1e-9:
            break
        while end < n and send_times_ms[end] < send_times_ms[start] + window_ms:
            lost_in += lost[end]
            end += 1
        worst = max(worst, lost_in / (end - start))
        lost_in -= lost[start]
    return 100.0 * worst


def count_reordered(seqs_in_arrival_order: Sequence[int]) -> int:
    """Packets that arrived after one with a higher sequence number (RFC 4737 3.3).

    Duplicates of a sequence number already seen are not counted again.
    """
    seen: set[int] = set()
    highest = -math.inf
    reordered = 0
    for seq in seqs_in_arrival_order:
        if seq in seen:
            continue
        seen.add(seq)
        if seq < highest:
            reordered += 1
        else:
            highest = seq
    return reordered


def count_duplicates(seqs_in_arrival_order: Sequence[int]) -> int:
    """Copies received of a sequence number already received."""
    return len(seqs_in_arrival_order) - len(set(seqs_in_arrival_order))


def burst_ratio(lost: Sequence[bool]) -> float:
    """G.107 BurstR from the loss pattern (two-state Markov model); 1.0 without enough loss.

    Needs at least one loss and one transition each way to estimate p and q; otherwise the
    pattern is treated as random loss (BurstR = 1).
    """
    recv_to_lost = recv_total = lost_to_recv = lost_total = 0
    for prev, cur in zip(lost, lost[1:], strict=False):
        if prev:
            lost_total += 1
            lost_to_recv += not cur
        else:
            recv_total += 1
            recv_to_lost += cur
    if recv_to_lost == 0 or lost_to_recv == 0 or recv_total == 0 or lost_total == 0:
        return 1.0
    p = recv_to_lost / recv_total
    q = lost_to_recv / lost_total
    return 1.0 / (p + q)


def percentile(values: Sequence[float], pct: float) -> float:
    """The ``pct`` percentile with linear interpolation between closest ranks (NumPy's default).

    Raises ValueError on an empty sequence.
    """
    if not values:
        raise ValueError("percentile of no values")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * pct / 100.0
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)

# ---- loss per direction -----------------------------------------------------------------
# The reflector (stateful, like a STAMP Session-Reflector in stateful mode, RFC 8762 4.3)
# returns with each reply its count of the session's packets answered, the highest sequence
# number answered and a window of which of the last 64 were answered
# (``probes.network.path_packet.SessionCounts``). A packet that never came back was lost on
# the way out when the reflector never answered it, on the way back when it did: forward
# loss = sent - answered, return loss = answered - echoes back, without synchronised clocks.


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

    A packet reached the reflector when its echo came back or a window has its bit set; it
    did not when a window covering it (at or below that window's highest sequence number) has
    its bit clear, or, in the final count answer taken after the stream, it lies above the
    highest number the reflector saw. Packets no window covered (more than 64 replies in a
    row lost) are filled from the final count in sequence order (which of them reached the
    reflector cannot be known) and counted in ``filled_from_count``.

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
