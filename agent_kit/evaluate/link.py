"""Judge the link in use: a cable, Wi-Fi or a mobile modem."""

from __future__ import annotations

from agent_kit.core.checks import NETWORK_LINK
from agent_kit.core.i18n import M_, Msg
from agent_kit.core.levels import state_result, status_named, unknown_result
from agent_kit.core.policy import Policy
from agent_kit.core.results import CheckResult, Status
from probes.system import LinkReading


def evaluate_link(reading: LinkReading, policy: Policy) -> list[CheckResult]:
    params = policy.check(NETWORK_LINK.id).params
    details = {"interface": reading.interface, "reason": reading.kind_reason,
               "speed_mbps": reading.speed_mbps}
    if reading.interface is None or reading.kind is None:
        return [unknown_result(NETWORK_LINK.id, policy,
                               M_("cannot tell: {reason}", reason=reading.kind_reason),
                               fix=M_("Check that the computer is connected to your home "
                                     "network."))]
    iface: Msg | str = reading.interface
    if reading.speed_mbps:
        iface = M_("{interface} at {speed} Mbit/s", interface=reading.interface,
                   speed=reading.speed_mbps)
    if reading.kind == "wifi":
        return [state_result(
            NETWORK_LINK.id, status_named(params.get("wifi", "warn")), "wifi", policy,
            message=M_("Wi-Fi ({interface})", interface=iface),
            fix=M_("Connect the computer to your router with an Ethernet cable; Wi-Fi drops "
                  "packets when others at home use it or walls are in the way."),
            details=details)]
    if reading.kind == "cellular":
        return [state_result(
            NETWORK_LINK.id, status_named(params.get("cellular", "fail")), "cellular", policy,
            message=M_("mobile data ({interface})", interface=iface),
            fix=M_("Use your home fiber line with an Ethernet cable instead of mobile data."),
            details=details)]
    if reading.kind == "wired":
        return [state_result(NETWORK_LINK.id, Status.PASS, "wired", policy,
                             message=M_("wired ({interface})", interface=iface),
                             details=details)]
    return [state_result(
        NETWORK_LINK.id, Status.WARN, reading.kind, policy,
        message=M_("{interface}: {reason}; cannot tell cable from Wi-Fi",
            interface=reading.interface, reason=reading.kind_reason),
        fix=M_("Make sure the computer is connected to your router with an Ethernet cable."),
        details=details)]
