"""Many simulated users talking to the real bot through the Bot API emulator.

The bot runs in its own process (`bench.harness`: `python -m bot run` with timers), polling
the emulator with python-telegram-bot exactly as it polls Telegram. This process pushes the
users' messages into the emulator and notes when each reply arrives there, so the reply
latency runs from the update being available to Telegram's side to the reply reaching it.

Two modes:
- offered rate: messages arrive at a fixed rate (Telegram's per-bot ceiling is 30 a second),
  spread over the users in turn, whatever the bot's speed (an open loop);
- as fast as possible: every user sends the next message as soon as the last one is answered
  (a closed loop), which finds the bot's throughput.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import itertools
import json
import os
import random
import signal
import socket
import sys
import time
from collections import defaultdict, deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from bench.harness import REPLY_PATH_STAGES, STAGES
from bench.monitor import Monitor
from bench.stats import progress, progress_done, summary_ms
from bot.settings import PROJECT_ROOT
from tests.emulator import BotAPIEmulator
from tests.emulator.factories import JSON

BENCH_TOKEN = "424242:BENCH-token_for-the-emulator"  # noqa: S105 - the emulator takes any
FIRST_USER = 7_000_000
WARM_UP_MESSAGES = 20
QUIET_AFTER_SECONDS = 10.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class TimedEmulator(BotAPIEmulator):
    """The tests' emulator, telling the load generator when each reply arrives."""

    on_reply: Callable[[int, float], None] | None = None

    async def _send_message(self, params: JSON, request: web.Request) -> JSON:
        message = await super()._send_message(params, request)
        if self.on_reply is not None:
            self.on_reply(int(message["chat"]["id"]), time.monotonic())
        return message


@dataclass
class Scenario:
    """One measured run of the bot."""

    name: str
    backend: str  # sqlite | postgresql
    durability: str  # full | fast (DATABASE_DURABILITY)
    database_url: str
    nlu_urls: Sequence[str]
    nlu_token: str
    nlu_pids: Sequence[int]
    cache_size: int
    mode: str  # "rate" | "max"
    seconds: float
    users: int
    rate: float = 30.0
    telegram_cap: float = 30.0
    program: str = "bench.harness"
    """The bot run: `bench.harness` (the real bot) or `bench.echo_bot` (the floor)."""


class Load:
    """Who waits for which reply, and how long the replies took.

    Users sit in slots. A user the bot stops answering (the escalation gate keeps quiet after
    a request for a person, which the model may read into a message) is given up after
    `QUIET_AFTER_SECONDS`: the message counts as unanswered and a new user takes the slot.
    """

    def __init__(
        self, texts: Sequence[str], slots: int = 0, first_user: int = FIRST_USER, seed: int = 7
    ) -> None:
        self.texts = texts
        self.random = random.Random(seed)
        self.slots = [first_user + index for index in range(slots)]
        self.slot_of = {user: index for index, user in enumerate(self.slots)}
        self.new_users = itertools.count(FIRST_USER + 1_000_000)
        self.waiting: dict[int, deque[float]] = defaultdict(deque)
        self.latencies: list[float] = []
        self.reply_times: list[float] = []
        self.sent = 0
        self.answered = 0
        self.unanswered = 0
        self.replaced_users = 0
        self.first_push = 0.0
        self.last_reply = 0.0
        self.idle = asyncio.Event()
        self.emulator: TimedEmulator | None = None
        self.next_after_reply: Callable[[int, float], None] | None = None

    @property
    def settled(self) -> bool:
        return self.answered + self.unanswered >= self.sent

    def push(self, user: int) -> None:
        assert self.emulator is not None
        now = time.monotonic()
        if not self.sent:
            self.first_push = now
        self.waiting[user].append(now)
        self.sent += 1
        self.idle.clear()
        self.emulator.push_text(user, self.random.choice(self.texts))

    def push_slot(self, slot: int) -> None:
        self.push(self.slots[slot % len(self.slots)])

    def on_reply(self, chat_id: int, at: float) -> None:
        queue = self.waiting.get(chat_id)
        if not queue:
            return  # a warm-up message's reply, or one for a user given up on
        self.latencies.append(at - queue.popleft())
        self.reply_times.append(at)
        self.answered += 1
        self.last_reply = at
        if self.settled:
            self.idle.set()
        if self.next_after_reply is not None:
            self.next_after_reply(chat_id, at)

    def give_up_on_quiet_users(self, now: float) -> list[int]:
        """Slots whose user was given up on now (see the class docstring)."""
        freed: list[int] = []
        for user, queue in list(self.waiting.items()):
            if not queue or now - queue[0] < QUIET_AFTER_SECONDS:
                continue
            self.unanswered += len(queue)
            del self.waiting[user]
            slot = self.slot_of.pop(user, None)
            if slot is not None:
                replacement = next(self.new_users)
                self.slots[slot] = replacement
                self.slot_of[replacement] = slot
                self.replaced_users += 1
                freed.append(slot)
        if self.settled:
            self.idle.set()
        return freed


