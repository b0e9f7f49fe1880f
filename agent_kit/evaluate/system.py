"""Judge the workstation reading: CPU, memory, disk, power, uptime."""

from __future__ import annotations

from agent_kit.evaluate import level_result, state_result
from agent_kit.policy import Policy
from agent_kit.results import CheckResult, Status
from probes.system import SystemReading


def evaluate_system(reading: SystemReading, policy: Policy) -> list[CheckResult]:
    results = [_cpu(reading, policy)]
    results.append(level_result(
        "system.memory", reading.memory_available_mb, policy, ndigits=0,
        message=f"{reading.memory_available_mb:.0f} MB of {reading.memory_total_mb:.0f} MB "
                "memory available",
        fix_if_bad="Close programs you do not need for calls (extra browser tabs, games, "
                   "video apps), or restart the computer.",
    ))
    results.append(level_result(
        "system.disk", reading.disk_free_gb, policy, ndigits=1,
        message=f"{reading.disk_free_gb:.1f} GB free on {reading.disk_path}",
        fix_if_bad="Free disk space: empty the recycle bin and delete large downloads.",
    ))
    results.append(_power(reading, policy))
    results.append(level_result(
        "system.uptime", reading.uptime_days, policy, ndigits=1,
        message=f"restarted {reading.uptime_days:.1f} days ago",
        fix_if_bad="Restart the computer before your shift so pending updates install.",
    ))
    return results


def _cpu(reading: SystemReading, policy: Policy) -> CheckResult:
    min_cores = int(policy.check("system.cpu").params.get("min_cores", 1))
    cores = reading.logical_cores
    result = level_result(
        "system.cpu", reading.cpu_load_pct, policy, ndigits=1,
        message=f"CPU {reading.cpu_load_pct:.0f} % busy on {cores} cores",
        fix_if_bad="Close programs that keep the computer busy (video, games, large downloads "
                   "or updates), then run the check again.",
        details={"logical_cores": cores, "physical_cores": reading.physical_cores},
    )
    if cores < min_cores:
        return state_result(
            "system.cpu", Status.FAIL, reading.cpu_load_pct, policy,
            message=f"only {cores} CPU core(s); the policy asks for at least {min_cores}",
            fix="Ask IT for a computer that meets the workstation standard.",
            details=result.details,
        )
    return result


def _power(reading: SystemReading, policy: Policy) -> CheckResult:
    p = reading.power
    if not p.has_battery:
        return state_result("system.power", Status.PASS, None, policy,
                            message="no battery: mains powered")
    if not p.on_battery:
        return state_result("system.power", Status.PASS, p.charge_pct, policy,
                            message=f"plugged in, battery at {p.charge_pct:.0f} %")
    assert p.charge_pct is not None
    left = f", about {p.minutes_left:.0f} minutes left" if p.minutes_left else ""
    return level_result(
        "system.power", p.charge_pct, policy, ndigits=0,
        message=f"running on battery at {p.charge_pct:.0f} %{left}",
        fix_if_bad="Plug the laptop into its charger for your shift.",
    )
