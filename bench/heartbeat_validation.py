"""CPU of the center's heartbeat validation: one realistic heartbeat body (a batch of 1, as the
load bench sends it: every catalogue check with its message, and the gate, built by the agent's
builder, ``tests.center_seed.typical_heartbeat``) validated from its raw bytes with the model
the hot route uses (``agent_kit.center.models.HeartbeatBatch.model_validate_json``).

    python3 bench/heartbeat_validation.py [--count 10000] [--rounds 5] [--body-out FILE]

Prints the body size and microseconds per validation (best and median of the rounds: the machine
is shared, the best is the least disturbed). ``--body-out`` writes the body, so the same bytes
can be timed against another version of the center's models.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agent_kit.center.models import HeartbeatBatch  # noqa: E402
from agent_kit.core.wire.heartbeat import heartbeat_batch  # noqa: E402
from tests.center_seed import typical_heartbeat  # noqa: E402


def time_validation(body: bytes, count: int) -> float:
    """Seconds for ``count`` strict validations of ``body``."""
    validate = HeartbeatBatch.model_validate_json
    started = time.perf_counter()
    for _ in range(count):
        validate(body)
    return time.perf_counter() - started


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--count", type=int, default=10_000)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--body-out", type=Path)
    args = p.parse_args()
    # json.dumps as the agent's client sends it (compact separators)
    body = json.dumps(heartbeat_batch([typical_heartbeat(1)]), separators=(",", ":")).encode()
    if args.body_out:
        args.body_out.write_bytes(body)
    time_validation(body, 200)   # warm-up
    per_us = [1e6 * time_validation(body, args.count) / args.count for _ in range(args.rounds)]
    print(f"heartbeat body {len(body)} bytes: {args.count} validations x {args.rounds} rounds, "
          f"best {min(per_us):.1f} us, median {statistics.median(per_us):.1f} us per validation")
    return 0


if __name__ == "__main__":
    sys.exit(main())
