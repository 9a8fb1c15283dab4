"""Giving each local NLU server a core of its own, and the bot the rest.

On a small host the Rasa server and the bot compete for the same cores. Rasa's event loop is
the critical thread of every parse; when the scheduler parks it behind the bot's busy event
loop, throughput falls although the machine has CPU to spare. Pinned apart, on a 2-core host
the bot answered about 93 messages a second flat out instead of about 70 (README,
"Benchmarks"). `CPU_PINNING=auto` (the default) does this when the bot starts its own NLU
servers and the machine has a core left for the bot once each server has one; otherwise
nothing is pinned.
"""

from __future__ import annotations

import contextlib
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
    """The cores this process may run on (a container's cpuset, `taskset`, or all)."""
    return frozenset(os.sched_getaffinity(0))


def plan_cores(cores: Iterable[int], servers: int) -> CorePlan | None:
    """One core for each of `servers` NLU servers (the last ones), the rest for the bot.

    None when that leaves the bot no core: with as many servers as cores each server is
    better off free to use the whole machine.
    """
    ordered = sorted(cores)
    if servers < 1 or len(ordered) <= servers:
        return None
    nlu = tuple(frozenset({core}) for core in reversed(ordered[-servers:]))
    return CorePlan(bot=frozenset(ordered[:-servers]), nlu=nlu)


def pin_process(pid: int, cores: frozenset[int]) -> None:
    """Pin every thread `pid` has now; threads it starts later inherit their creator's cores.

    `sched_setaffinity` acts on one thread (Linux), so each task in /proc is pinned. A thread
    that ends meanwhile is skipped.
    """
    tasks = Path(f"/proc/{pid}/task")
    try:
        tids = [int(entry.name) for entry in tasks.iterdir()]
    except FileNotFoundError:
        tids = [pid]
    for tid in tids:
        with contextlib.suppress(ProcessLookupError):
            os.sched_setaffinity(tid, cores)


def process_cores(pid: int) -> frozenset[int]:
    """The cores `pid`'s main thread may run on; for logs and tests."""
    return frozenset(os.sched_getaffinity(pid))
