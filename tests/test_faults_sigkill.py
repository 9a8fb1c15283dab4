"""The bot killed with SIGKILL mid-conversation and started again: nothing lost, nothing twice.

`python -m bot run` runs as a subprocess against the Bot API emulator, the session's real
Rasa server and a real database. The kill comes when the bot has taken every update from
Telegram (so Telegram will not deliver them again) and is answering many users at once:
some turns are waiting on sendMessage (held by the emulator, so none of those replies has
gone out), the rest are queued behind them.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bot.nlu.server import LocalNLUServer
from bot.settings import PROJECT_ROOT
from bot.storage import Database, Store, pseudonymise
from bot.storage.models import ProcessedUpdate
from tests.conftest import BACKENDS, TEST_TOKEN, database_url_for, free_port
from tests.emulator import BotAPIEmulator

pytestmark = pytest.mark.e2e

SECRET = "sigkill-test-secret-" + "s" * 32
COMMANDS = ("/help", "/privacy", "/resources")
EXPECTED = ["welcome", "help", "privacy", "resources"]


def bot_env(tmp: Path, emulator: BotAPIEmulator, nlu: LocalNLUServer, url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "NLU_"))}
    env |= {
        "TELEGRAM_BOT_TOKEN": TEST_TOKEN,
        "TELEGRAM_API_BASE_URL": emulator.base_url,
        "TELEGRAM_MAX_MESSAGES_PER_SECOND": "0",
        "NLU_URL": nlu.url,
        "NLU_AUTH_TOKEN": nlu.token,
        "DATABASE_URL": url,
        "DATA_DIR": str(tmp),
        "PSEUDONYM_SECRET": SECRET,
        "OPERATOR_NAME": "the kill test team",
        "DASHBOARD_PORT": str(free_port()),
    }
    return env


async def start_bot(env: dict[str, str], log: Path) -> asyncio.subprocess.Process:
    with log.open("ab") as out:
        return await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            "run",
            cwd=PROJECT_ROOT,
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=out,
            stderr=out,
        )


async def until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.02)


@pytest.mark.parametrize("backend", BACKENDS)
async def test_a_killed_bot_answers_every_update_once_and_in_order_after_a_restart(
    backend: str, nlu_server: LocalNLUServer, tmp_path: Path
) -> None:
    log = tmp_path / "bot.log"
    async with BotAPIEmulator() as emulator, database_url_for(backend, tmp_path) as url:
        env = bot_env(tmp_path, emulator, nlu_server, url)
        users = [70_000 + n for n in range(20)]
        first = await start_bot(env, log)
        try:
            await emulator.wait_for_call("getUpdates", timeout=90)
            for user in users:
                emulator.push_text(user, "/start")
            for user in users:
                await emulator.wait_for_messages(user, 1, timeout=30)

            emulator.hold("sendMessage")
            for user in users:
                for command in COMMANDS:
                    emulator.push_text(user, command)
            # Every update taken and confirmed; many turns stuck in sendMessage.
            await until(
                lambda: (
                    emulator.unconfirmed_updates == 0 and emulator.held_calls("sendMessage") >= 10
                ),
                timeout=30,
                what="the bot to take every update and block on sendMessage",
            )
            assert emulator.held_calls("sendMessage") <= len(users)
        finally:
            first.send_signal(signal.SIGKILL)
            await first.wait()
        emulator.release("sendMessage")
        assert first.returncode == -signal.SIGKILL
        await emulator.wait_for_quiet(quiet=0.5, timeout=10)
        assert all(len(emulator.sent_messages(user)) == 1 for user in users)
        held = [c for c in emulator.calls_to("sendMessage") if c.status == 499]
        assert len(held) >= 10  # cut off with the process: those replies never went out

        second = await start_bot(env, log)
        try:
            for user in users:
                await emulator.wait_for_messages(user, 4, timeout=90)
            await emulator.wait_for_quiet(quiet=2.0, timeout=60)
        finally:
            second.send_signal(signal.SIGTERM)
            await asyncio.wait_for(second.wait(), timeout=60)
        assert second.returncode == 0, log.read_text()[-3000:]
        # Start-up's objects are out of the collector's full passes (`bot.heap`), once per run.
        assert log.read_text().count("start-up objects frozen") == 2

        for user in users:
            assert len(emulator.sent_messages(user)) == 4, user
        buffered = tmp_path / "write-buffer.jsonl"
        assert buffered.read_bytes() == b"", log.read_text()[-4000:]
        store = Store(Database(url))
        await store.start()
        try:
            for user in users:
                stored = await store.messages_for(pseudonymise(user, SECRET))
                assert [m.kind for m in stored if m.direction == "out"] == EXPECTED
                assert [m.text for m in stored if m.direction == "in"] == ["/start", *COMMANDS]
            async with store.database.session() as session:
                claimed = await session.scalar(select(func.count()).select_from(ProcessedUpdate))
            assert claimed == len(users) * 4
            assert await store.message_count() == len(users) * 8
        finally:
            await store.close()
        assert (tmp_path / "update-journal.jsonl").stat().st_size == 0
        # The replies to each user arrived in the order of their messages.
        library_order = [m["text"][:15] for m in emulator.sent_messages(users[0])]
        assert len(set(library_order)) == 4
