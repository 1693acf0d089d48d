"""What else used the CPU while a workload was measured: other processes, and the hypervisor (steal time).

The ratios assume the two libraries had the cores to themselves. On a shared VM another process or the host
can take a share of them for minutes (benchmarks/NOTES.md), and with the two sides taking turns that share
tilts the ratio only when it comes and goes, so a result that records it can be judged or re-measured.
Linux only (/proc/stat); elsewhere the shares are not recorded.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass

NOTICEABLE = 0.05  # a share of all cores' time above which `python -m benchmarks.run` warns


@dataclass(frozen=True)
class CpuClock:
    """Seconds at one moment: wall clock; all cores' busy and stolen time since boot; the CPU time of this
    process and of the children it has waited for (the benchmark's own work)."""
    wall: float
    busy: float
    steal: float
    own: float


def busy_and_steal_seconds(proc_stat: str, ticks_per_second: int) -> tuple[float, float]:
    """All cores' busy time (user, nice, system, irq, softirq; guest time is within user) and stolen time,
    from the text of /proc/stat."""
    name, *fields = proc_stat.splitlines()[0].split()
    if name != "cpu":
        raise ValueError(f"/proc/stat starts with {name!r}, not the all-cores 'cpu' line")
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(value) for value in fields[:8])
    return (user + nice + system + irq + softirq) / ticks_per_second, steal / ticks_per_second


def now() -> CpuClock | None:
    """The clocks now, or None where /proc/stat cannot be read."""
    try:
        with open("/proc/stat") as proc_stat:
            busy, steal = busy_and_steal_seconds(proc_stat.read(), os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError):
        return None
    times = os.times()
    return CpuClock(time.perf_counter(), busy, steal,
                    times.user + times.system + times.children_user + times.children_system)


def shares(before: CpuClock | None, after: CpuClock | None, cores: int) -> dict:
    """The shares of all cores' time between two readings that the hypervisor took (`cpu_steal_share`) and
    that other processes used (`cpu_busy_elsewhere_share`), or {} without readings. The kernel counts in
    ticks (10 ms), so each share is clipped to [0, 1]."""
    if before is None or after is None:
        return {}
    capacity = (after.wall - before.wall) * cores
    elsewhere = (after.busy - before.busy) - (after.own - before.own)
    return {"cpu_steal_share": _share(after.steal - before.steal, capacity),
            "cpu_busy_elsewhere_share": _share(elsewhere, capacity)}


def _share(seconds: float, capacity: float) -> float:
    return round(min(1.0, max(0.0, seconds / capacity)), 3)


def warning(row: dict) -> str | None:
    """A line for the table when something else took a noticeable share of the CPU during `row`."""
    taken = {key: row[key] for key in ("cpu_steal_share", "cpu_busy_elsewhere_share")
             if row.get(key, 0.0) > NOTICEABLE}
    if not taken:
        return None
    described = ", ".join(f"{'the hypervisor' if key == 'cpu_steal_share' else 'other processes'} "
                          f"{share:.0%}" for key, share in taken.items())
    return (f"  warning: during {row['workload']} {described} of the CPU went elsewhere; "
            f"its ratio may be tilted, measure it again with the machine to itself")
