"""The emulator's webhook side behaves like Telegram's where the bot's guarantees depend on it.

The scale-out test's "in order per user" means something only if the emulator, like the Bot
API server, posts a chat's next update only after the previous one was answered, and retries
an update the bot refused. Checked here against a small recording receiver.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from aiohttp import web
from telegram import Bot
from telegram.error import BadRequest

from tests.conftest import TEST_TOKEN, free_port
from tests.emulator import BotAPIEmulator
from tests.emulator.webhook import SECRET_HEADER


@dataclass
class Receiver:
    """A webhook that records posts and answers slowly, refusing the first post of some ids."""

    port: int
    delay: float = 0.2
    refuse_once: set[int] = field(default_factory=set)
    posts: list[tuple[int, int, str | None]] = field(default_factory=list)  # update, chat, secret
    active: dict[int, int] = field(default_factory=dict)  # chat -> posts in progress
    most_at_once: dict[int, int] = field(default_factory=dict)
    concurrent_total: int = 0
    most_total: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    async def handle(self, request: web.Request) -> web.Response:
        update = await request.json()
        chat = update["message"]["chat"]["id"]
        self.posts.append((update["update_id"], chat, request.headers.get(SECRET_HEADER)))
        self.active[chat] = self.active.get(chat, 0) + 1
        self.concurrent_total += 1
        self.most_at_once[chat] = max(self.most_at_once.get(chat, 0), self.active[chat])
        self.most_total = max(self.most_total, self.concurrent_total)
        try:
            await asyncio.sleep(self.delay)
            if update["update_id"] in self.refuse_once:
                self.refuse_once.discard(update["update_id"])
                return web.Response(status=503)
            return web.Response(text="ok")
        finally:
            self.active[chat] -= 1
            self.concurrent_total -= 1


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    recorder = Receiver(free_port())
    app = web.Application()
    app.router.add_post("/hook", recorder.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", recorder.port).start()
    try:
        yield recorder
    finally:
        await runner.cleanup()


async def test_one_update_per_chat_in_flight_and_chats_in_parallel(receiver: Receiver) -> None:
    async with BotAPIEmulator() as emulator, Bot(TEST_TOKEN, base_url=emulator.base_url) as bot:
        await bot.set_webhook(receiver.url, secret_token="s3cret-token_value")
        sent = {chat: [emulator.push_text(chat, f"m{n}") for n in range(3)] for chat in (1, 2, 3)}
        await emulator.wait_for_quiet(quiet=0.3, timeout=20)
    assert receiver.most_at_once == {1: 1, 2: 1, 3: 1}
    assert receiver.most_total == 3
    for chat, ids in sent.items():
        assert [u for u, c, _ in receiver.posts if c == chat] == ids
    assert {secret for _, _, secret in receiver.posts} == {"s3cret-token_value"}


async def test_a_refused_update_is_retried_before_the_chats_next(receiver: Receiver) -> None:
    async with BotAPIEmulator() as emulator, Bot(TEST_TOKEN, base_url=emulator.base_url) as bot:
        await bot.set_webhook(receiver.url)
        first = emulator.push_text(7, "one")
        receiver.refuse_once.add(first)
        second = emulator.push_text(7, "two")
        await emulator.wait_for_quiet(quiet=0.5, timeout=20)
        statuses = [(d.update_id, d.status) for d in emulator.webhook_deliveries]
    assert [u for u, _, _ in receiver.posts] == [first, first, second]
    assert statuses == [(first, 503), (first, 200), (second, 200)]


async def test_a_duplicate_is_posted_once_more_after_the_first_post(receiver: Receiver) -> None:
    async with BotAPIEmulator() as emulator, Bot(TEST_TOKEN, base_url=emulator.base_url) as bot:
        await bot.set_webhook(receiver.url)
        first = emulator.push_text(9, "one")
        emulator.push_duplicate(first)
        await emulator.wait_for_quiet(quiet=0.5, timeout=20)
        deliveries = [(d.update_id, d.duplicate) for d in emulator.webhook_deliveries]
    assert deliveries == [(first, False), (first, True)]


async def test_webhooks_need_https_except_on_loopback() -> None:
    async with BotAPIEmulator() as emulator, Bot(TEST_TOKEN, base_url=emulator.base_url) as bot:
        with pytest.raises(BadRequest, match=r"(?i)https url must be provided"):
            await bot.set_webhook("http://bot.example.org/hook")
        assert await bot.set_webhook("https://bot.example.org/hook")
        assert (await bot.get_webhook_info()).url == "https://bot.example.org/hook"
        assert await bot.delete_webhook()
        assert (await bot.get_webhook_info()).url == ""
