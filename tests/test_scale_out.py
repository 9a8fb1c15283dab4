"""Two replicas of the bot behind a load balancer, sharing PostgreSQL.

Each replica is `python -m bot run` in webhook mode, in its own process, with the real Rasa
server. The emulator plays Telegram and the load balancer: it posts every update to one
replica at random (one update per chat in flight, as Telegram does) and posts some updates a
second time to the other replica. Every message must be answered exactly once, and each
user's messages in the order they were sent, though consecutive messages of one user land
on different replicas.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest

from bot.nlu.server import LocalNLUServer
from bot.storage.database import Database
from bot.storage.pseudonym import pseudonymise
from bot.storage.store import Store
from tests.conftest import TEST_TOKEN, free_port, fresh_postgres_database
from tests.emulator import BotAPIEmulator
from tests.test_commands import command_env, start_bot_command

pytestmark = pytest.mark.e2e

USERS = 30
MESSAGES = ["/help", "salam akhi", "/privacy", "life in the khilafah is good", "/resources"]
FIRST_REPLY = {"/help": "help", "/privacy": "privacy"}
PUBLIC_URL = "https://bot.example.org/telegram/webhook"
SECRET = "replica-shared-secret-" + "s" * 20
PSEUDONYM_SECRET = "replica-pseudonym-secret-" + "p" * 20


@dataclass
class Replica:
    """One `python -m bot run` process and what it has logged so far."""

    port: int
    process: asyncio.subprocess.Process
    log: list[str] = field(default_factory=list)

    @property
    def webhook(self) -> str:
        return f"http://127.0.0.1:{self.port}/telegram/webhook"

    async def read_log(self) -> None:
        """Keep the stderr pipe drained, so a chatty replica never blocks on a full pipe."""
        assert self.process.stderr is not None
        async for line in self.process.stderr:
            self.log.append(line.decode())

    async def wait_ready(self, timeout: float) -> None:
        url = f"http://127.0.0.1:{self.port}/readyz"
        async with aiohttp.ClientSession() as session, asyncio.timeout(timeout):
            while True:
                if self.process.returncode is not None:
                    raise AssertionError("replica exited: " + "".join(self.log)[-2000:])
                with contextlib.suppress(aiohttp.ClientError):
                    async with session.get(url) as response:
                        if response.status == 200:
                            return
                await asyncio.sleep(0.3)


@contextlib.asynccontextmanager
async def replicas(count: int, env: dict[str, str]) -> AsyncIterator[list[Replica]]:
    """`count` replicas on their own ports, ready; stopped with SIGTERM at the end."""
    started: list[Replica] = []
    readers: list[asyncio.Task[None]] = []
    try:
        for _ in range(count):
            port = free_port()
            process = await start_bot_command(["run"], {**env, "LISTEN_PORT": str(port)})
            started.append(Replica(port, process))
            readers.append(asyncio.create_task(started[-1].read_log()))
        for replica in started:
            await replica.wait_ready(timeout=90)
        yield started
    finally:
        for replica in started:
            if replica.process.returncode is None:
                replica.process.send_signal(signal.SIGTERM)
        for replica in started:
            await asyncio.wait_for(replica.process.wait(), 60)
        await asyncio.gather(*readers)
    for replica in started:
        assert replica.process.returncode == 0, "".join(replica.log)[-2000:]


async def test_two_replicas_answer_every_message_once_and_in_order_per_user(
    nlu_server: LocalNLUServer, tmp_path: Path
) -> None:
    async with BotAPIEmulator() as emulator, fresh_postgres_database() as database_url:
        env = command_env(
            tmp_path,
            nlu_server,
            TELEGRAM_BOT_TOKEN=TEST_TOKEN,
            TELEGRAM_API_BASE_URL=emulator.base_url,
            DATABASE_URL=database_url,
            PSEUDONYM_SECRET=PSEUDONYM_SECRET,
            BOT_MODE="webhook",
            WEBHOOK_URL=PUBLIC_URL,
            WEBHOOK_SECRET=SECRET,
            LISTEN_HOST="127.0.0.1",
            CONCURRENT_UPDATES="8",
            LOG_FORMAT="json",
        )
        async with replicas(2, env) as running:
            emulator.route_webhook([replica.webhook for replica in running])
            assert emulator.webhook_settings["url"] == PUBLIC_URL
            rng = random.Random(6)
            users = [7_000_000 + n for n in range(USERS)]
            pushed: dict[int, list[int]] = {user: [] for user in users}
            duplicated: list[int] = []
            for text in MESSAGES:  # all users at once, each user's messages in order
                for user in users:
                    update_id = emulator.push_text(user, text)
                    pushed[user].append(update_id)
                    if rng.random() < 0.15:
                        emulator.push_duplicate(update_id)
                        duplicated.append(update_id)
            for user in users:
                await emulator.wait_for_messages(user, len(MESSAGES), timeout=120)
            await emulator.wait_for_quiet(quiet=1.5, timeout=60)

            deliveries = emulator.webhook_deliveries
            by_backend = {d.url for d in deliveries if d.status == 200}
            assert len(by_backend) == 2, "both replicas must have taken updates"
            twice = {d.update_id for d in deliveries if d.duplicate and d.status == 200}
            assert twice == set(duplicated)
            assert duplicated, "the random draw must duplicate some updates"

            database = Database(database_url)
            await database.start()
            try:
                store = Store(database)
                for user in users:
                    sent = emulator.sent_messages(user)
                    assert len(sent) == len(MESSAGES), f"user {user}: {len(sent)} replies"
                    stored = await store.messages_for(pseudonymise(user, PSEUDONYM_SECRET))
                    assert [m.direction for m in stored] == ["in", "out"] * len(MESSAGES)
                    incoming = [m.update_id for m in stored if m.direction == "in"]
                    assert incoming == pushed[user], f"user {user} answered out of order"
                    kinds = [m.kind for m in stored if m.direction == "out"]
                    assert (kinds[0], kinds[2]) == ("help", "privacy")
                    assert kinds[4] in {"resources", "help_leaving"}
            finally:
                await database.close()

    logs = "".join(line for replica in running for line in replica.log)
    records = [json.loads(line) for line in logs.splitlines()]
    assert {"time", "level", "logger", "message"} <= set(records[0])
    for user in users:
        assert str(user) not in logs
    for text in MESSAGES[1::2]:
        assert text not in logs
