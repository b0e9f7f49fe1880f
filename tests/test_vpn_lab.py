"""VPN checks against a REAL OpenVPN tunnel between a home and a center namespace."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent_kit.link.state_folder import Enrollment
from tests.lab.netns import CENTER_ADDR, NetnsPair, netns_pair
from tests.lab.openvpn import TUNNEL_CENTER, openvpn_tunnel, stop_home_end

pytestmark = [pytest.mark.lab, pytest.mark.timing]


def enroll_home(home: Path, center_url: str) -> None:
    """An enrollment file as `agent-kit enroll` writes it; the center need not answer."""
    home.mkdir(parents=True, exist_ok=True)
    (home / "enrollment.json").write_text(json.dumps(
        Enrollment(center_url=center_url, agent_id="a1", secret="s").__dict__))


def check_vpn(pair: NetnsPair, state_dir: Path) -> dict[str, dict]:
    import sys

    proc = pair.run(pair.home, "env", f"AGENT_KIT_HOME={state_dir}", sys.executable, "-m",
                    "agent_kit.face.cli", "check", "--only", "vpn", "--json", check=False)
    assert proc.returncode in (0, 1), proc.stderr
    return {c["id"]: c for c in json.loads(proc.stdout)["checks"]}


@pytest.fixture
def lab(tmp_path):
    with netns_pair() as pair:
        yield pair, tmp_path


def test_tunnel_up_and_center_through_it_passes(lab):
    pair, tmp = lab
    state = tmp / "state"
    enroll_home(state, f"http://{TUNNEL_CENTER}:8750")
    with openvpn_tunnel(pair, tmp) as dev:
        checks = check_vpn(pair, state)
        assert checks["vpn.connected"]["status"] == "pass", checks
        assert dev in checks["vpn.connected"]["message"]
        assert checks["vpn.route"]["status"] == "pass", checks
        assert checks["vpn.route"]["value"] == dev

        # The same center address, but reached outside the tunnel: misrouted split tunnel.
        enroll_home(state, f"http://{CENTER_ADDR}:8750")
        checks = check_vpn(pair, state)
        assert checks["vpn.connected"]["status"] == "pass"
        assert checks["vpn.route"]["status"] == "fail", checks
        assert "outside" in checks["vpn.route"]["message"]
        assert checks["vpn.route"]["fix"]

        # The tunnel drops (the home client stops): both fail with a fix.
        enroll_home(state, f"http://{TUNNEL_CENTER}:8750")
        stop_home_end(tmp)
        checks = check_vpn(pair, state)
        assert checks["vpn.connected"]["status"] == "fail", checks
        assert checks["vpn.route"]["status"] == "fail", checks
        for c in checks.values():
            assert "VPN" in c["fix"]


def test_no_tunnel_at_all_fails_with_a_fix(lab):
    pair, tmp = lab
    state = tmp / "state"
    enroll_home(state, f"http://{CENTER_ADDR}:8750")
    checks = check_vpn(pair, state)
    assert checks["vpn.connected"]["status"] == "fail"
    assert checks["vpn.route"]["status"] == "fail"
    assert "VPN is down" in checks["vpn.route"]["message"]
