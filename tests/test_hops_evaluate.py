"""network.hops judged from constructed traceroutes (agent_kit.evaluate.hops)."""

from __future__ import annotations

from agent_kit.core.i18n import set_language
from agent_kit.core.policy import default_policy_text, load_policy, parse_policy_text
from agent_kit.core.results import Status
from agent_kit.evaluate.hops import evaluate_hops
from probes.network.traceroute import HopReading, TracerouteReading


def reading(*hops: tuple[str | None, int, float | None], reached: bool = True,
            problem: str | None = None, privileges: bool = False) -> TracerouteReading:
    rows = tuple(HopReading(ttl=n, address=a, sent=5, received=r, rtt_median_ms=rtt,
                            rtt_p95_ms=rtt, is_target=reached and n == len(hops))
                 for n, (a, r, rtt) in enumerate(hops, start=1))
    return TracerouteReading(target="198.51.100.2:8751", hops=rows, reached=reached,
                             duration_s=2.5, problem=problem, needs_privileges=privileges)


CLEAN = (("192.168.1.1", 5, 1.0), ("100.64.0.1", 5, 9.0), ("198.51.100.2", 5, 12.0))


def test_clean_passes_with_every_hop_in_details() -> None:
    res = evaluate_hops(reading(*CLEAN), load_policy())
    assert res.status is Status.PASS and res.value == "clean" and res.fix is None
    assert res.message.startswith("3 hops to the center")
    assert [h["segment"] for h in res.details["hops"]] == ["home", "isp", "beyond"]
    assert res.details["segment"] is None and not res.blocks


def test_loss_at_the_isp_warns_with_the_isps_fix() -> None:
    res = evaluate_hops(reading(("192.168.1.1", 5, 1.0), ("100.64.0.1", 3, 9.0),
                                ("198.51.100.2", 3, 12.0)), load_policy())
    assert res.status is Status.WARN and res.value == "isp" and res.details["loss_at"] == 2
    assert "40 % more probes lost from hop 2 (100.64.0.1)" in res.message
    assert res.fix and "internet provider" in res.fix and not res.blocks


def test_the_policy_levels_decide() -> None:
    lossy = reading(("192.168.1.1", 5, 1.0), ("100.64.0.1", 4, 9.0), ("198.51.100.2", 4, 12.0))
    assert evaluate_hops(lossy, load_policy()).status is Status.WARN     # 20 % >= 20
    text = default_policy_text().replace("loss_pct = 20", "loss_pct = 25")
    assert evaluate_hops(lossy, parse_policy_text(text)).status is Status.PASS


def test_unknown_without_privileges_or_answers() -> None:
    res = evaluate_hops(reading(problem="raw sockets need root", privileges=True),
                        load_policy())
    assert res.status is Status.UNKNOWN and "raw-socket privileges" in res.message
    assert res.fix and "CAP_NET_RAW" in res.fix and not res.blocks
    res = evaluate_hops(reading(reached=False, problem="no router answered"), load_policy())
    assert res.status is Status.UNKNOWN and "no router answered" in res.message
    assert res.fix is None


def test_messages_are_translated() -> None:
    set_language("sv")
    try:
        res = evaluate_hops(reading(("192.168.1.1", 3, 1.0), ("100.64.0.1", 3, 9.0),
                                    ("198.51.100.2", 3, 12.0)), load_policy())
    finally:
        set_language("en")
    assert res.message.startswith("förlusten börjar i ditt hemnätverk"), res.message
    assert res.fix and res.fix.startswith("Problemet börjar mellan"), res.fix


def test_the_segment_decides_the_path_checks_fixes() -> None:
    from agent_kit.evaluate.network import evaluate_network
    from tests.test_network_evaluate import reading as path_reading

    bad = path_reading(jitter=45.0, loss=5.0)
    plain = {r.id: r.fix for r in evaluate_network(bad, load_policy())}
    assert all("Wi-Fi" in (plain[c] or "") for c in ("network.loss", "network.jitter"))
    told = {r.id: r.fix or "" for r in evaluate_network(bad, load_policy(), loss_at="beyond",
                                                          delay_at="isp")}
    assert told["network.loss"].startswith("Packets to the center get lost")
    assert "Nothing at home will fix it" in told["network.loss"]
    assert "Weak Wi-Fi" not in told["network.loss"]
    assert "starts at your internet provider" in told["network.jitter"]
    assert "Nothing at home will fix it" in told["network.mos"]     # MOS here is loss-bound


# ------------------------------------------------------------ no contradiction (issue 16)

HOME_LOSS = (("192.168.1.1", 3, 1.0), ("100.64.0.1", 3, 9.0), ("198.51.100.2", 3, 12.0))


def test_no_loss_finding_when_the_stream_lost_nothing() -> None:
    """Routers that answer few probes while the stream to the center lost none: ICMP rate
    limits, not loss; the trace says the path is clean instead of blaming the home network."""
    res = evaluate_hops(reading(*HOME_LOSS), load_policy(), end_to_end_loss_pct=0.0)
    assert res.status is Status.PASS and res.value == "clean" and res.fix is None
    assert res.details["loss_at"] is None
    # the stream lost packets too: the same trace names where the loss starts
    res = evaluate_hops(reading(*HOME_LOSS), load_policy(), end_to_end_loss_pct=3.0)
    assert res.status is Status.WARN and res.value == "home"


def test_a_delay_finding_stays_when_the_stream_lost_nothing() -> None:
    slow = (("192.168.1.1", 5, 1.0), ("100.64.0.1", 5, 90.0), ("198.51.100.2", 5, 95.0))
    res = evaluate_hops(reading(*slow), load_policy(), end_to_end_loss_pct=0.0)
    assert res.status is Status.WARN and res.value == "isp" and res.details["delay_at"] == 2


def test_a_wired_link_gets_the_cable_and_router_fix_never_wifi() -> None:
    wired = evaluate_hops(reading(*HOME_LOSS), load_policy(), link_kind="wired")
    assert wired.value == "home" and wired.fix
    assert "Wi-Fi" not in wired.fix and "cable" in wired.fix and "router" in wired.fix
    for kind in ("wifi", None):
        fix = evaluate_hops(reading(*HOME_LOSS), load_policy(), link_kind=kind).fix
        assert fix and "Wi-Fi" in fix
