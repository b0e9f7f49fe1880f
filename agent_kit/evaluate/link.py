"""Judge the link in use: a cable, Wi-Fi or a mobile modem."""

from __future__ import annotations

from agent_kit.core.checks import NETWORK_LINK
from agent_kit.core.i18n import _
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
                               _("cannot tell: {reason}").format(reason=reading.kind_reason),
                               fix=_("Check that the computer is connected to your home "
                                     "network."))]
    iface = reading.interface
    if reading.speed_mbps:
        iface = _("{interface} at {speed} Mbit/s").format(interface=iface,
                                                          speed=reading.speed_mbps)
    if reading.kind == "wifi":
        return [state_result(
            NETWORK_LINK.id, status_named(params.get("wifi", "warn")), "wifi", policy,
            message=_("Wi-Fi ({interface})").format(interface=iface),
            fix=_("Connect the computer to your router with an Ethernet cable; Wi-Fi drops "
                  "packets when others at home use it or walls are in the way."),
            details=details)]
    if reading.kind == "cellular":
        return [state_result(
            NETWORK_LINK.id, status_named(params.get("cellular", "fail")), "cellular", policy,
            message=_("mobile data ({interface})").format(interface=iface),
            fix=_("Use your home fiber line with an Ethernet cable instead of mobile data."),
            details=details)]
    if reading.kind == "wired":
        return [state_result(NETWORK_LINK.id, Status.PASS, "wired", policy,
                             message=_("wired ({interface})").format(interface=iface),
                             details=details)]
    return [state_result(
        NETWORK_LINK.id, Status.WARN, reading.kind, policy,
        message=_("{interface}: {reason}; cannot tell cable from Wi-Fi").format(
            interface=reading.interface, reason=reading.kind_reason),
        fix=_("Make sure the computer is connected to your router with an Ethernet cable."),
        details=details)]
