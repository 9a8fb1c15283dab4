"""Peak memory and CPU of the processes under test, sampled with psutil."""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import psutil


@dataclass
class Usage:
    """One process (with its children) over the measured window."""

    name: str
    peak_rss_mb: float = 0.0
    cpu_percent: float = 0.0  # of one core, averaged over the window (200 = two cores busy)
    # The whole machine's entry only: what the host did to every process in the window.
    major_faults: int = 0  # pages read back from disk (e.g. after the host's memory reclaim)
    steal_percent: float = 0.0  # of one core: time the hypervisor gave our vCPUs to others


@dataclass
class Monitor:
    """Samples RSS every `interval` seconds; CPU is the cpu-time difference over the window.

    The window runs from `start` to `end_window` (or to `stop` if it was never ended): the
    load generator ends it when it stops driving, so that the wait for the last replies
    (up to the quiet-user timeout when a user was given up) does not dilute the CPU shares.
    Peak RSS covers everything up to `stop`.

    Listing a process's descendants reads every process's entry in /proc (psutil's
    `ppid_map`): 6 ms of CPU for three processes on a machine running 160, every sample, on
    the cores this process shares with the bot. Sampled four times a second, those bursts
    delayed the replies in flight; the trees are now listed again every `tree_refresh`
    seconds, and a sample reads only the known processes' own entries.
    """

    pids: dict[str, int]
    interval: float = 0.25
    tree_refresh: float = 2.0
    _usage: dict[str, Usage] = field(default_factory=dict)
    _cpu_start: dict[str, float] = field(default_factory=dict)
    _started: float = 0.0
    vmstat: Path = Path("/proc/vmstat")
    _machine_start: MachineCounters = field(
        default_factory=lambda: MachineCounters(0.0, 0.0, 0.0, 0)
    )
    _window: tuple[float, dict[str, float], MachineCounters] | None = None
    _task: asyncio.Task[None] | None = None
    _trees: dict[int, tuple[float, list[psutil.Process]]] = field(default_factory=dict)

    def _processes(self, pid: int) -> list[psutil.Process]:
        """`pid` and its descendants, as listed at most `tree_refresh` seconds ago."""
        now = time.monotonic()
        listed = self._trees.get(pid)
        if listed is not None and now - listed[0] < self.tree_refresh:
            return listed[1]
        try:
            root = psutil.Process(pid)
            tree = [root, *root.children(recursive=True)]
        except psutil.Error:
            tree = []
        self._trees[pid] = (now, tree)
        return tree

    def _cpu_seconds(self, pid: int) -> float:
        total = 0.0
        for process in self._processes(pid):
            with contextlib.suppress(psutil.Error):
                times = process.cpu_times()
                total += times.user + times.system
        return total

    def _sample(self) -> None:
        for name, pid in self.pids.items():
            rss = 0
            for process in self._processes(pid):
                with contextlib.suppress(psutil.Error):
                    rss += process.memory_info().rss
            usage = self._usage.setdefault(name, Usage(name))
            usage.peak_rss_mb = max(usage.peak_rss_mb, rss / 1_000_000)

    async def _run(self) -> None:
        while True:
            self._sample()
            await asyncio.sleep(self.interval)

    def start(self) -> None:
        self._started = time.monotonic()
        self._cpu_start = {name: self._cpu_seconds(pid) for name, pid in self.pids.items()}
        self._machine_start = _machine_counters(self.vmstat)
        self._task = asyncio.create_task(self._run())

    def end_window(self) -> None:
        """The measured load is over: CPU shares are taken up to now (RSS is still sampled)."""
        if self._window is None:
            cpu = {name: self._cpu_seconds(pid) for name, pid in self.pids.items()}
            self._window = (time.monotonic(), cpu, _machine_counters(self.vmstat))

    async def stop(self) -> dict[str, Usage]:
        self.end_window()
        assert self._window is not None
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                current = asyncio.current_task()
                if current is not None and current.cancelling():
                    raise  # the caller was cancelled meanwhile (SIGTERM): not ours to swallow
        self._sample()
        ended, cpu_at_end, machine_now = self._window
        wall = max(ended - self._started, 1e-6)
        for name in self.pids:
            usage = self._usage.setdefault(name, Usage(name))
            used = cpu_at_end[name] - self._cpu_start.get(name, 0.0)
            usage.cpu_percent = round(100 * used / wall, 1)
            usage.peak_rss_mb = round(usage.peak_rss_mb, 1)
        start = self._machine_start
        busy, total = machine_now.busy - start.busy, machine_now.total - start.total
        cores = psutil.cpu_count() or 1
        self._usage[MACHINE] = Usage(
            MACHINE,
            cpu_percent=round(100 * cores * busy / total, 1) if total else 0.0,
            major_faults=max(machine_now.major_faults - start.major_faults, 0),
            steal_percent=round(100 * (machine_now.steal - start.steal) / wall, 1),
        )
        return dict(self._usage)


MACHINE = "machine"
"""The whole machine's CPU over the window, every process included (a database server, the
load generator): whether the machine, not one process, was the limit."""


class MachineCounters(NamedTuple):
    """The whole machine's counters since boot, read at each edge of the measured window.

    Besides busy CPU, two that stall a run from outside: steal (time the hypervisor ran
    someone else on our vCPUs) and major page faults (a wait for the disk: this kind of VM
    pages out memory idle for a minute, so a run can find its own pages gone).
    """

    busy: float  # CPU seconds, all cores
    total: float
    steal: float
    major_faults: int


def _machine_counters(vmstat: Path) -> MachineCounters:
    """Read once per window edge; faults are 0 where the kernel does not say (not Linux)."""
    times = psutil.cpu_times()
    idle = times.idle + getattr(times, "iowait", 0.0)
    total = sum(times)
    faults = 0
    with contextlib.suppress(OSError, ValueError):
        for line in vmstat.read_text().splitlines():
            name, _, value = line.partition(" ")
            if name == "pgmajfault":
                faults = int(value)
                break
    return MachineCounters(total - idle, total, float(getattr(times, "steal", 0.0)), faults)
