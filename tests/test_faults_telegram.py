"""Telegram's API fails under the running bot: 429s, 5xx, timeouts, connection resets.

Every failure is injected by the Bot API emulator and has no effect there (a failed
sendMessage sends nothing), so "sent once" is exact: the reply must be retried until it
goes through, and must not go through twice.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bot.nlu.server import LocalNLUServer
from tests.conftest import BACKENDS, RunningBot, running_bot

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module", params=BACKENDS)
async def quick_bot(
    request: pytest.FixtureRequest,
    nlu_server: LocalNLUServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[RunningBot]:
    """A bot that gives up on a Telegram call after 1 s (10 s in production)."""
    tmp = tmp_path_factory.mktemp(f"telegram-faults-{request.param}")
    async with running_bot(request.param, tmp, nlu_server, telegram_timeout_seconds=1.0) as bot:
        yield bot


def send_statuses(bot: RunningBot, chat_id: int) -> list[int | None]:
    calls = bot.emulator.calls_to("sendMessage")
    return [call.status for call in calls if call.params.get("chat_id") == chat_id]


async def test_429_5xx_and_resets_are_retried_until_the_reply_is_sent_once(
    quick_bot: RunningBot,
) -> None:
    emulator = quick_bot.emulator
    user = quick_bot.new_user()
    emulator.reset_next("sendMessage")
    emulator.fail_next("sendMessage", status=429, retry_after=1)
    emulator.fail_next("sendMessage", status=500)
    emulator.fail_next("sendMessage", status=502)
    emulator.push_text(user, "/help")
    messages = await emulator.wait_for_messages(user, 1, timeout=30)
    await emulator.wait_for_quiet(quiet=1.0, timeout=20)
    assert send_statuses(quick_bot, user) == [0, 429, 500, 502, 200]
    assert len(emulator.sent_messages(user)) == 1
    assert "/forget" in messages[0]["text"]


async def test_a_timed_out_send_is_retried_and_sent_once(quick_bot: RunningBot) -> None:
    emulator = quick_bot.emulator
    user = quick_bot.new_user()
    emulator.delay_next("sendMessage", 3.0)  # longer than the bot waits
    emulator.push_text(user, "/privacy")
    await emulator.wait_for_messages(user, 1, timeout=30)
    await emulator.wait_for_quiet(quiet=3.0, timeout=20)  # past the delayed call's end
    assert send_statuses(quick_bot, user) == [499, 200]
    assert len(emulator.sent_messages(user)) == 1


async def test_a_refused_reply_is_not_retried_and_the_user_gets_the_safe_error_reply(
    quick_bot: RunningBot,
) -> None:
    emulator = quick_bot.emulator
    user = quick_bot.new_user()
    emulator.fail_next("sendMessage", status=400, description="Bad Request: can't parse")
    emulator.push_text(user, "/help")
    messages = await emulator.wait_for_messages(user, 1, timeout=30)
    await emulator.wait_for_quiet(quiet=1.0, timeout=20)
    assert send_statuses(quick_bot, user) == [400, 200]
    assert messages[0]["text"] == quick_bot.library.current().reply("error")


async def test_many_users_through_mixed_failures_get_every_reply_once_and_in_order(
    quick_bot: RunningBot,
) -> None:
    emulator = quick_bot.emulator
    users = [quick_bot.new_user() for _ in range(10)]
    emulator.fail_next("sendMessage", status=500, times=5)
    emulator.reset_next("sendMessage", times=3)
    emulator.fail_next("sendMessage", status=429, retry_after=1, times=2)
    for user in users:
        emulator.push_text(user, "/help")
        emulator.push_text(user, "/privacy")
    for user in users:
        await emulator.wait_for_messages(user, 2, timeout=60)
    await emulator.wait_for_quiet(quiet=1.0, timeout=30)
    library = quick_bot.library.current()
    for user in users:
        texts = [m["text"] for m in emulator.sent_messages(user)]
        assert len(texts) == 2
        assert "/forget" in texts[0]
        assert texts[1].startswith(library.reply("privacy").split("{", 1)[0][:20])
    statuses = [s for user in users for s in send_statuses(quick_bot, user)]
    assert statuses.count(200) == 20
    assert sorted(s for s in statuses if s != 200) == [0, 0, 0, 429, 429, 500, 500, 500, 500, 500]
    for user in users:
        stored = await quick_bot.store.messages_for(quick_bot.pseudonym(user))
        assert [m.kind for m in stored if m.direction == "out"] == ["help", "privacy"]
