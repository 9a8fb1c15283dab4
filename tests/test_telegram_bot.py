"""The Telegram front end end to end: duplicates, ordering, errors, menus, privacy, dead NLU.

All through python-telegram-bot against the Bot API emulator, with the real Rasa server and
real databases (the `bot` fixture runs once on SQLite and once on PostgreSQL).
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest

from bot.nlu.server import LocalNLUServer
from bot.telegram import handlers
from tests.conftest import RunningBot, free_port, running_bot

pytestmark = pytest.mark.e2e


async def test_the_command_menu_is_set_at_start_up(bot: RunningBot) -> None:
    commands = {c["command"] for c in bot.emulator.bot_commands()}
    assert commands == {"start", "help", "resources", "privacy", "forget", "human"}


async def test_an_update_delivered_twice_is_answered_once(bot: RunningBot) -> None:
    user = bot.new_user()
    update_id = bot.emulator.push_text(user, "hello there")
    await bot.emulator.wait_for_messages(user, 1)
    bot.emulator.push_duplicate(update_id)
    await bot.emulator.wait_for_quiet(quiet=1.5, timeout=20)
    assert len(bot.emulator.sent_messages(user)) == 1
    stored = await bot.store.messages_for(bot.pseudonym(user))
    assert [m.direction for m in stored] == ["in", "out"]


async def test_one_users_messages_are_answered_in_order(bot: RunningBot) -> None:
    user = bot.new_user()
    commands = ["/privacy", "/help", "/start", "/forget", "/resources", "/help"]
    for command in commands:
        bot.emulator.push_text(user, command)
    await bot.emulator.wait_for_messages(user, len(commands), timeout=30)
    stored = await bot.store.messages_for(bot.pseudonym(user))
    kinds = [m.kind for m in stored if m.direction == "out"]
    assert kinds == ["privacy", "help", "welcome", "forget_confirm", "resources", "help"]
    library = bot.library.current()
    texts = [m["text"] for m in bot.emulator.sent_messages(user)]
    assert texts[0].startswith(
        library.reply("privacy", operator="the test team", retention_days="90")[:40]
    )


async def test_users_are_served_concurrently(bot: RunningBot) -> None:
    users = [bot.new_user() for _ in range(8)]
    for user in users:
        bot.emulator.push_text(user, "the khilafah is the only place where muslims are safe")
    for user in users:
        messages = await bot.emulator.wait_for_messages(user, 1, timeout=30)
        assert "“" in messages[0]["text"] or "In summary" in messages[0]["text"]


async def test_a_quick_answer_comes_without_a_typing_indicator(bot: RunningBot) -> None:
    user = bot.new_user()
    bot.emulator.push_text(user, "what do you think about the dawla")
    await bot.emulator.wait_for_messages(user, 1)
    await bot.emulator.wait_for_quiet(quiet=0.6, timeout=20)
    actions = [c for c in bot.emulator.calls_to("sendChatAction") if c.params["chat_id"] == user]
    assert actions == []


async def test_the_typing_indicator_is_shown_before_a_slow_answer(
    bot: RunningBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(handlers, "TYPING_AFTER_SECONDS", 0.0)
    user = bot.new_user()
    mark = len(bot.emulator.calls)
    bot.emulator.push_text(user, "what do you think about the dawla")
    await bot.emulator.wait_for_messages(user, 1)
    mine = [
        c.method
        for c in bot.emulator.calls[mark:]
        if c.method in {"sendChatAction", "sendMessage"} and c.params.get("chat_id") == user
    ]
    assert mine == ["sendChatAction", "sendMessage"]
    action = next(c for c in bot.emulator.calls[mark:] if c.method == "sendChatAction")
    assert action.params["action"] == "typing"


async def test_no_typing_indicator_when_the_bot_is_loaded(
    bot: RunningBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past `TYPING_MAX_TURNS_IN_FLIGHT` turns at once, the Bot API calls go to replies."""
    monkeypatch.setattr(handlers, "TYPING_AFTER_SECONDS", 0.0)
    monkeypatch.setattr(handlers, "TYPING_MAX_TURNS_IN_FLIGHT", -1)  # any load is too much
    user = bot.new_user()
    mark = len(bot.emulator.calls)
    bot.emulator.push_text(user, "what do you think about the dawla")
    await bot.emulator.wait_for_messages(user, 1)
    methods = [c.method for c in bot.emulator.calls[mark:] if c.params.get("chat_id") == user]
    assert methods == ["sendMessage"]


async def test_no_identity_reaches_the_database(bot: RunningBot) -> None:
    # A Telegram id no other number in the tables can contain by chance (the counter ids of the
    # other tests' users once matched inside an update id of a write key).
    user = 7_340_000_000_000 + bot.new_user()
    bot.emulator.push_text(user, "salam akhi", first_name="Yusuf", username="yusuf_2009")
    await bot.emulator.wait_for_messages(user, 1)
    stored = await bot.store.messages_for(bot.pseudonym(user))
    assert stored
    async with bot.store.database.engine.connect() as connection:
        for table in ("users", "messages"):
            rows = (await connection.exec_driver_sql(f"SELECT * FROM {table}")).all()
            dump = repr(rows)
            assert "yusuf_2009" not in dump
            assert "Yusuf" not in dump
            assert not re.search(rf"(?<!\d){user}(?!\d)", dump.replace(bot.pseudonym(user), ""))


