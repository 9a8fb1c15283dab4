"""Webhook mode end to end: Telegram (the emulator) posts updates to the bot's listener.

The bot is `bot.run.serve_webhook`, as `python -m bot run` runs it with BOT_MODE=webhook,
with the real Rasa server and real databases (SQLite and PostgreSQL).
"""

from __future__ import annotations

import json
from pathlib import Path

import aiohttp
import pytest

from bot.listener.webhook import SECRET_HEADER
from bot.nlu.server import LocalNLUServer
from bot.telegram.app import ALLOWED_UPDATES
from tests.conftest import WebhookBot, webhook_bot
from tests.emulator import factories

pytestmark = pytest.mark.e2e


def an_update(update_id: int, user: int, text: str) -> dict[str, object]:
    sender = factories.make_user(user)
    chat = factories.make_chat(user, "private")
    message = factories.make_message(
        message_id=1, chat=chat, sender=sender, content=factories.text_content(text)
    )
    return factories.make_update(update_id, "message", message)


async def post(bot: WebhookBot, body: bytes, secret: str | None) -> tuple[int, str]:
    headers = {"Content-Type": "application/json"}
    if secret is not None:
        headers[SECRET_HEADER] = secret
    async with (
        aiohttp.ClientSession() as session,
        session.post(bot.base_url + "/telegram/webhook", data=body, headers=headers) as response,
    ):
        return response.status, await response.text()


async def test_the_webhook_is_registered_with_the_secret_and_update_types(
    hooked: WebhookBot,
) -> None:
    registered = hooked.emulator.webhook_settings
    assert registered["url"] == hooked.settings.webhook_url
    assert registered["secret_token"] == hooked.settings.webhook_secret
    assert registered["allowed_updates"] == ALLOWED_UPDATES
    assert registered["max_connections"] == 40
    assert not hooked.emulator.calls_to("getUpdates")
    commands = {c["command"] for c in hooked.emulator.bot_commands()}
    assert "start" in commands


async def test_an_update_posted_to_the_webhook_is_answered(hooked: WebhookBot) -> None:
    user = hooked.new_user()
    update_id = hooked.emulator.push_text(user, "/help")
    messages = await hooked.emulator.wait_for_messages(user, 1, timeout=20)
    assert "/forget" in messages[0]["text"]
    delivery = next(d for d in hooked.emulator.webhook_deliveries if d.update_id == update_id)
    assert delivery.status == 200
    stored = await hooked.store.messages_for(hooked.pseudonym(user))
    assert [(m.direction, m.update_id) for m in stored] == [("in", update_id), ("out", None)]


async def test_a_duplicate_post_is_answered_once(hooked: WebhookBot) -> None:
    user = hooked.new_user()
    update_id = hooked.emulator.push_text(user, "salam, who are you?")
    await hooked.emulator.wait_for_messages(user, 1, timeout=20)
    hooked.emulator.push_duplicate(update_id)
    await hooked.emulator.wait_for_quiet(quiet=1.0, timeout=20)
    posts = [d for d in hooked.emulator.webhook_deliveries if d.update_id == update_id]
    assert [d.status for d in posts] == [200, 200]
    assert len(hooked.emulator.sent_messages(user)) == 1


@pytest.mark.parametrize("secret", [None, "", "webhook-secret-" + "x" * 24, "wrong"])
async def test_a_post_without_the_right_secret_is_refused_and_nothing_is_stored(
    hooked: WebhookBot, secret: str | None
) -> None:
    user = hooked.new_user()
    await hooked.emulator.wait_for_quiet(quiet=0.3, timeout=10)  # earlier tests' writes are done
    before = await hooked.store.message_count()
    body = json.dumps(an_update(900_000 + user, user, "the dawla protects us")).encode()
    status, _ = await post(hooked, body, secret)
    assert status == 403
    await hooked.emulator.wait_for_quiet(quiet=0.5, timeout=10)
    assert await hooked.store.message_count() == before
    assert hooked.emulator.sent_messages(user) == []


@pytest.mark.parametrize(
    "body",
    [b"{not json", b"", b"[1, 2]", b'{"message": {}}', b'{"update_id": "7"}', b"\xff\xfe"],
)
async def test_a_malformed_post_gets_400_and_the_bot_keeps_serving(
    hooked: WebhookBot, body: bytes
) -> None:
    status, _ = await post(hooked, body, hooked.settings.webhook_secret)
    assert status == 400
    user = hooked.new_user()
    hooked.emulator.push_text(user, "/privacy")
    await hooked.emulator.wait_for_messages(user, 1, timeout=20)


async def test_a_post_with_the_right_secret_is_accepted_directly(hooked: WebhookBot) -> None:
    user = hooked.new_user()
    body = json.dumps(an_update(800_000 + user, user, "/start")).encode()
    status, _ = await post(hooked, body, hooked.settings.webhook_secret)
    assert status == 200
    messages = await hooked.emulator.wait_for_messages(user, 1, timeout=20)
    assert "the test team" in messages[0]["text"]


async def test_webhook_mode_stops_cleanly_and_keeps_the_webhook(
    nlu_server: LocalNLUServer, tmp_path: Path
) -> None:
    async with webhook_bot("sqlite", tmp_path, nlu_server) as bot:
        user = bot.new_user()
        bot.emulator.push_text(user, "/help")
        await bot.emulator.wait_for_messages(user, 1, timeout=20)
        emulator = bot.emulator
    assert not emulator.calls_to("deleteWebhook")
