"""The scored test call, end to end, on the lab link emulator.

The center namespace serves the real test-call route and UDP reflector
(``tests/lab/call_center.py``); the home namespace runs the product's test-call unit
(``tests/lab/call_client.py``) or ``agent-kit check --only network --json``. The link emulator
(``tests/lab/emulator.py``) sets the truth: random loss per direction, and one-way jitter
U(0, J) ms. Its record says which of the stream's packets it dropped on which way; the center's
count of lost packets per direction must match it. What the test holds the score to:

- clean path: each direction within 0.2 of ViSQOL's own score of the clip through the codec
  alone (``reference_mos_lqo``: no network);
- 1 %, 3 %, 8 % loss: the score falls as the loss rises (each step below the one before);
- 20 ms jitter stays inside the 60 ms jitter buffer (nothing late, the clean score); 60 ms is at
  its edge (U(0, 60) on a FIFO link never delays a packet more than 60 ms past the fastest: the
  clean score within 0.2); 150 ms makes packets late and scores clearly lower.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.lab.call_center import serve_call_center
from tests.lab.emulator import EmulatedLink, LineSpec, emulated_link
from tests.lab.netns import CENTER_UDP_PORT

pytestmark = [pytest.mark.lab, pytest.mark.timing]
ROOT = Path(__file__).resolve().parents[1]
UDP = 17
CLEAN_MARGIN = 0.2


@dataclass
class CallLab:
    link: EmulatedLink
    url: str

    def line(self, *, loss_pct: float = 0.0, jitter_ms: float = 0.0, seed: int = 1) -> None:
        # the same impairment both ways, each with its own random draws
        self.link.emulator.reset()
        self.link.emulator.set(down=LineSpec(delay_ms=5, loss_pct=loss_pct, jitter_ms=jitter_ms,
                                             seed=seed),
                               up=LineSpec(delay_ms=5, loss_pct=loss_pct, jitter_ms=jitter_ms,
                                           seed=seed + 1000))

    def call(self, codec: str = "G.711") -> dict[str, Any]:
        """The product's test-call unit at home: the ``network.test_call`` result."""
        proc = self.link.run(self.link.home, sys.executable, "-m", "tests.lab.call_client",
                             self.url, codec, check=False, timeout=120)
        assert proc.returncode == 0, proc.stderr
        result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
        assert result["status"] != "unknown", result
        return result

    def dropped(self) -> tuple[int, int]:
        """Packets of the stream the emulator dropped: towards the center, and back."""
        record = self.link.emulator.record()
        up = record.select("up", proto=UDP, dport=CENTER_UDP_PORT)
        down = record.select("down", proto=UDP, sport=CENTER_UDP_PORT)
        return int((record.dropped[up] != 0).sum()), int((record.dropped[down] != 0).sum())


@pytest.fixture(scope="module")
def lab() -> Iterator[CallLab]:
    with emulated_link() as link, serve_call_center(link) as url:
        yield CallLab(link, url)


def _mean(result: dict[str, Any]) -> float:
    d = result["details"]
    return (d["up"]["mos_lqo"] + d["down"]["mos_lqo"]) / 2


def test_clean_path_scores_as_the_codec_alone_and_loss_lowers_the_score(lab: CallLab) -> None:
    scores = {}
    for loss in (0.0, 1.0, 3.0, 8.0):
        lab.line(loss_pct=loss)
        result = lab.call()
        details = result["details"]
        up_dropped, down_dropped = lab.dropped()
        # the center's count of what never arrived is the emulator's (a count query after the
        # stream may itself be dropped: at most one such per try, three tries)
        assert 0 <= up_dropped - details["up"]["lost"] <= 3, (details, up_dropped)
        lost_down = details["down"]["lost"]
        assert 0 <= down_dropped - lost_down <= 3, (details, down_dropped)
        assert details["up"]["late"] == details["down"]["late"] == 0, details
        scores[loss] = _mean(result)
        if loss == 0.0:
            reference = details["reference_mos_lqo"]
            for way in ("up", "down"):
                assert details[way]["lost"] == 0
                assert abs(details[way]["mos_lqo"] - reference) <= CLEAN_MARGIN, details
            assert result["status"] == "pass", result
            # the E-model of the same seconds: a clean path, G.711 with PLC
            assert details["up"]["emodel_mos"] >= 4.3 and details["down"]["emodel_mos"] >= 4.3
    assert scores[0.0] > scores[1.0] > scores[3.0] > scores[8.0], scores


def test_jitter_inside_the_buffer_is_harmless_and_beyond_it_costs(lab: CallLab) -> None:
    lab.line()
    clean = lab.call()
    lab.line(jitter_ms=20)
    small = lab.call()
    lab.line(jitter_ms=60)
    edge = lab.call()
    lab.line(jitter_ms=150)
    large = lab.call()
    for way in ("up", "down"):
        assert small["details"][way]["late"] == 0, small
        assert small["details"][way]["lost"] == 0, small
        # U(0, 60) ms on a FIFO link never delays a packet more than 60 ms past the fastest:
        # at the edge of the 60 ms buffer, at most a stray packet (the machine's own
        # scheduling) comes late
        assert edge["details"][way]["late"] <= 3, edge
    assert abs(_mean(small) - _mean(clean)) <= 0.1, (small, clean)
    assert abs(_mean(edge) - _mean(clean)) <= CLEAN_MARGIN, (edge, clean)
    late = large["details"]["up"]["late"] + large["details"]["down"]["late"]
    assert late >= 30, large          # 150 ms: far beyond the buffer
    assert _mean(large) < _mean(clean) - 0.3, (large, clean)


def test_opus_scores_the_clean_path_as_opus_alone(lab: CallLab) -> None:
    lab.line()
    clean = lab.call("Opus")
    details = clean["details"]
    assert details["codec"] == "Opus"
    for way in ("up", "down"):
        assert abs(details[way]["mos_lqo"] - details["reference_mos_lqo"]) <= CLEAN_MARGIN
    lab.line(loss_pct=8.0)
    lossy = lab.call("Opus")
    assert _mean(lossy) < _mean(clean), (lossy, clean)


def test_agent_kit_check_runs_the_test_call_the_center_offers(lab: CallLab) -> None:
    lab.line()
    proc = lab.link.run(lab.link.home, sys.executable, "-m", "agent_kit.face.cli", "check",
                        "--only", "network", "--center", lab.url, "--json", "--lang", "en",
                        check=False, timeout=120)
    assert proc.returncode in (0, 1), proc.stderr
    checks = {c["id"]: c for c in json.loads(proc.stdout)["checks"]}
    call = checks["network.test_call"]
    assert call["status"] == "pass", call
    assert call["unit"] == "MOS" and call["details"]["codec"] == "G.711"
    assert call["message_id"].startswith("test call scored")
    assert checks["network.mos"]["status"] == "pass"
