"""The "path" probe unit: no center, an unreachable center, and a real reflector on loopback."""

from __future__ import annotations

from agent_kit.center.reflector import start_reflector
from agent_kit.core.policy import load_policy
from agent_kit.core.results import Status
from agent_kit.link.discovery import CenterTarget, unreachable_center
from agent_kit.run.runner import run_checks
from agent_kit.run.units import PATH_DURATION_S, TRACEROUTE_BUDGET_S, UNITS, ProbeContext

IDS = ["network.rtt", "network.jitter", "network.loss", "network.mos", "network.hops"]


def unit():
    return next(u for u in UNITS if u.name == "path")


def test_unit_shape() -> None:
    u = unit()
    assert u.group == "network" and list(u.check_ids) == IDS
    assert PATH_DURATION_S == 6.0 and TRACEROUTE_BUDGET_S == 3.0
    assert u.timeout_s == 6.0 + 5.0 + 3.0 + 2.0 and not u.exclusive


def test_no_center_is_unknown_for_every_check() -> None:
    report = run_checks([unit()], ProbeContext(policy=load_policy()))
    assert [c.id for c in report.checks] == IDS
    assert all(c.status is Status.UNKNOWN and c.message == "no center configured"
               for c in report.checks)


def test_unreachable_center_gives_its_problem() -> None:
    center = unreachable_center("https://center.example.com:8750",
                                "the center https://center.example.com:8750 does not answer")
    report = run_checks([unit()], ProbeContext(policy=load_policy(), center=center))
    assert all(c.status is Status.UNKNOWN and "does not answer" in c.message
               for c in report.checks)


def test_reflector_on_loopback_passes(tmp_path) -> None:
    f = tmp_path / "p.toml"
    f.write_text("[path]\nduration_s = 1\npacket_interval_ms = 20\n")
    with start_reflector("127.0.0.1", 0) as refl:
        center = CenterTarget(url="http://127.0.0.1:1", host="127.0.0.1", port=1,
                              reflector=refl.address, speedtest_url=None)
        report = run_checks([unit()], ProbeContext(policy=load_policy(f), center=center))
    res = {c.id: c for c in report.checks}
    assert res["network.loss"].value == 0.0 and res["network.loss"].details["sent"] == 50
    assert all(c.status is not Status.UNKNOWN for c in report.checks), report.checks
    # every packet timed, and counted by the reflector each way
    assert res["network.rtt"].details["samples"] == 50 and res["network.rtt"].value > 0
    assert res["network.loss"].details["direction"] == "up"
    assert res["network.loss"].details["reflected"] == 50
    assert res["network.mos"].details["loss_basis"] == "per_direction"
    # as root the traceroute runs too: one hop, the reflector itself, nothing lost
    hops = res["network.hops"]
    assert hops.status is Status.PASS and hops.value == "clean", hops
    assert [h["address"] for h in hops.details["hops"]] == ["127.0.0.1"]
    assert hops.details["hops"][0]["received"] == 5 and hops.details["reached"] is True


def test_traceroute_switched_off_is_unknown_and_does_not_block(tmp_path) -> None:
    f = tmp_path / "p.toml"
    f.write_text("[path]\nduration_s = 0.2\ntraceroute = false\n")
    with start_reflector("127.0.0.1", 0) as refl:
        report = run_checks([unit()], ProbeContext(policy=load_policy(f),
                                                   reflector=refl.address))
    hops = next(c for c in report.checks if c.id == "network.hops")
    assert hops.status is Status.UNKNOWN and "traceroute = false" in hops.message
    assert not hops.unknown_blocks and not hops.blocks


def test_no_reflector_answer_is_unknown_with_the_reason(tmp_path) -> None:
    """A closed UDP port on loopback: nothing comes back, so every path check says why; the
    traceroute still shows the host itself answering (port unreachable) at hop 1."""
    import socket

    f = tmp_path / "p.toml"
    f.write_text("[path]\nduration_s = 0.2\n")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    report = run_checks([unit()], ProbeContext(policy=load_policy(f),
                                               reflector=("127.0.0.1", port)))
    path = [c for c in report.checks if c.id != "network.hops"]
    assert len(path) == 4
    assert all(c.status is Status.UNKNOWN and "no answer from the reflector" in c.message
               for c in path)
    hops = next(c for c in report.checks if c.id == "network.hops")
    assert [h["address"] for h in hops.details["hops"]] == ["127.0.0.1"], hops
