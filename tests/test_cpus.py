"""Sharing the cores between the bot and its local NLU servers (`CPU_PINNING`, `bot.cpus`)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from pathlib import Path

import psutil
import pytest

from bot.cpus import CorePlan, available_cores, device_interrupts, pin_process, plan_cores
from bot.services import open_nlu, share_cores
from bot.settings import Settings, SettingsError
from tests.conftest import free_port, make_settings, thread_cores


def test_each_nlu_server_gets_one_of_the_last_cores_and_the_bot_the_rest() -> None:
    assert plan_cores({0, 1}, 1) == CorePlan(bot=frozenset({0}), nlu=(frozenset({1}),))
    assert plan_cores([3, 2, 1, 0], 2) == CorePlan(
        bot=frozenset({0, 1}), nlu=(frozenset({3}), frozenset({2}))
    )
    assert plan_cores({4, 6, 9}, 1) == CorePlan(bot=frozenset({4, 6}), nlu=(frozenset({9}),))


def test_the_nlu_servers_get_the_cores_that_serve_the_fewest_device_interrupts() -> None:
    # A VM whose disk interrupts CPU 1: the NLU server moves to CPU 0.
    assert plan_cores({0, 1}, 1, {0: 17_000, 1: 405_000}) == CorePlan(
        bot=frozenset({1}), nlu=(frozenset({0}),)
    )
    # Counted in tenths of the busiest CPU's count: CPU 3's 5,000 is within a tenth of 90,000
    # of the quietest, as quiet as 0 and 2.
    assert plan_cores({0, 1, 2, 3}, 2, {0: 100, 1: 90_000, 2: 10, 3: 5_000}) == CorePlan(
        bot=frozenset({0, 1}), nlu=(frozenset({3}), frozenset({2}))
    )
    assert plan_cores({0, 1, 2, 3}, 2, {0: 100, 1: 50_000, 2: 10, 3: 40_000}) == CorePlan(
        bot=frozenset({1, 3}), nlu=(frozenset({2}), frozenset({0}))
    )


def test_the_second_server_gets_the_next_quietest_core_not_the_last_one_in_reach() -> None:
    # Steps of 72,500: CPU 1 is in the first, CPU 0 in the second, CPU 3 in the third.
    assert plan_cores({0, 1, 2, 3}, 2, {0: 90_000, 1: 0, 2: 725_000, 3: 185_000}) == CorePlan(
        bot=frozenset({2, 3}), nlu=(frozenset({1}), frozenset({0}))
    )


def test_on_many_cores_one_busy_core_stands_out_from_the_many_quiet_ones() -> None:
    interrupts = dict.fromkeys(range(16), 100_000) | {15: 250_000}
    plan = plan_cores(range(16), 1, interrupts)
    assert plan is not None and plan.nlu == (frozenset({14}),)


def test_a_handful_of_interrupts_either_way_leaves_the_last_core_to_the_nlu_server() -> None:
    last = CorePlan(bot=frozenset({0}), nlu=(frozenset({1}),))
    assert plan_cores({0, 1}, 1, {0: 12, 1: 815}) == last  # a fresh machine
    assert plan_cores({0, 1}, 1, {0: 48_000, 1: 52_000}) == last
    assert plan_cores({0, 1}, 1, {}) == last
    assert plan_cores({0, 1}, 1, {5: 1_000}) == last  # a CPU this process may not use


PROC_INTERRUPTS = """\
           CPU0       CPU1
 26:          0         15  IO-APIC   4-edge      ttyS0
 36:          0     144873 PCI-MSIX-0000:00:02.0   1-edge      virtio1-req.0
 39:      14912          0 PCI-MSIX-0000:00:03.0   2-edge      virtio2-output.0
 40:          0 PCI-MSIX-0000:00:04.0   0-edge      virtio3-config
NMI:          0          0   Non-maskable interrupts
LOC:     152060     176687   Local timer interrupts
CAL:     170954     130330   Function call interrupts
ERR:          0
"""

# An arm64 host: the per-CPU timer and the PMU are numbered rows there, yet no device's.
ARM64_INTERRUPTS = """\
           CPU0       CPU1       CPU2
 11:     801234     799876     812345     GICv3  27 Level     arch_timer
 12:       1024       1001        998     GICv3  23 Level     arm-pmu
 47:          0      50213          0     GICv3  65 Level     virtio0
 48:       7300          0          0     GICv3  66 Level     eth0
 49:          0          0        420     GICv3  67 Level     ff960000.mipi-dsi
