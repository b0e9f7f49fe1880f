"""VPN judgement from readings (pure); the real tunnel is in test_vpn_lab.py."""

from __future__ import annotations

import pytest

from agent_kit.core.policy import load_policy
from agent_kit.core.results import Status
from agent_kit.evaluate.vpn import evaluate_vpn
from probes.network.vpn import TunnelInfo, VpnReading

TUN = TunnelInfo("tun0", True, ("10.8.0.2",), "tun/tap device (VPN client)")


def reading(tunnels=(TUN,), center="10.8.0.1", iface="tun0", via=True, default_if="eth0",
            default_via=False, problem=None):
    return VpnReading(tuple(tunnels), center, center, iface, via, default_if, default_via,
                      problem)


def policy(tmp_path, mode="required", split="allowed"):
    f = tmp_path / "p.toml"
    f.write_text(f'[checks."vpn.connected"]\nmode = "{mode}"\n'
                 f'[checks."vpn.route"]\nsplit_tunnel = "{split}"\n')
    return load_policy(f)


def statuses(results):
    return {r.id: r.status for r in results}


def test_tunnel_up_and_center_through_it_passes(tmp_path):
    res = evaluate_vpn(reading(), policy(tmp_path))
    assert statuses(res) == {"vpn.connected": Status.PASS, "vpn.route": Status.PASS}


def test_no_tunnel_fails_when_required_with_a_fix(tmp_path):
    res = evaluate_vpn(reading(tunnels=(), iface="eth0", via=False), policy(tmp_path))
    assert statuses(res) == {"vpn.connected": Status.FAIL, "vpn.route": Status.FAIL}
    assert all("VPN" in r.fix for r in res)


def test_center_outside_the_tunnel_is_a_misrouted_split_tunnel(tmp_path):
    res = {r.id: r for r in evaluate_vpn(reading(iface="eth0", via=False), policy(tmp_path))}
    assert res["vpn.connected"].status is Status.PASS
    assert res["vpn.route"].status is Status.FAIL
    assert "outside" in res["vpn.route"].message and res["vpn.route"].fix


def test_split_tunnel_forbidden(tmp_path):
    res = statuses(evaluate_vpn(reading(), policy(tmp_path, split="forbidden")))
    assert res["vpn.route"] is Status.FAIL
    full = statuses(evaluate_vpn(reading(default_if="tun0", default_via=True),
                                 policy(tmp_path, split="forbidden")))
    assert full["vpn.route"] is Status.PASS


@pytest.mark.parametrize("mode", ["optional", "off"])
def test_optional_and_off_modes_pass_without_a_tunnel(tmp_path, mode):
    res = statuses(evaluate_vpn(reading(tunnels=(), iface="eth0", via=False),
                                policy(tmp_path, mode=mode)))
    assert res == {"vpn.connected": Status.PASS, "vpn.route": Status.PASS}


def test_no_center_makes_route_unknown(tmp_path):
    r = VpnReading((TUN,), None, None, None, None, "eth0", False, "no center configured")
    res = {x.id: x for x in evaluate_vpn(r, policy(tmp_path))}
    assert res["vpn.route"].status is Status.UNKNOWN
    assert "no center configured" in res["vpn.route"].message


def test_no_center_reason_is_translated(tmp_path):
    """The probe's reason is English; the evaluator words the no-center case in the language."""
    from agent_kit.core import i18n
    r = VpnReading((TUN,), None, None, None, None, "eth0", False, "no center configured")
    try:
        i18n.set_language("ja")
        message = {x.id: x for x in evaluate_vpn(r, policy(tmp_path))}["vpn.route"].message
    finally:
        i18n.set_language("en")
    assert "no center configured" not in message
    assert "センターが設定されていません" in message


def test_local_center_needs_no_tunnel(tmp_path):
    r = VpnReading((), "127.0.0.1", "127.0.0.1", "lo", False, "eth0", False, None)
    res = {x.id: x for x in evaluate_vpn(r, policy(tmp_path))}
    assert res["vpn.route"].status is Status.PASS


def test_unreachable_center_with_the_vpn_down_fails(tmp_path):
    r = VpnReading((), "10.8.0.1", "10.8.0.1", None, None, "eth0", False,
                   "no route to the center (10.8.0.1)")
    res = {x.id: x for x in evaluate_vpn(r, policy(tmp_path))}
    assert res["vpn.route"].status is Status.FAIL
    assert "VPN is down" in res["vpn.route"].message and res["vpn.route"].fix
