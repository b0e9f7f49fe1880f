"""The agent's side of the scored test call: the receive record, sent to the center for its score.

The stream itself is the path test's (``probes.network.path.measure_path_record`` with the
codec's packet size, as long as the center's clip); this module turns what it saw into the
record of ``agent_kit.core.wire.test_call`` (numbers only: no audio exists on the agent for
this check) and posts it. The two cases the agent cannot observe are filled in as that module
says: a packet that reached the reflector but whose echo was lost is taken as arriving upstream
with the median upstream transit, a packet lost upstream (never sent downstream) as arriving
downstream with the median downstream transit; both are counted in the record.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import TYPE_CHECKING

from agent_kit.core.wire.test_call import (
    CallScore,
    ReceiveRecord,
    RecordError,
    CallOffer,
    parse_score,
)

if TYPE_CHECKING:
    import httpx


class CallScoreError(Exception):
    """The center did not score the call; the message says why in plain words."""


def receive_record(up: Sequence[float | None], down: Sequence[float | None],
                   reached: Sequence[bool] | None, *, codec: str, offer: CallOffer,
                   jitter_buffer_ms: int) -> ReceiveRecord:
    """The record of one stream: per packet the upstream and downstream transit (ms).

    ``up``/``down``: the stream's per-packet transits, None where no echo came back;
    ``reached``: which packets the reflector counted (None: a reflector that does not count,
    so a missing echo is taken as lost both ways)."""
    if len(up) != len(down) or (reached is not None and len(reached) != len(up)):
        raise ValueError("up, down and reached must have one entry per packet")
    seen_up = [t for t in up if t is not None]
    seen_down = [t for t in down if t is not None]
    median_up = statistics.median(seen_up) if seen_up else None
    median_down = statistics.median(seen_down) if seen_down else None
    out_up: list[float | None] = []
    out_down: list[float | None] = []
    assumed_up = assumed_down = 0
    for i, (u, d) in enumerate(zip(up, down, strict=True)):
        if u is not None:               # echoed: both ways seen
            out_up.append(u)
            out_down.append(d)
        elif reached is not None and reached[i]:   # reached the center, the echo was lost
            out_up.append(median_up)
            out_down.append(None)
            assumed_up += median_up is not None
        elif reached is not None:       # lost on the way to the center: never came back down
            out_up.append(None)
            out_down.append(median_down)
            assumed_down += median_down is not None
        else:                           # not counted: lost, both ways
            out_up.append(None)
            out_down.append(None)
    return ReceiveRecord(codec, offer.clip, offer.packet_ms, jitter_buffer_ms, tuple(out_up),
                         tuple(out_down), assumed_up, assumed_down)


def request_score(center_url: str, offer: CallOffer, record: ReceiveRecord, *,
                  timeout_s: float = 30.0,
                  transport: httpx.BaseTransport | None = None) -> CallScore:
    """POST the record to the center's test-call endpoint and return its checked score."""
    import httpx

    try:
        with httpx.Client(base_url=center_url, transport=transport,
                          timeout=timeout_s) as client:
            response = client.post(offer.path, json=record.to_json())
    except httpx.HTTPError as exc:
        raise CallScoreError(f"the center {center_url} did not answer the test call: "
                            f"{type(exc).__name__}: {exc}") from None
    try:
        body = response.json()
    except ValueError:
        body = None
    if response.status_code != 200:
        detail = body.get("detail") if isinstance(body, dict) else None
        raise CallScoreError(f"the center refused to score the test call (HTTP "
                            f"{response.status_code}: {detail or response.reason_phrase})")
    try:
        return parse_score(body)
    except RecordError as exc:
        raise CallScoreError(f"the center's test-call score is malformed: {exc}") from None
