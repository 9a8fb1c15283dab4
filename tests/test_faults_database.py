"""The database goes away under the running bot: it answers on, buffers, and loses nothing.

PostgreSQL "stops" by a real network failure: the bot reaches the real server through a TCP
proxy that the test cuts (every connection reset, new ones refused) and restores. SQLite is
"locked" by another connection holding `BEGIN EXCLUSIVE` on the real file.
"""

from __future__ import annotations

import asyncio
import stat
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bot.nlu.server import LocalNLUServer
from bot.storage.models import ProcessedUpdate
from tests.conftest import BACKENDS, RunningBot, running_bot
from tests.outage import database_with_outage

pytestmark = pytest.mark.e2e


async def stored_kinds(bot: RunningBot, user: int) -> list[str]:
    return [f"{m.direction}:{m.kind}" for m in await bot.store.messages_for(bot.pseudonym(user))]


@pytest.mark.parametrize("backend", BACKENDS)
async def test_the_bot_answers_through_a_database_outage_and_loses_no_record(
    backend: str, nlu_server: LocalNLUServer, tmp_path: Path
) -> None:
    async with (
        database_with_outage(backend, tmp_path) as outage,
        running_bot(
            backend,
            tmp_path,
            nlu_server,
            database_url=outage.url,
            write_buffer_retry_seconds=0.2,
        ) as bot,
    ):
        emulator, store = bot.emulator, bot.store
        users = [bot.new_user() for _ in range(5)]
        for user in users:
            emulator.push_text(user, "/help")
        for user in users:
            await emulator.wait_for_messages(user, 1, timeout=20)
        assert not store.degraded

        outage.begin()
        update_ids = []
        for user in users:
            update_ids.append(emulator.push_text(user, "/privacy"))
            emulator.push_text(user, "/start")
        crisis = "marker-5c1e i want to kill myself"
        emulator.push_text(users[0], crisis)
        for user in users:
            await emulator.wait_for_messages(user, 4 if user == users[0] else 3, timeout=30)
        library = bot.library.current()
        last = emulator.sent_messages(users[0])[-1]["text"]
        assert last.startswith(library.reply("safety_self_harm")[:30]), last

        # A redelivery while the database is down is answered once (in-memory claims).
        emulator.push_duplicate(update_ids[1])
        await emulator.wait_for_quiet(quiet=1.0, timeout=20)
        assert len(emulator.sent_messages(users[1])) == 3

        # Everything waits in the buffer, on disk, readable by the bot's account only.
        assert store.degraded
        path = bot.settings.write_buffer_path
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert b"marker-5c1e" in path.read_bytes()
        buffered = len(store.buffer)
        # 11 turns, each one entry: its claim, both messages and the user state.
        assert buffered == 11

        outage.end()
        async with asyncio.timeout(30):
            await store.wait_until_flushed()
        assert not store.degraded
        assert path.stat().st_size == 0
        assert store.lost_writes == 0

        for user in users:
            expected = ["in:command", "out:help", "in:command", "out:privacy"]
            expected += ["in:command", "out:welcome"]
            if user == users[0]:
                expected += ["in:text", "out:safety_self_harm"]
            assert await stored_kinds(bot, user) == expected
        assert await store.message_count() == 5 * 6 + 2
        async with store.database.session() as session:
            claimed = await session.scalar(select(func.count()).select_from(ProcessedUpdate))
        assert claimed == 16
        state = await store.load_user(bot.pseudonym(users[0]))
        assert state.in_crisis
        stored = await store.messages_for(bot.pseudonym(users[0]))
        assert stored[6].text == crisis
        assert "crisis" in stored[6].flags
        # The crisis alert the outage held up reaches the team once the database is back.
        escalations = bot.conversation.escalation.escalations
        async with asyncio.timeout(10):
            while not (alerts := await escalations.alerts_for(bot.pseudonym(users[0]))):
                await asyncio.sleep(0.1)
        assert [(a.kind, a.severity) for a in alerts] == [("crisis", "crisis")]

        # After the flush the database decides again, and still answers a redelivery once.
        emulator.push_duplicate(update_ids[2])
        emulator.push_text(users[2], "/help")
        await emulator.wait_for_messages(users[2], 4, timeout=20)
        await emulator.wait_for_quiet(quiet=1.0, timeout=20)
        assert len(emulator.sent_messages(users[2])) == 4
        assert await store.message_count() == 5 * 6 + 4