async def _watch_quiet(load: Load, deadline: float | None) -> None:
    """Give up on users the bot stopped answering; in a closed loop, the new user sends."""
    while True:
        await asyncio.sleep(1)
        now = time.monotonic()
        for slot in load.give_up_on_quiet_users(now):
            if deadline is not None and now < deadline:
                load.push_slot(slot)


async def _show(load: Load, label: str, started: float) -> None:
    while True:
        await asyncio.sleep(1)
        elapsed = time.monotonic() - started
        progress(
            f"  {label}: {elapsed:4.0f} s, sent {load.sent}, answered {load.answered} "
            f"({load.answered / max(elapsed, 1e-6):.0f}/s), unanswered {load.unanswered}"
        )


async def _drive_rate(load: Load, rate: float, seconds: float) -> None:
    total = int(rate * seconds)
    start = time.monotonic()
    for index in range(total):
        delay = start + index / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        load.push_slot(index)


async def _drive_max(load: Load, seconds: float) -> float:
    deadline = time.monotonic() + seconds

    def next_message(user: int, at: float) -> None:
        slot = load.slot_of.get(user)
        if at < deadline and slot is not None:
            load.push_slot(slot)

    load.next_after_reply = next_message
    watcher = asyncio.create_task(_watch_quiet(load, deadline))
    for slot in range(len(load.slots)):
        load.push_slot(slot)
    await asyncio.sleep(max(0.0, deadline - time.monotonic()))
    watcher.cancel()
    return deadline


async def _wait_idle(load: Load, seconds: float) -> None:
    """Until every message is answered or given up on (at most `seconds`)."""
    if load.settled:
        return
    watcher = asyncio.create_task(_watch_quiet(load, None))
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await load.idle.wait()
    watcher.cancel()


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """No full garbage collection over this process's earlier objects while it lasts.

    This process stands for Telegram and its users, who do not wait for its garbage collector:
    a full collection here held every reply in flight and was charged to the bot's pipeline
    (143 ms in a scratch run, 432 ms late in a `make bench`, whose heap grows run by run). So
    what exists before the window is collected and frozen (`gc.freeze`); objects made during
    it are still collected, in passes that stay small however long the run.
    """
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()
        gc.collect()