IPI0:     30123      29876      31000       Rescheduling interrupts
"""


def test_device_interrupts_are_the_numbered_rows_of_proc_interrupts(tmp_path: Path) -> None:
    table = tmp_path / "interrupts"
    table.write_text(PROC_INTERRUPTS)
    assert device_interrupts(table) == {0: 14_912, 1: 144_888}
    assert device_interrupts(tmp_path / "missing") == {}
    table.write_text("")
    assert device_interrupts(table) == {}
    own = device_interrupts()  # this machine's own table, where it can be read
    assert not own or set(own) >= available_cores()


def test_per_cpu_timers_and_ipis_are_no_device_interrupts(tmp_path: Path) -> None:
    table = tmp_path / "interrupts"
    table.write_text(ARM64_INTERRUPTS)
    assert device_interrupts(table) == {0: 7_300, 1: 50_213, 2: 420}


def test_the_columns_follow_the_cpu_numbers_of_the_header_even_with_gaps(tmp_path: Path) -> None:
    table = tmp_path / "interrupts"
    table.write_text(
        "           CPU0       CPU2\n 36:         10       9000   PCI-MSIX   virtio1-req.0\n"
    )
    assert device_interrupts(table) == {0: 10, 2: 9_000}


def test_nothing_is_pinned_when_the_servers_would_leave_the_bot_no_core() -> None:
    assert plan_cores({0, 1}, 2) is None
    assert plan_cores({0}, 1) is None
    assert plan_cores({0, 1, 2}, 0) is None


def test_cpu_pinning_takes_auto_or_off_and_nothing_else() -> None:
    assert Settings.from_env({}).cpu_pinning == "auto"
    assert Settings.from_env({"CPU_PINNING": "OFF"}).cpu_pinning == "off"
    with pytest.raises(SettingsError, match="CPU_PINNING"):
        Settings.from_env({"CPU_PINNING": "yes"})


CHILD = """
import sys, threading, time
threading.Thread(target=time.sleep, args=(60,), daemon=True).start()
print("one", flush=True)
sys.stdin.readline()
threading.Thread(target=time.sleep, args=(60,), daemon=True).start()
print("two", flush=True)
time.sleep(60)
"""


async def test_pinning_a_process_covers_its_running_threads_and_those_it_starts_later() -> None:
    last = frozenset({max(available_cores())})
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        CHILD,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    assert child.stdin is not None and child.stdout is not None
    try:
        assert (await child.stdout.readline()).strip() == b"one"
        assert len(thread_cores(child.pid)) == 2
        pin_process(child.pid, last)
        child.stdin.write(b"go\n")
        await child.stdin.drain()
        assert (await child.stdout.readline()).strip() == b"two"
        threads = thread_cores(child.pid)
        assert len(threads) == 3
        assert set(threads.values()) == {last}
    finally:
        child.kill()
        await child.wait()


async def test_share_cores_pins_nothing_when_off_or_when_no_core_would_be_left(
    tmp_path: Path,
) -> None:
    cores = available_cores()
    before = set(thread_cores(os.getpid()).values())
    async with contextlib.AsyncExitStack() as stack:
        assert share_cores(make_settings(tmp_path, cpu_pinning="off"), stack) is None
        crowded = make_settings(tmp_path, nlu_workers=len(cores))
        assert share_cores(crowded, stack) is None
        assert set(thread_cores(os.getpid()).values()) == before


def test_a_refused_pinning_is_logged_and_leaves_the_process_as_it_was(
    caplog: pytest.LogCaptureFixture,
) -> None:
    before = set(thread_cores(os.getpid()).values())
    assert pin_process(os.getpid(), frozenset({100_000})) is False  # no such CPU: EINVAL
    assert "CPU pinning of process" in caplog.text
    assert set(thread_cores(os.getpid()).values()) == before


async def test_when_the_bot_cannot_be_pinned_its_nlu_servers_are_not_pinned_either(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # CPUs the kernel refuses, as after a container's cpuset shrank under a running bot.
    monkeypatch.setattr("bot.services.available_cores", lambda: frozenset({100_000, 100_001}))
    before = set(thread_cores(os.getpid()).values())
    async with contextlib.AsyncExitStack() as stack:
        assert share_cores(make_settings(tmp_path), stack) is None
    assert set(thread_cores(os.getpid()).values()) == before


@pytest.mark.nlu
async def test_the_local_nlu_server_runs_on_a_core_of_its_own_and_the_bot_on_the_others(
    nlu_model: Path, tmp_path: Path
) -> None:
    cores = available_cores()
    plan = plan_cores(cores, 1, device_interrupts())
    assert plan is not None, "this test needs a machine with at least 2 cores"
    settings = make_settings(
        tmp_path, nlu_model=nlu_model, nlu_port=free_port(), nlu_health_interval_seconds=0.0
    )
    assert settings.nlu_url is None and settings.cpu_pinning == "auto"
    async with contextlib.AsyncExitStack() as stack:
        client = await open_nlu(settings, stack)
        assert (await client.understand("hello")).intent == "greet"
        (server,) = [
            child
            for child in psutil.Process().children()
            if str(settings.nlu_port) in child.cmdline() and "run" in child.cmdline()
        ]
        server_pid = server.pid
        assert set(thread_cores(server_pid).values()) == {plan.nlu[0]}
        assert set(thread_cores(os.getpid()).values()) == {plan.bot}
    assert set(thread_cores(os.getpid()).values()) == {cores}
