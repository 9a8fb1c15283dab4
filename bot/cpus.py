"""Giving each local NLU server a CPU of its own, and the bot the rest.

On a small host the Rasa server and the bot compete for the same CPUs. Rasa's event loop is
the critical thread of every parse; when the scheduler parks it behind the bot's busy event
loop, throughput falls although the machine has CPU to spare. In one experiment on a 2-CPU
Intel host, pinned apart, the bot answered about 93 messages a second flat out instead of
about 70; on an AMD host, back to back, pinning made no clear difference either way (README,
"Benchmarks"). `CPU_PINNING=auto` (the default) pins when the bot starts its own NLU servers
and the machine has a CPU left for the bot once each server has one; otherwise nothing is
pinned. A "CPU" is a logical one: with hyperthreading, the last CPU may share a physical core
with the bot's. Only the bot's own processes are pinned; others on the host (PostgreSQL, say)
still run anywhere.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
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


def plan_cores(cores: Iterable[int], servers: int) -> CorePlan | None:
    """One CPU for each of `servers` NLU servers (the last ones), the rest for the bot.

    None when that leaves the bot no CPU: with as many servers as CPUs each server is
    better off free to use the whole machine.
    """
    ordered = sorted(cores)
    if servers < 1 or len(ordered) <= servers:
        return None
    nlu = tuple(frozenset({core}) for core in reversed(ordered[-servers:]))
    return CorePlan(bot=frozenset(ordered[:-servers]), nlu=nlu)


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