async def run_scenario(
    scenario: Scenario, texts: Sequence[str], workdir: Path, drain_seconds: float = 60.0
) -> dict[str, Any]:
    """Start the bot, warm it up, load it, stop it; the figures of the run."""
    workdir.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 - once, before the load
    timings_file = workdir / "timings.json"
    env = dict(os.environ)
    env.update(
        {
            "TELEGRAM_BOT_TOKEN": BENCH_TOKEN,
            "TELEGRAM_API_BASE_URL": "",  # set below, once the emulator listens
            "DATABASE_URL": scenario.database_url,
            "DATABASE_DURABILITY": scenario.durability,
            "NLU_URL": ",".join(scenario.nlu_urls),
            "NLU_AUTH_TOKEN": scenario.nlu_token,
            "NLU_CACHE_SIZE": str(scenario.cache_size),
            "TELEGRAM_MAX_MESSAGES_PER_SECOND": str(scenario.telegram_cap),
            "DATA_DIR": str(workdir),
            "PSEUDONYM_SECRET": "bench-secret-" + "b" * 32,
            "LOG_LEVEL": "WARNING",
            # The closed-loop users send as fast as they are answered, far above what the
            # flood control lets through; the benchmark measures answering, so it is lifted.
            "FLOOD_MAX_MESSAGES": "1000000",
            # `python -m bot run` serves the dashboard too: on a port of its own here.
            "DASHBOARD_PORT": str(free_port()),
            "BENCH_TIMINGS_FILE": str(timings_file),
        }
    )
    load = Load(texts, WARM_UP_MESSAGES, first_user=FIRST_USER - WARM_UP_MESSAGES)
    async with TimedEmulator(token=BENCH_TOKEN) as emulator:
        load.emulator = emulator
        emulator.on_reply = load.on_reply
        env["TELEGRAM_API_BASE_URL"] = emulator.base_url
        with (workdir / "bot.log").open("wb") as log:
            bot = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                scenario.program,
                env=env,
                cwd=PROJECT_ROOT,
                stdout=log,
                stderr=log,
            )
        try:
            await emulator.wait_for_call("getUpdates", timeout=120)
            # Warm-up: connections, the database's first pages, the model's first calls.
            for slot in range(WARM_UP_MESSAGES):
                load.push_slot(slot)
            await _wait_idle(load, drain_seconds)
            if load.answered < WARM_UP_MESSAGES // 2:
                raise RuntimeError(f"the bot did not answer its warm-up; see {workdir}/bot.log")
            bot.send_signal(signal.SIGUSR1)  # forget the warm-up's timings
            await asyncio.sleep(0.2)
            load = Load(texts, scenario.users)
            load.emulator = emulator
            emulator.on_reply = load.on_reply
            pids = {"bot": bot.pid, "bench": os.getpid()}
            pids |= {f"nlu{index + 1}": pid for index, pid in enumerate(scenario.nlu_pids)}
            monitor = Monitor(pids)
            with collector_paused():
                monitor.start()
                started = time.monotonic()
                shower = asyncio.create_task(_show(load, scenario.name, started))
                if scenario.mode == "rate":
                    watcher = asyncio.create_task(_watch_quiet(load, None))
                    await _drive_rate(load, scenario.rate, scenario.seconds)
                    monitor.end_window()
                    watcher.cancel()
                    await _wait_idle(load, drain_seconds)
                    window_end = load.last_reply
                    answered_in_window = load.answered
                else:
                    window_end = await _drive_max(load, scenario.seconds)
                    monitor.end_window()
                    answered_in_window = sum(1 for at in load.reply_times if at <= window_end)
                    await _wait_idle(load, drain_seconds)
                shower.cancel()
                usage = await monitor.stop()
        finally:
            with contextlib.suppress(ProcessLookupError):
                bot.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(bot.wait(), timeout=60)
            except TimeoutError:
                bot.kill()
                await bot.wait()
    window = max(window_end - load.first_push, 1e-6)
    timings = json.loads(timings_file.read_text()) if timings_file.exists() else {}
    turns: list[dict[str, float]] = timings.get("turns") or []
    nlu = [turn["nlu"] for turn in turns]
    # Up to the reply's acceptance by the Bot API; the commit that follows is not waited for.
    rest = [turn.get("replied", turn["respond"]) - turn["nlu"] for turn in turns]
    stages = {key: summary_ms([turn.get(key, 0.0) for turn in turns]) for key in STAGES.values()}
    for key in ("send", "to_send"):
        stages[key] = summary_ms([turn[key] for turn in turns if key in turn])
    stages["to_send_over_nlu"] = summary_ms(
        [turn["to_send"] - turn["nlu"] for turn in turns if "to_send" in turn]
    )
    stages["db_total"] = summary_ms(
        [sum(turn.get(key, 0.0) for key in REPLY_PATH_STAGES) for turn in turns]
    )
    result: dict[str, Any] = {
        "name": scenario.name,
        "program": scenario.program,
        "backend": scenario.backend,
        "durability": scenario.durability,
        "mode": scenario.mode,
        "offered_per_second": scenario.rate if scenario.mode == "rate" else None,
        "users": scenario.users,
        "nlu_servers": len(scenario.nlu_urls),
        "cache_size": scenario.cache_size,
        "telegram_cap_per_second": scenario.telegram_cap,
        "seconds": round(window, 2),
        "sent": load.sent,
        "answered": load.answered,
        "unanswered": load.sent - load.answered,
        "users_given_up": load.replaced_users,
        "answered_per_second": round(answered_in_window / window, 1),
        "reply_latency_ms": summary_ms(load.latencies),
        "nlu_call_ms": summary_ms(nlu),
        "pipeline_rest_ms": summary_ms(rest),
        "turn_in_bot_ms": summary_ms([turn["respond"] for turn in turns]),
        "stages_ms": stages,
        "usage": {name: vars(u) for name, u in usage.items()},
        "cache": timings.get("cache"),
        "nlu_stats": timings.get("nlu_stats"),
        "pool": timings.get("pool"),
        "latencies_ms": [round(x * 1000, 2) for x in load.latencies],
    }
    reply = result["reply_latency_ms"]
    progress_done(
        f"  {scenario.name}: {load.answered}/{load.sent} answered, "
        f"{result['answered_per_second']}/s, reply p50 {reply.get('p50')} ms "
        f"p95 {reply.get('p95')} ms, bot {usage['bot'].peak_rss_mb:.0f} MB"
    )
    return result
