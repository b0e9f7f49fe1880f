"""Judge the link in use: a cable, Wi-Fi or a mobile modem."""

from __future__ import annotations

from agent_kit.evaluate import state_result, status_named, unknown_result
from agent_kit.policy import Policy
from agent_kit.results import CheckResult, Status
from probes.system import LinkReading


def evaluate_link(reading: LinkReading, policy: Policy) -> list[CheckResult]:
    params = policy.check("network.link").params
    details = {"interface": reading.interface, "reason": reading.kind_reason,
               "speed_mbps": reading.speed_mbps}
    if reading.interface is None or reading.kind is None:
        return [unknown_result("network.link", policy, f"cannot tell: {reading.kind_reason}",
                               fix="Check that the computer is connected to your home network.")]
    speed = f" at {reading.speed_mbps} Mbit/s" if reading.speed_mbps else ""
    if reading.kind == "wifi":
        return [state_result(
            "network.link", status_named(params.get("wifi", "warn")), "wifi", policy,
            message=f"Wi-Fi ({reading.interface}{speed})",
            fix="Connect the computer to your router with an Ethernet cable; Wi-Fi drops "
                "packets when others at home use it or walls are in the way.",
            details=details)]
    if reading.kind == "cellular":
        return [state_result(
            "network.link", status_named(params.get("cellular", "fail")), "cellular", policy,
            message=f"mobile data ({reading.interface})",
            fix="Use your home fiber line with an Ethernet cable instead of mobile data.",
            details=details)]
    if reading.kind == "wired":
        return [state_result("network.link", Status.PASS, "wired", policy,
                             message=f"wired ({reading.interface}{speed})", details=details)]
    return [state_result(
        "network.link", Status.WARN, reading.kind, policy,
        message=f"{reading.interface}: {reading.kind_reason}; cannot tell cable from Wi-Fi",
        fix="Make sure the computer is connected to your router with an Ethernet cable.",
        details=details)]
