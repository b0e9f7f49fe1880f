"""Judge the workstation reading: CPU, memory, disk, power, uptime."""

from __future__ import annotations

from agent_kit.core.checks import (
    SYSTEM_CPU,
    SYSTEM_DISK,
    SYSTEM_MEMORY,
    SYSTEM_POWER,
    SYSTEM_UPTIME,
)
from agent_kit.core.i18n import M_
from agent_kit.core.levels import level_result, state_result
from agent_kit.core.policy import Policy
from agent_kit.core.results import CheckResult, Status
from probes.system import SystemReading


def evaluate_system(reading: SystemReading, policy: Policy) -> list[CheckResult]:
    results = [_cpu(reading, policy)]
    results.append(level_result(
        SYSTEM_MEMORY.id, reading.memory_available_mb, policy, ndigits=0,
        message=M_("{available:.0f} MB of {total:.0f} MB memory available",
            available=reading.memory_available_mb, total=reading.memory_total_mb),
        fix_if_bad=M_("Close programs you do not need for calls (extra browser tabs, games, "
                     "video apps), or restart the computer."),
    ))
    results.append(level_result(
        SYSTEM_DISK.id, reading.disk_free_gb, policy, ndigits=1,
        message=M_("{free:.1f} GB free on {path}", free=reading.disk_free_gb,
                                                         path=reading.disk_path),
        fix_if_bad=M_("Free disk space: empty the recycle bin and delete large downloads."),
    ))
    results.append(_power(reading, policy))
    results.append(level_result(
        SYSTEM_UPTIME.id, reading.uptime_days, policy, ndigits=1,
        message=M_("restarted {days:.1f} days ago", days=reading.uptime_days),
        fix_if_bad=M_("Restart the computer before your shift so pending updates install."),
    ))
    return results


def _cpu(reading: SystemReading, policy: Policy) -> CheckResult:
    min_cores = int(policy.check(SYSTEM_CPU.id).params.get("min_cores", 1))
    cores = reading.logical_cores
    result = level_result(
        SYSTEM_CPU.id, reading.cpu_load_pct, policy, ndigits=1,
        message=M_("CPU {load:.0f} % busy on {cores} cores",
            load=reading.cpu_load_pct, cores=cores),
        fix_if_bad=M_("Close programs that keep the computer busy (video, games, large "
                     "downloads or updates), then run the check again."),
        details={"logical_cores": cores, "physical_cores": reading.physical_cores},
    )
    if cores < min_cores:
        return state_result(
            SYSTEM_CPU.id, Status.FAIL, reading.cpu_load_pct, policy,
            message=M_("only {cores} CPU core(s); the policy asks for at least {min}",
                cores=cores, min=min_cores),
            fix=M_("Ask IT for a computer that meets the workstation standard."),
            details=result.details,
        )
    return result


def _power(reading: SystemReading, policy: Policy) -> CheckResult:
    p = reading.power
    if not p.has_battery:
        return state_result(SYSTEM_POWER.id, Status.PASS, None, policy,
                            message=M_("no battery: mains powered"))
    if not p.on_battery:
        return state_result(SYSTEM_POWER.id, Status.PASS, p.charge_pct, policy,
                            message=M_("plugged in, battery at {charge:.0f} %",
                                charge=p.charge_pct))
    assert p.charge_pct is not None
    if p.minutes_left:
        message = M_("running on battery at {charge:.0f} %, about {minutes:.0f} minutes "
                    "left", charge=p.charge_pct, minutes=p.minutes_left)
    else:
        message = M_("running on battery at {charge:.0f} %", charge=p.charge_pct)
    return level_result(
        SYSTEM_POWER.id, p.charge_pct, policy, ndigits=0, message=message,
        fix_if_bad=M_("Plug the laptop into its charger for your shift."),
    )
