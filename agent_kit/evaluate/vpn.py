"""Judge the VPN: is a tunnel up, and does the center's traffic go through it."""

from __future__ import annotations

from agent_kit.core.checks import VPN_CONNECTED, VPN_ROUTE
from agent_kit.core.i18n import M_, Msg
from agent_kit.core.levels import state_result, unknown_result
from agent_kit.core.policy import Policy
from agent_kit.core.results import CheckResult, Status
from probes.network.interfaces import is_loopback_address
from probes.network.vpn import VpnReading


def _start_vpn() -> Msg:
    return M_("Start your company VPN client and sign in; if it says connected, disconnect "
             "and connect again.")


def evaluate_vpn(reading: VpnReading, policy: Policy) -> list[CheckResult]:
    mode = policy.check(VPN_CONNECTED.id).params.get("mode", "required")
    split = policy.check(VPN_ROUTE.id).params.get("split_tunnel", "allowed")
    up = [t for t in reading.tunnels if t.is_up and t.addresses]
    details = {"tunnels": [t.name for t in up]}
    if mode == "off":
        return [state_result(VPN_CONNECTED.id, Status.PASS, None, policy,
                             message=M_("VPN not used by this policy")),
                state_result(VPN_ROUTE.id, Status.PASS, None, policy,
                             message=M_("VPN not used by this policy"))]
    if up:
        connected = state_result(VPN_CONNECTED.id, Status.PASS, True, policy,
                                 message=M_("VPN tunnel up ({tunnels})",
                                     tunnels=", ".join(t.name for t in up)),
                                 details=details)
    elif mode == "required":
        connected = state_result(VPN_CONNECTED.id, Status.FAIL, False, policy,
                                 message=M_("no VPN tunnel is up"), fix=_start_vpn(),
                                 details=details)
    else:
        connected = state_result(VPN_CONNECTED.id, Status.PASS, False, policy,
                                 message=M_("no VPN tunnel (optional in this policy)"))
    return [connected, _route(reading, policy, mode, split, bool(up))]


def _route(reading: VpnReading, policy: Policy, mode: str, split: str,
           tunnel_up: bool) -> CheckResult:
    details = {"center": reading.center_address, "interface": reading.center_interface,
               "default_interface": reading.default_interface}
    if reading.center_host is not None and reading.center_via_tunnel is None and not tunnel_up \
            and mode == "required":
        # No route to (or no name for) the center and no tunnel: the VPN being down is why.
        return state_result(VPN_ROUTE.id, Status.FAIL, None, policy,
                            message=M_("the center cannot be reached: {reason}; the VPN is "
                                      "down", reason=reading.problem),
                            fix=_start_vpn(), details=details)
    if reading.center_host is None or reading.center_via_tunnel is None:
        # The probe's reason is English (probes/ does not translate); the common case is ours.
        reason = M_("no center configured") if reading.center_host is None else reading.problem
        return unknown_result(VPN_ROUTE.id, policy,
                              M_("cannot tell: {reason}", reason=reason),
                              fix=None if reading.center_host is None else _start_vpn())
    if is_loopback_address(reading.center_address or ""):
        return state_result(VPN_ROUTE.id, Status.PASS, "local", policy,
                            message=M_("the center runs on this computer: no tunnel needed"),
                            details=details)
    if not reading.center_via_tunnel:
        if not tunnel_up and mode != "required":
            return state_result(VPN_ROUTE.id, Status.PASS, reading.center_interface, policy,
                                message=M_("center reached directly via {interface} (VPN "
                                          "optional)",
                                    interface=reading.center_interface),
                                details=details)
        why = (M_("the VPN is down") if not tunnel_up else
               M_("the VPN is up but the center is routed outside it (split tunnel "
                 "misconfigured)"))
        fix = (_start_vpn() if not tunnel_up else
               M_("Disconnect and reconnect the VPN so it installs its routes; if that does "
                 "not help, tell IT the VPN profile does not route the contact center."))
        return state_result(VPN_ROUTE.id, Status.FAIL, reading.center_interface, policy,
                            message=M_("center {address} is reached via {interface}: {why}",
                                address=reading.center_address,
                                interface=reading.center_interface, why=why),
                            fix=fix, details=details)
    if split == "forbidden" and reading.default_via_tunnel is False:
        return state_result(VPN_ROUTE.id, Status.FAIL, reading.center_interface, policy,
                            message=M_("center goes through {interface}, but other traffic leaves "
                                      "via {default} (split tunnel, forbidden by this "
                                      "policy)", interface=reading.center_interface,
                                                        default=reading.default_interface),
                            fix=M_("Turn off split tunnelling in the VPN client, or ask IT for "
                                  "the full-tunnel VPN profile."), details=details)
    return state_result(VPN_ROUTE.id, Status.PASS, reading.center_interface, policy,
                        message=M_("center {address} reached through the tunnel {interface}",
                            address=reading.center_address,
                            interface=reading.center_interface), details=details)
