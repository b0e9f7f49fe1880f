"""The scored test call's parts without a network: the codec, the concealment, the jitter
buffer, the contract, the agent's record, the center's route and its score.

G.711 is held to sox's own mu-law (an independent implementation, libsox's G.711 tables); the
concealment to what G.711 Appendix I promises (a voiced frame continued, silence after 60 ms);
the score to ViSQOL itself (the codec alone scores what the route calls the reference).
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from agent_kit.center import g711
from agent_kit.center.jitter_buffer import play_out
from agent_kit.core.wire.test_call import (
    CallScore,
    DirectionScore,
    ReceiveRecord,
    RecordError,
    CallOffer,
    parse_offer,
    parse_record,
    parse_score,
)
from agent_kit.link.test_call import receive_record

ROOT = Path(__file__).resolve().parents[1]


# ---- G.711 mu-law --------------------------------------------------------------------------
def _sox_ulaw(pcm: np.ndarray) -> np.ndarray:
    sox = shutil.which("sox")   # -D: no dither (sox dithers when it lowers the precision)
    assert sox, "sox is a lab tool (scripts/install-deps.sh test)"
    out = subprocess.run([sox, "-D", "-t", "raw", "-e", "signed", "-b", "16", "-c", "1", "-r",
                          "8000", "-", "-t", "raw", "-e", "mu-law", "-b", "8", "-"],
                         input=pcm.astype("<i2").tobytes(), capture_output=True, check=True)
    return np.frombuffer(out.stdout, dtype=np.uint8)


def test_ulaw_encoding_is_sox_s_for_every_16_bit_value():
    every = np.arange(-32768, 32768, dtype=np.int32).astype(np.int16)
    assert np.array_equal(g711.ulaw_encode(every), _sox_ulaw(every))


def test_ulaw_decoding_is_the_g711_table_and_inverts_the_encoding():
    codes = np.arange(256, dtype=np.uint8)
    decoded = g711.ulaw_decode(codes)
    # G.711 Table 2a: 0x80 and 0x00 are the extremes, 0xFF and 0x7F the two zeros
    assert decoded[0x80] == 32124 and decoded[0x00] == -32124
    assert decoded[0xFF] == 0 and decoded[0x7F] == 0
    assert np.array_equal(g711.ulaw_encode(decoded)[codes != 0x7F], codes[codes != 0x7F])
    # a step's error is at most half of it: 1 % of full scale at the loudest segment
    x = np.arange(-32000, 32000, 37, dtype=np.int16)
    err = np.abs(g711.ulaw_decode(g711.ulaw_encode(x)).astype(int) - x)
    assert err.max() <= 512


# ---- G.711 Appendix I concealment ------------------------------------------------------------
def _voiced(seconds: float, f0: float = 125.0) -> np.ndarray:
    t = np.arange(int(seconds * 8000)) / 8000
    return 8000 * (np.sin(2 * np.pi * f0 * t) + 0.5 * np.sin(2 * np.pi * 2 * f0 * t))


def _conceal(signal: np.ndarray, lost_frames: set[int]) -> np.ndarray:
    c = g711.Concealer()
    for i in range(len(signal) // g711.FRAME):
        if i in lost_frames:
            c.lost()
        else:
            c.good(signal[i * g711.FRAME:(i + 1) * g711.FRAME])
    return c.output()


def test_one_lost_frame_of_a_voiced_sound_is_continued_from_its_pitch():
    x = _voiced(0.5)
    out = _conceal(x, {20})
    assert len(out) == len(x)
    lost = slice(20 * g711.FRAME, 21 * g711.FRAME)
    corr = np.corrcoef(out[lost], x[lost])[0, 1]
    assert corr > 0.95, corr
    # the level is kept in the first 10 ms (attenuation starts with the second lost frame)
    assert np.std(out[lost]) == pytest.approx(np.std(x[lost]), rel=0.15)
    silence = _conceal(x, {20}) - _conceal(x, set())
    assert np.abs(silence[:19 * g711.FRAME]).max() == 0   # nothing before the loss changes


def test_a_long_loss_fades_then_goes_silent_after_60_ms():
    x = _voiced(0.6)
    out = _conceal(x, set(range(20, 30)))     # 100 ms lost
    levels = [np.std(out[i * g711.FRAME:(i + 1) * g711.FRAME]) for i in range(20, 30)]
    assert levels[1] < levels[0] and levels[4] < levels[2]    # 20 % per 10 ms
    assert max(levels[6:]) == 0.0                              # silent after 60 ms
    # the first good frame fades the real signal in (the overlap-add with silence), the next
    # one is the real signal again
    first = slice(30 * g711.FRAME, 31 * g711.FRAME)
    assert 0 < np.std(out[first]) < np.std(x[first])
    after = slice(31 * g711.FRAME, 32 * g711.FRAME)
    assert np.allclose(out[after], x[after])


# ---- the jitter buffer ------------------------------------------------------------------------
def test_a_packet_later_than_the_buffer_allows_is_late_and_not_played():
    transit = [10.0, 12.0, 11.0, None, 10.5, 69.9, 70.1, 10.0]
    fate = play_out(transit, 60)
    assert fate.played == (True, True, True, False, True, True, False, True)
    assert (fate.lost, fate.late, fate.concealed) == (1, 1, 2)
    # the anchor is the fastest of the first five received, not the first packet alone
    assert play_out([30.0, 10.0, 10.0, 71.0], 60).played == (True, True, True, False)
    assert play_out([None, None], 60).lost == 2


# ---- the contract -----------------------------------------------------------------------------
OFFER = CallOffer("/api/v1/test-call", "en-1", 0.1, 20,
                      parse_offer({"path": "/x", "clip": "c", "duration_s": 1, "packet_ms": 20,
                                   "codecs": [{"name": "G.711", "payload_bytes": 160}]}).codecs)


def test_the_offer_round_trips_and_a_malformed_one_is_no_offer():
    assert parse_offer(OFFER.to_json()) == OFFER
    assert OFFER.packets == 5 and OFFER.codec("G.711").payload_bytes == 160
    assert OFFER.codec("Opus") is None
    for bad in (None, [], {"path": "x"}, {**OFFER.to_json(), "path": "no-slash"},
                {**OFFER.to_json(), "duration_s": 0}, {**OFFER.to_json(), "codecs": []},
                {**OFFER.to_json(), "codecs": [{"name": "G.729", "payload_bytes": 20}]}):
        assert parse_offer(bad) is None, bad


def test_a_record_round_trips_and_anything_off_contract_is_refused():
    record = ReceiveRecord("G.711", "en-1", 20, 60, (1.0, None, 2.5), (3.0, 4.0, None), 1, 0)
    assert parse_record(json.loads(json.dumps(record.to_json()))) == record
    good = record.to_json()
    for bad, why in (
            ({**good, "agent": "x"}, "unknown keys"),
            ({**good, "codec": "G.729"}, "codec"),
            ({**good, "up_transit_ms": [1.0, 2.0]}, "one entry per packet"),
            ({**good, "up_transit_ms": [1.0, "2", 3.0]}, "holds"),
            ({**good, "up_transit_ms": [1.0, True, 3.0]}, "holds"),
            ({**good, "down_transit_ms": [1e9, 1.0, 1.0]}, "holds"),
            ({**good, "jitter_buffer_ms": 5}, "jitter_buffer_ms"),
            ({**good, "assumed_up": 4}, "assumed_up"),
            ({**good, "up_transit_ms": []}, "list of 1.."),
            ([], "object")):
        with pytest.raises(RecordError, match=why):
            parse_record(bad)
    # NaN is not JSON the center reads as a number: json.loads gives float('nan')
    with pytest.raises(RecordError):
        parse_record({**good, "up_transit_ms": [1.0, math.nan, 2.0]})


def test_a_score_is_checked_before_the_agent_believes_it():
    way = DirectionScore(4.0, 300, 1, 0, 20.0)
    score = CallScore("G.711", "en-1", "visqol", 4.1, 60, 1.5, way, way)
    assert parse_score(json.loads(json.dumps(score.to_json()))) == score
    with pytest.raises(RecordError):
        parse_score({**score.to_json(), "up": {**way.to_json(), "mos_lqo": 7}})
    with pytest.raises(RecordError):
        parse_score({**score.to_json(), "down": None})


def test_the_agent_fills_in_what_it_cannot_see_and_counts_it():
    up = (10.0, None, None, 12.0, None)
    down = (5.0, None, None, 7.0, None)
    reached = (True, True, False, True, False)   # 1: echo lost; 2 and 4: lost on the way
    record = receive_record(up, down, reached, codec="G.711", offer=OFFER, jitter_buffer_ms=60)
    assert record.up_transit_ms == (10.0, 11.0, None, 12.0, None)
    assert record.down_transit_ms == (5.0, None, 6.0, 7.0, 6.0)
    assert (record.assumed_up, record.assumed_down) == (1, 2)
    # a reflector that does not count: a missing echo is lost both ways
    blind = receive_record(up, down, None, codec="G.711", offer=OFFER, jitter_buffer_ms=60)
    assert blind.up_transit_ms == (10.0, None, None, 12.0, None)
    assert blind.down_transit_ms == (5.0, None, None, 7.0, None)
    # numbers only: the record has no room for audio
    body = json.dumps(record.to_json())
    assert set(json.loads(body)) == {"codec", "clip", "packet_ms", "jitter_buffer_ms",
                                     "up_transit_ms", "down_transit_ms", "assumed_up",
                                     "assumed_down"}


def test_the_agent_s_test_call_never_loads_the_audio_stack_or_the_scorer():
    """Privacy: the microphone takes no part in the test call (audio never leaves memory
    because the test call has none on the agent); the scorer stays at the center."""
    code = ("import sys; import agent_kit.run.units, agent_kit.link.test_call, "
            "agent_kit.evaluate.test_call, probes.network.path; "
            "bad = [m for m in ('sounddevice', 'probes.audio.capture', 'visqol', 'opuslib', "
            "'scipy', 'agent_kit.center.call_score') if m in sys.modules]; print(bad)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=ROOT, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin"})
    assert out.stdout.strip() == "[]", out.stdout


# ---- the center: ViSQOL and the route ---------------------------------------------------------
@pytest.fixture(scope="module")
def scorer():
    from agent_kit.center.call_score import CallScorer

    return CallScorer()


def test_the_codec_alone_is_the_reference_and_losses_score_lower(scorer):
    n = scorer.packets
    clean = ReceiveRecord("G.711", scorer.clip_name, 20, 60, (10.0,) * n, (10.0,) * n)
    score = scorer.score(clean)
    assert score.up.mos_lqo == pytest.approx(score.reference_mos_lqo, abs=1e-6)
    assert score.up.lost == score.down.lost == 0
    assert 3.0 < score.reference_mos_lqo <= 5.0
    rng = np.random.default_rng(7)
    lossy = tuple(None if rng.random() < 0.08 else 10.0 for _ in range(n))
    late = tuple(80.0 if i % 10 == 5 else 10.0 for i in range(n))
    worse = scorer.score(ReceiveRecord("G.711", scorer.clip_name, 20, 60, lossy, late))
    assert worse.up.lost == sum(t is None for t in lossy) and worse.up.late == 0
    assert worse.down.late == n // 10 and worse.down.lost == 0
    assert worse.up.mos_lqo < score.up.mos_lqo - 0.3
    assert worse.down.mos_lqo < score.down.mos_lqo - 0.3
    assert worse.down.concealed_ms == 20.0 * worse.down.late


def test_the_route_scores_refuses_and_throttles(scorer):
    import asyncio

    import httpx
    from starlette.applications import Starlette

    from agent_kit.center import test_call_route
    from agent_kit.center.throttle import SourceBudgets

    app = Starlette()
    offer = test_call_route.add_test_call_route(app, SourceBudgets(2, 1e-6))
    assert offer is not None and offer.codec("G.711") is not None
    assert offer.packets == scorer.packets and offer.clip == scorer.clip_name
    n = offer.packets
    record = ReceiveRecord("G.711", offer.clip, 20, 60, (5.0,) * n, (5.0,) * n).to_json()

    async def calls() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app, client=("192.0.2.9", 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://center") as client:
            post = client.post
            return [
                await post(offer.path, json={**record, "up_transit_ms": [1.0]}),
                await post(offer.path, content=b"{"),
                await post(offer.path, content=b"[" * 30000 + b"]" * 30000),
                await post(offer.path, content=b"\xff\xfe"),
                await post(offer.path, content=b"x" * 70000),
                await post(offer.path, json={**record, "up_transit_ms": [1.0] * 3,
                                             "down_transit_ms": [1.0] * 3}),
                await post(offer.path, json=record),
                await post(offer.path, json=record)]

    bad, broken, deep, binary, large, short, ok, over = asyncio.run(calls())
    assert bad.status_code == 422 and bad.json()["error"] == "bad_record"
    assert broken.status_code == 400 and broken.json()["error"] == "bad_json"
    assert deep.status_code == 400, deep.text    # no 500 for a nesting bomb
    assert binary.status_code == 400
    assert large.status_code == 413
    assert short.status_code == 422 and "packets" in short.json()["detail"]
    assert ok.status_code == 200, ok.text
    got = parse_score(ok.json())
    assert got.up.mos_lqo == pytest.approx(got.reference_mos_lqo, abs=1e-6)
    # two tokens: the short record (refused by the scorer) took one, the score the other
    assert over.status_code == 429 and "Retry-After" in over.headers


# ---- the judgement and the unit ---------------------------------------------------------------
def _score(up: float, down: float, *, lost: int = 0, late: int = 0,
           reference: float = 4.4) -> CallScore:
    return CallScore("G.711", "en-1", "visqol", reference, 60, 1.5,
                     DirectionScore(up, 300, 0, 0, 0.0),
                     DirectionScore(down, 300, lost, late, 20.0 * (lost + late)))


def test_the_worse_direction_is_judged_beside_the_e_model_of_the_same_stream():
    from agent_kit.core.policy import load_policy
    from agent_kit.evaluate.test_call import evaluate_test_call
    from tests.test_network_evaluate import reading

    policy = load_policy()
    good = evaluate_test_call(_score(4.3, 4.25), reading(), policy)
    assert good.status.value == "pass" and good.value == 4.25 and good.fix is None
    assert good.details["direction"] == "down"
    assert good.details["up"]["emodel_mos"] == pytest.approx(4.41, abs=0.02)
    assert "the E-model estimate of the same seconds: 4.41" in good.message
    lossy = evaluate_test_call(_score(4.3, 3.0, lost=12), reading(loss_down=4.0), policy)
    assert lossy.status.value == "fail" and "got lost on the way" in lossy.fix
    assert lossy.details["down"]["emodel_mos"] < lossy.details["up"]["emodel_mos"]
    late = evaluate_test_call(_score(4.3, 3.8, late=9, lost=1), reading(), policy,
                              link_kind="wired")
    assert late.status.value == "warn" and "too unevenly" in late.fix
    assert "Wi-Fi" not in late.fix and "restart your router" in late.fix
    codec = evaluate_test_call(_score(3.0, 3.0, reference=3.0), reading(), policy)
    assert "alone scores 3.00" in codec.fix and "IT" in codec.fix


def test_the_call_unit_runs_only_where_the_center_offers_it_and_rarely():
    import dataclasses

    from agent_kit.core.checks import NETWORK_TEST_CALL
    from agent_kit.link.discovery import CenterTarget
    from agent_kit.loop.monitor import cadence_for
    from agent_kit.run.units import UNITS, offered_units

    call = next(u for u in UNITS if u.name == "call")
    assert call.check_ids == (NETWORK_TEST_CALL.id,) and call.exclusive and call.needs_center
    names = [u.name for u in UNITS if u.exclusive]
    assert names.index("call") < names.index("bandwidth")   # before the line is loaded
    without = CenterTarget(url="http://c:8750", host="c", port=8750, reflector=("c", 8751),
                           speedtest_url=None)
    offering = dataclasses.replace(without, test_call=OFFER)
    assert call not in offered_units(UNITS, None)
    assert call not in offered_units(UNITS, without)
    assert call in offered_units(UNITS, offering)
    assert len(offered_units(UNITS, without)) == len(UNITS) - 1
    cadence = cadence_for(call, 15.0)
    assert cadence.every_s >= 3600 and cadence.skip_in_call


def test_a_jitter_buffer_outside_its_range_is_a_policy_error(tmp_path):
    from agent_kit.core.policy import PolicyError, load_policy

    site = tmp_path / "site.toml"
    site.write_text('[checks."network.test_call"]\njitter_buffer_ms = 5\n')
    with pytest.raises(PolicyError, match="20..400"):
        load_policy(site)
    site.write_text('[checks."network.test_call"]\ncodec = "G.729"\n')
    with pytest.raises(PolicyError, match="G.711"):
        load_policy(site)
