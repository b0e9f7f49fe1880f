"""The traceroute probe's parts that need no lab: privileges, bad input, its kernel filter."""

from __future__ import annotations

import select
import socket

import pytest

from probes.network.traceroute import (
    _attach_answer_filter,
    measure_hops,
    raw_socket_problem,
)


def test_bad_arguments_raise() -> None:
    for kwargs in ({"max_hops": 0}, {"max_hops": 65}, {"probes_per_hop": 0}, {"budget_s": 0}):
        with pytest.raises(ValueError):
            measure_hops("127.0.0.1", 9, **kwargs)  # type: ignore[arg-type]


def test_unresolvable_host_is_a_problem_not_an_exception() -> None:
    reading = measure_hops("no-such-host.invalid", 8751)
    assert reading.hops == () and not reading.reached and not reading.needs_privileges
    assert "cannot resolve" in (reading.problem or "")


def test_this_root_test_process_has_raw_sockets() -> None:
    # CI runs as root; tests/test_hops_lab.py shows the unprivileged side
    assert raw_socket_problem() is None


def test_the_kernel_filter_keeps_only_icmp_and_the_reflectors_udp() -> None:
    """A packet socket on loopback with the filter for 127.0.0.2 as the reflector: of UDP
    from 127.0.0.2 and from 127.0.0.3, only the first reaches it."""
    eth_p_ip = 0x0800
    with socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(eth_p_ip)) as packets, \
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sink:
        packets.bind(("lo", eth_p_ip))
        _attach_answer_filter(packets, "127.0.0.2", v6=False)
        sink.bind(("127.0.0.1", 0))
        for src, payload in (("127.0.0.3", b"other"), ("127.0.0.2", b"reflector")):
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
                sender.bind((src, 0))
                sender.sendto(payload, sink.getsockname())
        seen = []
        while select.select([packets], [], [], 0.3)[0]:
            seen.append(packets.recv(2048))
    assert seen and all(frame.endswith(b"reflector") for frame in seen), seen


def test_the_check_traces_by_default_and_the_lean_monitor_does_not() -> None:
    from agent_kit.core.policy import load_policy
    from agent_kit.loop.monitor import monitor_policy

    policy = load_policy()
    assert policy.setting("path", "traceroute", None) is True
    assert monitor_policy(policy).setting("path", "traceroute", None) is False


def test_ipv6_loopback_reflector_is_one_hop() -> None:
    from agent_kit.center.reflector import start_reflector

    with start_reflector("::1", 0) as refl:
        reading = measure_hops("::1", refl.address[1])
    assert reading.reached and reading.target == f"[::1]:{refl.address[1]}"
    assert [(h.address, h.received, h.sent, h.is_target) for h in reading.hops] == [
        ("::1", 5, 5, True)]


def test_the_policy_rejects_bad_traceroute_settings(tmp_path) -> None:
    from agent_kit.core.policy import PolicyError, load_policy

    for text, says in (('[path]\ntraceroute = "yes"\n', "must be true or false"),
                       ('[checks."network.hops"]\nloss_pct = "lots"\n', "a number, not str"),
                       ('[checks."network.hops"]\nwarn = 3\n', "judged by state")):
        f = tmp_path / "p.toml"
        f.write_text(text)
        with pytest.raises(PolicyError, match=says):
            load_policy(f)
