"""The moderators' alert queue and takeover pages, on SQLite and PostgreSQL, and in chromium.

Users reach the bot through the real pipeline (`Conversation.handle` with the Rasa server);
what a moderator sends leaves through python-telegram-bot to the Bot API emulator.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from aiohttp.test_utils import TestClient
from telegram import Bot

from bot.conversation import TextIn
from bot.dashboard.audit import AuditFilter, audit_records
from bot.escalation.service import Escalation
from bot.storage.pseudonym import pseudonymise
from bot.telegram.messenger import TelegramMessenger
from tests.conftest import TEST_TOKEN
from tests.dashboard.conftest import DashboardUnderTest
from tests.emulator import BotAPIEmulator

USER_CHAT = 4_242_001


@contextlib.asynccontextmanager
async def telegram_for(escalation: Escalation) -> AsyncIterator[BotAPIEmulator]:
    """Connect the escalation to an emulated Telegram, as `make run` connects the bot's."""
    async with BotAPIEmulator() as emulator, Bot(TEST_TOKEN, base_url=emulator.base_url) as bot:
        escalation.attach(TelegramMessenger(bot))
        try:
            yield emulator
        finally:
            escalation.messenger = None


async def user_in_crisis(escalation: Escalation, conversation: Any, chat_id: int) -> str:
    pseudonym = pseudonymise(chat_id, conversation.settings.pseudonym_secret)
    await conversation.handle(
        pseudonym, TextIn("I want to kill myself"), contact=escalation.seal(chat_id)
    )
    await escalation.drain()
    return pseudonym


async def post(
    dashboard: DashboardUnderTest, client: TestClient[Any, Any], path: str, **data: str
) -> Any:
    token = await dashboard.csrf(client)
    return await client.post(path, data={"csrf_token": token, **data}, allow_redirects=False)


async def test_the_queue_lists_an_alert_and_moderators_acknowledge_and_resolve_it(
    dashboard: DashboardUnderTest,
) -> None:
    conversation = dashboard.parts.conversation
    escalation = conversation.escalation
    pseudonym = await user_in_crisis(escalation, conversation, USER_CHAT)
    client = await dashboard.client("moderator")

    page = await client.get("/escalation")
    html = await page.text()
    assert page.status == 200
    assert f'href="/escalation/{pseudonym}"' in html
    assert "crisis intent (self-harm) x1" in html
    assert "kill myself" not in html, "the queue shows no message text"

    queue = await (await client.get("/escalation/queue.json")).json()
    (alert,) = queue["alerts"]
    assert (alert["conversation"], alert["kind"], alert["severity"], alert["status"]) == (
        pseudonym,
        "crisis",
        "crisis",
        "open",
    )
    assert "kill" not in repr(queue)

    response = await post(dashboard, client, f"/escalation/alerts/{alert['id']}/acknowledge")
    assert response.status == 303
    queue = await (await client.get("/escalation/queue.json")).json()
    assert queue["alerts"][0]["status"] == "acknowledged"
    assert queue["alerts"][0]["acknowledged_by"] == client.account.name  # type: ignore[attr-defined]

    response = await post(dashboard, client, f"/escalation/alerts/{alert['id']}/resolve")
    assert response.status == 303
    assert (await (await client.get("/escalation/queue.json")).json())["alerts"] == []

    records = await audit_records(dashboard.parts.database, AuditFilter(action="alert"))
    assert [(r.action, r.target) for r in records] == [
        ("alert.acknowledge", str(alert["id"])),
        ("alert.resolve", str(alert["id"])),
    ]


async def test_a_moderator_takes_over_writes_hands_back_and_every_step_is_audited(
    dashboard: DashboardUnderTest,
) -> None:
    conversation = dashboard.parts.conversation
    escalation = conversation.escalation
    async with telegram_for(escalation) as telegram:
        pseudonym = await user_in_crisis(escalation, conversation, USER_CHAT + 1)
        client = await dashboard.client("moderator")
        name = client.account.name  # type: ignore[attr-defined]
        library = dashboard.parts.library.current()

        response = await post(dashboard, client, f"/escalation/{pseudonym}/takeover")
        assert response.status == 303
        assert "talking+with+the+user" in response.headers["Location"]
        assert telegram.sent_messages(USER_CHAT + 1)[-1]["text"] == library.reply(
            "takeover_started", operator="the test team"
        )

        # While a person handles it, the bot stays silent, even in crisis state.
        replies = await conversation.handle(pseudonym, TextIn("are you there"))
        assert replies == []

        words = "Hello, I'm here with you. Are you safe right now?"
        response = await post(dashboard, client, f"/escalation/{pseudonym}/message", text=words)
        assert response.status == 303
        assert telegram.sent_messages(USER_CHAT + 1)[-1]["text"] == library.reply(
            "team_message", operator="the test team", text=words
        )

        live = await (await client.get(f"/escalation/{pseudonym}/messages.json")).json()
        assert [m["text"] for m in live["messages"][-2:]] == [
            "are you there",
            library.reply("team_message", operator="the test team", text=words),
        ]
        assert (live["handling"], live["handled_by"]) == ("person", name)
        last = live["messages"][-1]["id"]
        newer = f"/escalation/{pseudonym}/messages.json?after={last}"
        assert (await (await client.get(newer)).json())["messages"] == []

        page = await (await client.get(f"/escalation/{pseudonym}")).text()
        assert f"a person: {name}" in page
        assert "are you there" in page and "Are you safe right now?" in page

        response = await post(dashboard, client, f"/escalation/{pseudonym}/handback")
        assert response.status == 303
        assert telegram.sent_messages(USER_CHAT + 1)[-1]["text"] == library.reply("handed_back")

        response = await post(dashboard, client, f"/escalation/{pseudonym}/mute", muted="1")
        assert response.status == 303
        response = await post(dashboard, client, f"/escalation/{pseudonym}/close-crisis")
        assert response.status == 303
        state = await dashboard.parts.store.load_user(pseudonym)
        assert (state.in_crisis, state.muted, state.handling) == (False, True, "bot")

    records = await audit_records(dashboard.parts.database, AuditFilter(target=pseudonym))
    assert {r.actor for r in records} == {name}
    actions = [r.action for r in records]
    assert actions == [
        "takeover.start",
        "takeover.message",
        "escalation.view",
        "takeover.hand_back",
        "user.mute",
        "crisis.close",
    ]
    message = next(r for r in records if r.action == "takeover.message")
    assert message.detail == {"delivered": True, "chars": len(words)}
    assert all("safe" not in repr(r.detail) for r in records)


async def test_an_unknown_conversation_is_not_found(dashboard: DashboardUnderTest) -> None:
    client = await dashboard.client("admin")
    assert (await client.get("/escalation/" + "0" * 64)).status == 404
    response = await post(dashboard, client, "/escalation/" + "0" * 64 + "/takeover")
    assert response.status == 404
