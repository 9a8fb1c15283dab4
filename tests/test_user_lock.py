"""The per-user turn lock: serialises one user's turns across processes on PostgreSQL.

Two `UserLocks` stand for two replicas (separate engines, separate connections). A webhook
post whose lock cannot be taken is answered 503, so that Telegram delivers it again later.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from prometheus_client import REGISTRY
from telegram.ext import ApplicationBuilder

from bot.listener.webhook import SECRET_HEADER, WebhookReceiver
from bot.storage.user_lock import UserLocks, UserLockTimeout, lock_key
from tests.conftest import TEST_TOKEN, free_port, fresh_postgres_database, make_settings
from tests.emulator import factories


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


PSEUDONYM = "ab" * 32
OTHER = "cd" * 32


@pytest.fixture
async def postgres_url() -> AsyncIterator[str]:
    async with fresh_postgres_database() as url:
        yield url


async def test_one_users_turns_wait_for_each_other_across_replicas(postgres_url: str) -> None:
    first, second = UserLocks(postgres_url), UserLocks(postgres_url)
    await first.start()
    await second.start()
    events: list[str] = []
    try:
        async with first.hold(PSEUDONYM):
            events.append("first holds")
            waiting = asyncio.create_task(_hold_and_note(second, PSEUDONYM, events, "second"))
            await asyncio.sleep(0.5)
            assert events == ["first holds"]  # the other replica waits
            async with asyncio.timeout(5):  # another user does not wait
                await _hold_and_note(second, OTHER, events, "other user")
            events.append("first releases")
        await asyncio.wait_for(waiting, 5)
    finally:
        await first.close()
        await second.close()
    assert events == ["first holds", "other user", "first releases", "second"]


async def _hold_and_note(locks: UserLocks, pseudonym: str, events: list[str], name: str) -> None:
    async with locks.hold(pseudonym):
        events.append(name)


async def test_a_lock_not_granted_in_time_raises(postgres_url: str) -> None:
    holder, waiter = UserLocks(postgres_url), UserLocks(postgres_url, timeout_seconds=0.3)
    await holder.start()
    await waiter.start()
    try:
        async with holder.hold(PSEUDONYM):
            with pytest.raises(UserLockTimeout):
                async with waiter.hold(PSEUDONYM):
                    pass
        async with waiter.hold(PSEUDONYM):  # free again, and the failed wait left nothing held
            pass
    finally:
        await holder.close()
        await waiter.close()


async def test_on_sqlite_the_lock_is_a_no_op(tmp_path: Path) -> None:
    locks = UserLocks(f"sqlite+aiosqlite:///{tmp_path / 'x.db'}")
    await locks.start()
    assert not locks.distributed
    async with locks.hold(PSEUDONYM), locks.hold(PSEUDONYM):  # would deadlock if it locked
        pass
    await locks.close()


def test_lock_keys_are_signed_32_bit_and_spread() -> None:
    keys = {lock_key(f"{n:08x}" + "0" * 56) for n in range(0, 2**32, 2**28)}
    assert len(keys) == 16
    assert all(-(2**31) <= key < 2**31 for key in keys)
    assert lock_key("ffffffff" + "0" * 56) == -1


async def test_a_post_whose_lock_fails_gets_503_and_is_counted(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    application = ApplicationBuilder().token(TEST_TOKEN).build()  # never reached: no handlers
    dead = UserLocks(f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/none")
    await dead.start()
    secret = "a-webhook-secret-1234"
    receiver = WebhookReceiver(application, secret, settings.pseudonym_secret, dead)
    app = web.Application()
    app.router.add_post("/hook", receiver.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    user = factories.make_user(42)
    message = factories.make_message(
        message_id=1,
        chat=factories.make_chat(42, "private"),
        sender=user,
        content=factories.text_content("hi"),
    )
    body = json.dumps(factories.make_update(1, "message", message))
    before = sample("defector_voices_webhook_requests_total", outcome="unavailable")
    try:
        async with (
            aiohttp.ClientSession() as session,
            session.post(
                f"http://127.0.0.1:{port}/hook",
                data=body,
                headers={SECRET_HEADER: secret},
            ) as response,
        ):
            assert response.status == 503
        await receiver.drain(5)
        assert sample("defector_voices_webhook_requests_total", outcome="unavailable") == before + 1
    finally:
        await runner.cleanup()
        await dead.close()
