"""Judge the workstation reading: CPU, memory, disk, power, uptime."""

from __future__ import annotations

from agent_kit.core.checks import (
    SYSTEM_CPU,
    SYSTEM_DISK,
    SYSTEM_MEMORY,
    SYSTEM_POWER,
    SYSTEM_UPTIME,
)
from agent_kit.core.i18n import _
from agent_kit.core.levels import level_result, state_result
from agent_kit.core.policy import Policy
from agent_kit.core.results import CheckResult, Status
from probes.system import SystemReading


def evaluate_system(reading: SystemReading, policy: Policy) -> list[CheckResult]:
    results = [_cpu(reading, policy)]
    results.append(level_result(
        SYSTEM_MEMORY.id, reading.memory_available_mb, policy, ndigits=0,
        message=_("{available:.0f} MB of {total:.0f} MB memory available").format(
            available=reading.memory_available_mb, total=reading.memory_total_mb),
        fix_if_bad=_("Close programs you do not need for calls (extra browser tabs, games, "
                     "video apps), or restart the computer."),
    ))
    results.append(level_result(
        SYSTEM_DISK.id, reading.disk_free_gb, policy, ndigits=1,
        message=_("{free:.1f} GB free on {path}").format(free=reading.disk_free_gb,
                                                         path=reading.disk_path),
        fix_if_bad=_("Free disk space: empty the recycle bin and delete large downloads."),
    ))
    results.append(_power(reading, policy))
    results.append(level_result(
        SYSTEM_UPTIME.id, reading.uptime_days, policy, ndigits=1,
        message=_("restarted {days:.1f} days ago").format(days=reading.uptime_days),
        fix_if_bad=_("Restart the computer before your shift so pending updates install."),
    ))
    return results


def _cpu(reading: SystemReading, policy: Policy) -> CheckResult:
    min_cores = int(policy.check(SYSTEM_CPU.id).params.get("min_cores", 1))
    cores = reading.logical_cores
    result = level_result(
        SYSTEM_CPU.id, reading.cpu_load_pct, policy, ndigits=1,
        message=_("CPU {load:.0f} % busy on {cores} cores").format(
            load=reading.cpu_load_pct, cores=cores),
        fix_if_bad=_("Close programs that keep the computer busy (video, games, large "
                     "downloads or updates), then run the check again."),
        details={"logical_cores": cores, "physical_cores": reading.physical_cores},
    )
    if cores < min_cores:
        return state_result(
            SYSTEM_CPU.id, Status.FAIL, reading.cpu_load_pct, policy,
            message=_("only {cores} CPU core(s); the policy asks for at least {min}").format(
                cores=cores, min=min_cores),
            fix=_("Ask IT for a computer that meets the workstation standard."),
            details=result.details,
        )
    return result


def _power(reading: SystemReading, policy: Policy) -> CheckResult:
    p = reading.power
    if not p.has_battery:
        return state_result(SYSTEM_POWER.id, Status.PASS, None, policy,
                            message=_("no battery: mains powered"))
    if not p.on_battery:
        return state_result(SYSTEM_POWER.id, Status.PASS, p.charge_pct, policy,
                            message=_("plugged in, battery at {charge:.0f} %").format(
                                charge=p.charge_pct))
    assert p.charge_pct is not None
    if p.minutes_left:
        message = _("running on battery at {charge:.0f} %, about {minutes:.0f} minutes "
                    "left").format(charge=p.charge_pct, minutes=p.minutes_left)
    else:
        message = _("running on battery at {charge:.0f} %").format(charge=p.charge_pct)
    return level_result(
        SYSTEM_POWER.id, p.charge_pct, policy, ndigits=0, message=message,
        fix_if_bad=_("Plug the laptop into its charger for your shift."),
    )
