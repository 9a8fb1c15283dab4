"""Giving each local NLU server a CPU of its own, and the bot the rest.

On a small host the Rasa server and the bot compete for the same CPUs. Rasa's event loop is
the critical thread of every parse; when the scheduler parks it behind the bot's busy event
loop, throughput falls although the machine has CPU to spare. In one experiment on a 2-CPU
Intel host, pinned apart, the bot answered about 93 messages a second flat out instead of
about 70; on an AMD host, back to back, pinning made no clear difference either way (README,
"Benchmarks"). `CPU_PINNING=auto` (the default) pins when the bot starts its own NLU servers
and the machine has a CPU left for the bot once each server has one; otherwise nothing is
pinned. A "CPU" is a logical one: with hyperthreading, a server's CPU may share a physical core
with one of the bot's. Only the bot's own processes are pinned; others on the host (PostgreSQL,
say) still run anywhere.

The NLU servers get the CPUs that serve the fewest device interrupts. A VM often routes its
disk's interrupts to one CPU; every commit's fsync then interrupts whatever runs there. On a
2-CPU Firecracker host whose disk interrupted CPU 1 (the one the NLU server used to get), the
bot answered 85-97% of Rasa's own throughput flat out on PostgreSQL with Rasa on CPU 1 and
95-101% with Rasa on CPU 0, three alternating pairs (README, "Benchmarks").
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CorePlan:
    """Which cores the bot keeps and which one each local NLU server gets."""

    bot: frozenset[int]
    nlu: tuple[frozenset[int], ...]


def available_cores() -> frozenset[int]:
    """The CPUs this process may run on (a container's cpuset, `taskset`, or all); empty
    where the system cannot say (no `sched_getaffinity`), which turns pinning off."""
    getaffinity = getattr(os, "sched_getaffinity", None)
    if getaffinity is None:
        return frozenset()
    return frozenset(getaffinity(0))


def plan_cores(
    cores: Iterable[int], servers: int, interrupts: Mapping[int, int] | None = None
) -> CorePlan | None:
    """One CPU for each of `servers` NLU servers, the rest for the bot.

    The servers get the CPUs with the fewest `interrupts` (`device_interrupts`). Counts are
    compared in steps of a tenth of the busiest CPU's count (at least 1,000): CPUs in the same
    step count as equally quiet, and among equals the last CPUs go first. None when that leaves the
    bot no CPU: with as many servers as CPUs each server is better off free to use the whole
    machine.
    """
    ordered = sorted(cores)
    if servers < 1 or len(ordered) <= servers:
        return None
    counts = {core: (interrupts or {}).get(core, 0) for core in ordered}
    margin = max(max(counts.values()) // 10, 1_000)
    floor = min(counts.values())
    quietest = sorted(ordered, key=lambda core: ((counts[core] - floor) // margin, -core))
    quietest = quietest[:servers]
    return CorePlan(
        bot=frozenset(ordered) - frozenset(quietest),
        nlu=tuple(frozenset({core}) for core in quietest),
    )


# Numbered rows that every CPU serves for itself on some platforms: timers and inter-processor
# interrupts (arm64's arch_timer and IPIs, Xen's per-CPU virqs, the PMU). Not a device's; "ipi"
# only as a word of its own, not inside a device's name ("mipi-dsi").
PER_CPU_SOURCES = re.compile(r"timer|(?<![a-z])ipi|arm-pmu|xen-percpu|resched|callfunc")


def device_interrupts(path: Path = Path("/proc/interrupts")) -> dict[int, int]:
    """Device interrupts (disks, network cards) each CPU has served since boot.

    The numbered rows of /proc/interrupts, except the per-CPU timers and inter-processor
    interrupts some platforms number too (`PER_CPU_SOURCES`); the named rows (LOC, RES, CAL,
    ...) are left out for the same reason: every CPU has those. The counts are cumulative since
    boot, so a routing changed since (irqbalance, an operator) shows only once the new CPU's
    count overtakes the old, and a 32-bit counter may have wrapped: a hint for placement, no
    more. Empty where the file cannot be read (not Linux, a sandbox), which leaves the choice
    to the CPUs' numbers.
    """
    try:
        lines = path.read_text(encoding="ascii", errors="replace").splitlines()
    except OSError:
        return {}
    if not lines:
        return {}
    cpus = [int(name[3:]) for name in lines[0].split() if name[3:].isdigit()]
    counts = dict.fromkeys(cpus, 0)
    for line in lines[1:]:
        label, _, rest = line.partition(":")
        if not label.strip().isdigit():
            continue
        fields = rest.split()
        source = " ".join(fields[len(cpus) :]).lower()
        if PER_CPU_SOURCES.search(source):
            continue
        for cpu, field in zip(cpus, fields, strict=False):
            if not field.isdigit():
                break
            counts[cpu] += int(field)
    return counts


def pin_process(pid: int, cores: frozenset[int]) -> bool:
    """Pin every thread of `pid`; threads it starts later inherit their creator's CPUs.

    `sched_setaffinity` acts on one thread (Linux), so each task in /proc is pinned, and the
    list is read again until no new thread has appeared meanwhile. A thread that ends
    meanwhile is skipped. False, with a warning, when the system refuses (a seccomp profile,
    a cpuset that shrank): pinning is an optimisation, never a reason to stop.
    """
    tasks = Path(f"/proc/{pid}/task")
    pinned: set[int] = set()
    for _ in range(10):
        try:
            tids = {int(entry.name) for entry in tasks.iterdir()}
        except FileNotFoundError:
            tids = {pid}
        if tids <= pinned:
            return True
        for tid in tids - pinned:
            try:
                os.sched_setaffinity(tid, cores)
            except ProcessLookupError:
                pass
            except (OSError, AttributeError) as exc:
                log.warning("CPU pinning of process %d to %s failed: %s", pid, sorted(cores), exc)
                return False
        pinned |= tids
    return True