async def test_a_malformed_update_does_not_stop_the_bot(bot: RunningBot) -> None:
    user = bot.new_user()
    bot.emulator.push_raw({"message": {"message_id": 1, "date": 0}})  # no chat, no sender
    bot.emulator.push_raw({"unknown_kind": {"x": 1}})
    bot.emulator.push_raw(
        {
            "callback_query": {
                "id": "1",
                "from": {"id": user, "is_bot": False, "first_name": "T"},
                "chat_instance": "x",
            }
        }
    )  # no data, no message
    bot.emulator.push_text(user, "/help")
    messages = await bot.emulator.wait_for_messages(user, 1, timeout=20)
    assert "/forget" in messages[-1]["text"]


async def test_very_long_and_strange_text_is_stored_cut_and_answered(
    nlu_server: LocalNLUServer, tmp_path: Path
) -> None:
    text = "\u202eمرحبا akhi \u200b\x00 what is life like in sham " * 120
    async with running_bot("sqlite", tmp_path, nlu_server, max_message_chars=500) as bot:
        user = bot.new_user()
        bot.emulator.push_text(user, text[:4096])
        messages = await bot.emulator.wait_for_messages(user, 1, timeout=20)
        library = bot.library.current()
        assert messages[0]["text"].startswith(library.reply("too_long"))
        stored = await bot.store.messages_for(bot.pseudonym(user))
        incoming = stored[0]
        assert incoming.text is not None
        assert len(incoming.text) == 500
        assert "\x00" not in incoming.text
        assert incoming.text.startswith("\u202eمرحبا akhi \u200b")


async def test_a_rate_limited_reply_is_retried_and_sent_once(bot: RunningBot) -> None:
    user = bot.new_user()
    bot.emulator.fail_next("sendMessage", status=429, retry_after=1)
    bot.emulator.push_text(user, "/privacy")
    messages = await bot.emulator.wait_for_messages(user, 1, timeout=20)
    await bot.emulator.wait_for_quiet(quiet=1.5, timeout=20)
    assert len(bot.emulator.sent_messages(user)) == 1
    assert "/forget" in messages[0]["text"]


async def test_forget_leaves_no_copy_in_the_sqlite_file(
    nlu_server: LocalNLUServer, tmp_path: Path
) -> None:
    marker = "zebra-marker-7f3a9c my brother wants to go to sham"
    async with running_bot("sqlite", tmp_path, nlu_server) as bot:
        user = bot.new_user()
        bot.emulator.push_text(user, marker)
        await bot.emulator.wait_for_messages(user, 1)
        bot.emulator.push_text(user, "/forget")
        await bot.emulator.wait_for_messages(user, 2)
        confirm = bot.emulator.sent_messages(user)[-1]
        bot.emulator.push_callback(user, "forget_yes", confirm["message_id"])
        await bot.emulator.wait_for_messages(user, 3)
        assert await bot.store.messages_for(bot.pseudonym(user)) == []
        files = list(tmp_path.glob("test.db*"))
        assert files
        for path in files:
            assert b"zebra-marker-7f3a9c" not in path.read_bytes(), path.name


async def test_a_dead_nlu_server_gets_a_safe_reply_and_crisis_is_still_caught(
    nlu_server: LocalNLUServer, tmp_path: Path
) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    async with running_bot("sqlite", tmp_path, nlu_server, nlu_url=dead) as bot:
        user = bot.new_user()
        bot.emulator.push_text(user, "the dawla protects the sunnis")
        await bot.emulator.wait_for_messages(user, 1, timeout=20)
        bot.emulator.push_text(user, "i want to kill myself")
        await bot.emulator.wait_for_messages(user, 2, timeout=20)
        stored = await bot.store.messages_for(bot.pseudonym(user))
        kinds = [m.kind for m in stored if m.direction == "out"]
        assert kinds == ["nlu_unavailable", "safety_self_harm"]
        incoming = [m for m in stored if m.direction == "in"]
        assert incoming[0].text == "the dawla protects the sunnis"
        assert incoming[0].intent is None
        assert incoming[1].intent_source == "safety_net"


async def test_group_messages_are_not_stored(bot: RunningBot) -> None:
    user = bot.new_user()
    bot.emulator.push_text(user, "i want to join the dawla", chat_type="group", chat_id=-user)
    await bot.emulator.wait_for_quiet(quiet=1.0, timeout=20)
    assert bot.emulator.sent_messages(-user) == []
    assert await bot.store.messages_for(bot.pseudonym(user)) == []


async def test_replies_keep_arriving_while_one_user_is_slow(bot: RunningBot) -> None:
    """A slow sendMessage for one user must not hold up another user's reply."""
    slow, fast = bot.new_user(), bot.new_user()
    bot.emulator.delay_next("sendMessage", 3.0)
    bot.emulator.push_text(slow, "/help")
    await asyncio.sleep(0.2)
    bot.emulator.push_text(fast, "/help")
    await bot.emulator.wait_for_messages(fast, 1, timeout=10)
    assert bot.emulator.sent_messages(slow) == []
    await bot.emulator.wait_for_messages(slow, 1, timeout=10)


async def test_a_broken_database_gets_the_safe_error_reply_and_the_bot_lives_on(
    nlu_server: LocalNLUServer, tmp_path: Path
) -> None:
    async with running_bot("sqlite", tmp_path, nlu_server) as bot:
        user = bot.new_user()
        bot.emulator.push_text(user, "/help")
        await bot.emulator.wait_for_messages(user, 1)
        # Replace the database file with garbage under the running bot.
        await bot.store.database.engine.dispose()
        for path in tmp_path.glob("test.db*"):
            path.write_bytes(b"this is not a database" * 100)
        bot.emulator.push_text(user, "/privacy")
        messages = await bot.emulator.wait_for_messages(user, 2, timeout=20)
        assert messages[-1]["text"] == bot.library.current().reply("error")
        bot.emulator.push_text(user, "/help")
        messages = await bot.emulator.wait_for_messages(user, 3, timeout=20)
        assert messages[-1]["text"] == bot.library.current().reply("error")
