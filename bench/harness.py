"""`python -m bench.harness`: `python -m bot run` with cheap timers, for the benchmark.

The bot is the production code path (`bot.run.run` with settings from the environment); the
harness only wraps two methods to time them, per update, in this process:
- `FrontEnd.respond`: the whole turn inside the bot, from the handler being called to the
  turn's records being committed (state, NLU, decision, send, records);
- `send_reply`: when the reply has been accepted by the Bot API (before the commit);
- `NLUClient.understand`: the NLU part of it (HTTP to Rasa, or the cache).
"The rest of the pipeline" is the time to the reply's acceptance minus the NLU part. The
timings (seconds) are written as JSON to `BENCH_TIMINGS_FILE` when the bot stops (SIGTERM),
with the NLU client's counters.
"""

from __future__ import annotations

import asyncio
import contextvars
import cProfile
import json
import logging
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

from bot.nlu.client import NLUClient, NLUStats
from bot.run import run
from bot.services import Services
from bot.settings import Settings
from bot.storage.store import Store
from bot.telegram import handlers
from bot.telegram.handlers import FrontEnd

_turn: contextvars.ContextVar[dict[str, float] | None] = contextvars.ContextVar(
    "bench_turn", default=None
)
TURNS: list[dict[str, float]] = []  # per text update: "respond", "nlu" and the stages below
CLIENTS: list[NLUClient] = []
# The database calls of a turn, timed too, to tell where the rest of the pipeline goes.
STAGES = {
    "begin_turn": "db_begin",
    "handling_of": "db_check",
    "finish_turn": "db_finish",
}
REPLY_PATH_STAGES = ("db_check",)
"""The storage calls the reply waits for beyond the NLU call: the takeover check. A text's
read (`db_begin`) runs alongside the NLU call; the commit (`db_finish`) comes after the send."""


def _time_stage(cls: type, method: str, key: str) -> None:
    original = getattr(cls, method)

    async def timed(self: object, *args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return await original(self, *args, **kwargs)
        finally:
            record = _turn.get()
            if record is not None:
                record[key] = record.get(key, 0.0) + time.perf_counter() - started

    setattr(cls, method, timed)


def install_timers() -> None:
    respond = FrontEnd.respond
    understand = NLUClient.understand
    send_reply = handlers.send_reply
    services_enter = Services.__aenter__

    async def timed_respond(self: FrontEnd, update: Any, incoming: Any) -> None:
        started = time.perf_counter()
        record = {"nlu": -1.0, "started": started}
        token = _turn.set(record)
        try:
            await respond(self, update, incoming)
        finally:
            _turn.reset(token)
            if record["nlu"] >= 0:
                record["respond"] = time.perf_counter() - started
                del record["started"]
                TURNS.append(record)

    async def timed_send_reply(update: Any, reply: Any) -> None:
        sending = time.perf_counter()
        await send_reply(update, reply)
        record = _turn.get()
        if record is not None:
            replied = time.perf_counter()
            record["replied"] = replied - record["started"]
            record["send"] = replied - sending
            record["to_send"] = sending - record["started"]

    async def timed_understand(self: NLUClient, text: str) -> Any:
        started = time.perf_counter()
        try:
            return await understand(self, text)
        finally:
            record = _turn.get()
            if record is not None:
                record["nlu"] = time.perf_counter() - started

    async def remembering_enter(self: Services) -> Services:
        entered = await services_enter(self)
        CLIENTS.append(entered.nlu)
        return entered

    for method, key in STAGES.items():
        _time_stage(Store, method, key)
    FrontEnd.respond = timed_respond  # type: ignore[method-assign]
    handlers.send_reply = timed_send_reply
    NLUClient.understand = timed_understand  # type: ignore[method-assign]
    Services.__aenter__ = remembering_enter  # type: ignore[method-assign]


def write_timings(path: Path) -> None:
    client = CLIENTS[0] if CLIENTS else None
    body: dict[str, Any] = {
        "turns": TURNS,
        "cache": (
            {"hits": client.cache.hits, "misses": client.cache.misses, "size": client.cache.size}
            if client
            else None
        ),
        "nlu_stats": vars(client.stats) if client else None,
        "pool": [
            {"url": e.url, "requests": e.requests, "failures": e.failures}
            for e in (client.pool.endpoints if client else [])
        ],
    }
    path.write_text(json.dumps(body))


def forget_warm_up(*_: object) -> None:
    """SIGUSR1: the load generator's warm-up is over; what follows is measured."""
    TURNS.clear()
    for client in CLIENTS:
        client.stats = NLUStats()  # a slow first call of the warm-up is not the run's failure
        client.cache.hits = client.cache.misses = 0
        for endpoint in client.pool.endpoints:
            endpoint.requests = endpoint.failures = 0


def main() -> int:
    settings = Settings.from_env().with_secrets()
    logging.basicConfig(level=settings.log_level, format="%(levelname)s %(name)s: %(message)s")
    install_timers()
    signal.signal(signal.SIGUSR1, forget_warm_up)
    # BENCH_PROFILE=path: cProfile of the event loop's thread, for finding where a turn's CPU goes.
    profile_path = os.environ.get("BENCH_PROFILE")
    profiler = cProfile.Profile() if profile_path else None
    if profiler is not None:
        profiler.enable()
    try:
        return asyncio.run(run(settings))
    finally:
        if profiler is not None and profile_path:
            profiler.disable()
            profiler.dump_stats(profile_path)
        target = os.environ.get("BENCH_TIMINGS_FILE")
        if target:
            write_timings(Path(target))


if __name__ == "__main__":
    sys.exit(main())
