"""The Bot API emulator, driven by the real python-telegram-bot.

The end-to-end tests of the bot trust the emulator to answer like Telegram. These tests check
that trust with PTB itself: an Application polling it, a Bot calling it directly, and raw HTTP
where PTB would hide what went over the wire.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator

import aiohttp
import pytest
from telegram import Bot, BotCommand, InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.error import BadRequest, Conflict, Forbidden, InvalidToken, RetryAfter
from telegram.ext import (
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from tests.emulator import BotAPIEmulator, UploadedFile

TOKEN = "123:ABC"
USER = 4242
OTHER_USER = 777
WELCOME_BUTTONS = ["Read a testimony", "Help"]


# ---------------------------------------------------------------------- a small bot under test


async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    assert update.message is not None
    payload = f" ({' '.join(context.args)})" if context.args else ""
    keyboard = InlineKeyboardMarkup(
        [
            [InlineKeyboardButton(WELCOME_BUTTONS[0], callback_data="testimony:1")],
            [InlineKeyboardButton(WELCOME_BUTTONS[1], callback_data="help")],
        ]
    )
    await update.message.reply_text(f"Welcome{payload}", reply_markup=keyboard)


async def echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    assert update.message is not None
    assert update.message.text is not None
    context.bot_data.setdefault("update_ids", []).append(update.update_id)
    await update.message.reply_text(update.message.text)


async def name_media(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    message = update.message
    assert message is not None
    kind = "sticker" if message.sticker else "photo" if message.photo else "voice"
    await message.reply_text(kind)


async def press(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    query = update.callback_query
    assert query is not None
    await query.answer()
    await query.edit_message_text(f"You chose {query.data}")


@pytest.fixture
async def emu() -> AsyncIterator[BotAPIEmulator]:
    async with BotAPIEmulator() as emulator:
        yield emulator


@pytest.fixture
async def app(emu: BotAPIEmulator) -> AsyncIterator[Application]:  # type: ignore[type-arg]
    """An Application polling the emulator, started and stopped the way the bot does it."""
    application = ApplicationBuilder().token(TOKEN).base_url(emu.base_url).build()
    application.add_handler(CommandHandler("start", start))
    application.add_handler(MessageHandler(filters.TEXT & ~filters.COMMAND, echo))
    application.add_handler(
        MessageHandler(filters.Sticker.ALL | filters.PHOTO | filters.VOICE, name_media)
    )
    application.add_handler(CallbackQueryHandler(press))
    await application.initialize()
    await application.start()
    assert application.updater is not None
    await application.updater.start_polling(poll_interval=0.0, timeout=1)
    try:
        yield application
    finally:
        await application.updater.stop()
        await application.stop()
        await application.shutdown()


@pytest.fixture
async def bot_client(emu: BotAPIEmulator) -> AsyncIterator[Bot]:
    """A bare Bot, for calling methods directly and seeing PTB's exceptions.

    Not named ``bot``: tests/conftest.py has a ``bot`` fixture, the real bot.
    """
    async with Bot(TOKEN, base_url=emu.base_url) as client:
        yield client


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


# ---------------------------------------------------------------------- through an Application


class TestApplicationPolling:
    async def test_start_up_follows_ptb_order(
        self,
        emu: BotAPIEmulator,
        app: Application,  # type: ignore[type-arg]
    ) -> None:
        emu.push_text(USER, "ready?")
        await emu.wait_for_messages(USER, 1)

        methods = [call.method for call in emu.calls]
        assert methods[:3] == ["getMe", "deleteWebhook", "getUpdates"]

    async def test_start_with_payload_replies_with_keyboard(
        self,
        emu: BotAPIEmulator,
        app: Application,  # type: ignore[type-arg]
    ) -> None:
        emu.push_command(USER, "start", "camp_1")

        [welcome] = await emu.wait_for_messages(USER, 1)

        assert welcome["text"] == "Welcome (camp_1)"
        assert emu.buttons(welcome) == WELCOME_BUTTONS
        assert emu.callback_data(welcome, "Help") == "help"

    async def test_button_press_is_answered_and_edits_the_message(
        self,
        emu: BotAPIEmulator,
        app: Application,  # type: ignore[type-arg]
    ) -> None:
        emu.push_command(USER, "start")
        [welcome] = await emu.wait_for_messages(USER, 1)
        mark = len(emu.calls)

        emu.push_callback(USER, emu.callback_data(welcome, "Help"), welcome["message_id"])

        assert (await emu.wait_for_call("answerCallbackQuery", since=mark)).ok
        assert (await emu.wait_for_call("editMessageText", since=mark)).ok
        edited = emu.message(USER, welcome["message_id"])
        assert edited is not None
        assert edited["text"] == "You chose help"
        assert "reply_markup" not in edited  # an edit that does not repeat the keyboard drops it

    @pytest.mark.parametrize("text", ["hello", "42", "true", "null", '{"a": 1}', "Привет 👋"])
    async def test_echo_keeps_text_that_looks_like_json(
        self,
        emu: BotAPIEmulator,
        app: Application,  # type: ignore[type-arg]
        text: str,
    ) -> None:
        emu.push_text(USER, text)

        [reply] = await emu.wait_for_messages(USER, 1)

        assert reply["text"] == text

    async def test_a_chat_numbers_incoming_and_outgoing_messages_together(
        self,
        emu: BotAPIEmulator,
        app: Application,  # type: ignore[type-arg]
    ) -> None:
        emu.push_text(USER, "one")
        emu.push_text(OTHER_USER, "other")
        emu.push_text(USER, "two")

        replies = await emu.wait_for_messages(USER, 2)
        [other] = await emu.wait_for_messages(OTHER_USER, 1)

        assert [reply["message_id"] for reply in replies] == [3, 4]
        assert other["message_id"] == 2

    async def test_command_addressed_to_the_bot_in_a_group(
        self,
        emu: BotAPIEmulator,
        app: Application,  # type: ignore[type-arg]
    ) -> None:
        emu.push_text(USER, f"/start@{emu.bot_username}", chat_type="group", username="tester")

        [welcome] = await emu.wait_for_messages(-USER, 1)

        assert welcome["text"] == "Welcome"

    async def test_media_updates_parse_in_ptb(
        self,
        emu: BotAPIEmulator,
        app: Application,  # type: ignore[type-arg]
    ) -> None:
        emu.push_sticker(USER)
        emu.push_photo(USER, caption="look")
        emu.push_voice(USER)

        replies = await emu.wait_for_messages(USER, 3)

        assert [reply["text"] for reply in replies] == ["sticker", "photo", "voice"]

    async def test_duplicate_delivery_reaches_the_bot_again(
        self,
        emu: BotAPIEmulator,
        app: Application,  # type: ignore[type-arg]
    ) -> None:
        update_id = emu.push_text(USER, "once")
        await emu.wait_for_messages(USER, 1)

        emu.push_duplicate(update_id)
        replies = await emu.wait_for_messages(USER, 2)

        assert [reply["text"] for reply in replies] == ["once", "once"]
        assert app.bot_data["update_ids"] == [update_id, update_id]

    async def test_updates_after_a_duplicate_are_delivered_once(
        self,
        emu: BotAPIEmulator,
        app: Application,  # type: ignore[type-arg]
    ) -> None:
        first = emu.push_text(USER, "first")
        emu.push_text(USER, "second")
        await emu.wait_for_messages(USER, 2)

        emu.push_duplicate(first)
        emu.push_text(USER, "third")
        await emu.wait_for_quiet(quiet=0.3)  # time for a wrongly repeated update to show

        texts = [reply["text"] for reply in emu.sent_messages(USER)]
        assert texts == ["first", "second", "first", "third"]


# ---------------------------------------------------------------------- getUpdates directly


class TestGetUpdates:
    async def test_offset_confirms_earlier_updates(
        self, emu: BotAPIEmulator, bot_client: Bot
    ) -> None:
        ids = [emu.push_text(USER, text) for text in ("a", "b", "c")]

        assert [u.update_id for u in await bot_client.get_updates()] == ids
        assert [u.update_id for u in await bot_client.get_updates(offset=ids[1])] == ids[1:]
        assert [u.update_id for u in await bot_client.get_updates(offset=ids[0])] == ids[1:]
        assert await bot_client.get_updates(offset=ids[2] + 1) == ()

    async def test_unconfirmed_updates_come_again(
        self, emu: BotAPIEmulator, bot_client: Bot
    ) -> None:
        update_id = emu.push_text(USER, "hello")

        first = await bot_client.get_updates()
        again = await bot_client.get_updates()

        assert [u.update_id for u in first] == [u.update_id for u in again] == [update_id]

    async def test_limit_and_negative_offset(self, emu: BotAPIEmulator, bot_client: Bot) -> None:
        ids = [emu.push_text(USER, str(n)) for n in range(5)]

        assert [u.update_id for u in await bot_client.get_updates(limit=2)] == ids[:2]
        assert [u.update_id for u in await bot_client.get_updates(offset=-2)] == ids[3:]
        assert [u.update_id for u in await bot_client.get_updates()] == ids[3:]

    async def test_long_poll_returns_when_an_update_arrives(
        self, emu: BotAPIEmulator, bot_client: Bot
    ) -> None:
        started = time.monotonic()
        poll = asyncio.create_task(bot_client.get_updates(timeout=5))
        await asyncio.sleep(0.1)

        update_id = emu.push_text(USER, "wake up")
        updates = await poll

        assert [u.update_id for u in updates] == [update_id]
        assert time.monotonic() - started < 1.0

    async def test_long_poll_without_updates_waits_for_its_timeout(self, bot_client: Bot) -> None:
        started = time.monotonic()

        assert await bot_client.get_updates(timeout=1) == ()

        assert 0.9 < time.monotonic() - started < 2.0

    async def test_a_second_poller_ends_the_first_with_conflict(
        self, emu: BotAPIEmulator, bot_client: Bot
    ) -> None:
        first = asyncio.create_task(bot_client.get_updates(timeout=5))
        await asyncio.sleep(0.1)

        # a second copy of the bot: PTB's own Bot never polls twice at once
        async with Bot(TOKEN, base_url=emu.base_url) as second_copy:
            second = await second_copy.get_updates(timeout=0)

        with pytest.raises(Conflict, match="terminated by other getUpdates"):
            await first
        assert second == ()

    async def test_duplicate_is_delivered_below_the_offset(
        self, emu: BotAPIEmulator, bot_client: Bot
    ) -> None:
        update_id = emu.push_text(USER, "hello")
        await bot_client.get_updates()
        assert await bot_client.get_updates(offset=update_id + 1) == ()

        emu.push_duplicate(update_id)
        [again] = await bot_client.get_updates(offset=update_id + 1)

        assert again.update_id == update_id
        assert again.message is not None
        assert again.message.text == "hello"

    async def test_push_raw_keeps_or_assigns_update_ids(
        self, emu: BotAPIEmulator, http: aiohttp.ClientSession
    ) -> None:
        given = emu.push_raw({"update_id": 500_000, "message": {"message_id": 1}})
        assigned = emu.push_raw({"edited_message": None})

        async with http.post(f"{emu.base_url}{TOKEN}/getUpdates") as response:
            body = await response.json()

        assert (given, assigned) == (500_000, 500_001)
        assert body["result"] == [
            {"update_id": 500_000, "message": {"message_id": 1}},
            {"update_id": 500_001, "edited_message": None},
        ]

    async def test_webhook_blocks_polling_until_deleted(
        self, emu: BotAPIEmulator, bot_client: Bot
    ) -> None:
        await bot_client.set_webhook("https://bot.example/hook")
        emu.push_text(USER, "hello")

        with pytest.raises(Conflict, match="webhook is active"):
            await bot_client.get_updates()
        info = await bot_client.get_webhook_info()
        assert (info.url, info.pending_update_count) == ("https://bot.example/hook", 1)

        await bot_client.delete_webhook(drop_pending_updates=True)
        assert await bot_client.get_updates() == ()


# ---------------------------------------------------------------------- other methods directly


class TestMethods:
    """Other methods, called directly.

    PTB strips "Bad Request: " from a description and capitalizes the rest ("Button_data_invalid"),
    hence the case-insensitive matches.
    """

    async def test_get_me_is_the_bot_of_the_token(self, bot_client: Bot) -> None:
        me = await bot_client.get_me()

        assert (me.id, me.is_bot, me.username) == (123, True, "defector_voices_test_bot")

    async def test_commands_are_remembered_per_language(
        self, emu: BotAPIEmulator, bot_client: Bot
    ) -> None:
        await bot_client.set_my_commands([BotCommand("start", "Begin")])
        await bot_client.set_my_commands([BotCommand("start", "Начать")], language_code="ru")

        assert [c.description for c in await bot_client.get_my_commands()] == ["Begin"]
        assert [c.description for c in await bot_client.get_my_commands(language_code="ru")] == [
            "Начать"
        ]
        await bot_client.delete_my_commands()
        assert await bot_client.get_my_commands() == ()
        assert emu.bot_commands(language_code="ru") == [
            {"command": "start", "description": "Начать"}
        ]

    async def test_send_message_returns_a_full_message(self, bot_client: Bot) -> None:
        keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("Go", callback_data="go")]])

        message = await bot_client.send_message(USER, "hi", reply_markup=keyboard)

        assert message.from_user is not None
        assert message.from_user.id == bot_client.id
        assert (message.chat.id, message.chat.type, message.text) == (USER, "private", "hi")
        assert message.reply_markup == keyboard

    async def test_reply_to_a_pushed_message(self, emu: BotAPIEmulator, bot_client: Bot) -> None:
        emu.push_text(USER, "question")

        reply = await bot_client.send_message(USER, "answer", reply_to_message_id=1)

        assert reply.reply_to_message is not None
        assert reply.reply_to_message.text == "question"
        with pytest.raises(BadRequest, match=r"(?i)message to be replied not found"):
            await bot_client.send_message(USER, "answer", reply_to_message_id=99)

    async def test_telegram_limits_are_enforced(self, bot_client: Bot) -> None:
        long_data = InlineKeyboardMarkup([[InlineKeyboardButton("x", callback_data="d" * 65)]])

        with pytest.raises(BadRequest, match=r"(?i)message is too long"):
            await bot_client.send_message(USER, "x" * 4097)
        with pytest.raises(BadRequest, match=r"(?i)button_data_invalid"):
            await bot_client.send_message(USER, "x", reply_markup=long_data)

    async def test_edit_and_delete_refusals(self, bot_client: Bot) -> None:
        message = await bot_client.send_message(USER, "same")

        with pytest.raises(BadRequest, match=r"(?i)message is not modified"):
            await bot_client.edit_message_text("same", USER, message.message_id)
        assert await bot_client.delete_message(USER, message.message_id)
        with pytest.raises(BadRequest, match=r"(?i)message to delete not found"):
            await bot_client.delete_message(USER, message.message_id)
        with pytest.raises(BadRequest, match=r"(?i)message to edit not found"):
            await bot_client.edit_message_text("other", USER, message.message_id)

    async def test_unknown_callback_query_is_refused(self, bot_client: Bot) -> None:
        with pytest.raises(BadRequest, match=r"(?i)query id is invalid"):
            await bot_client.answer_callback_query("12345")


# ---------------------------------------------------------------------- faults


class TestFaultInjection:
    # PTB itself reads the deprecated int form of retry_after while building RetryAfter.
    @pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")
    async def test_429_raises_retry_after_and_sends_nothing(
        self, emu: BotAPIEmulator, bot_client: Bot
    ) -> None:
        emu.fail_next("sendMessage", retry_after=3)

        with pytest.raises(RetryAfter):
            await bot_client.send_message(USER, "too fast")
        await bot_client.send_message(USER, "later")

        [refused] = [call for call in emu.calls_to("sendMessage") if not call.ok]
        assert (refused.status, refused.description) == (429, "Too Many Requests: retry after 3")
        assert [m["text"] for m in emu.sent_messages(USER)] == ["later"]

    async def test_failures_repeat_times_then_stop(
        self, emu: BotAPIEmulator, bot_client: Bot
    ) -> None:
        emu.fail_next("sendChatAction", status=403, times=2)

        for _ in range(2):
            with pytest.raises(Forbidden, match=r"(?i)bot was blocked by the user"):
                await bot_client.send_chat_action(USER, "typing")
        assert await bot_client.send_chat_action(USER, "typing")

    async def test_delay_next_slows_one_call(self, emu: BotAPIEmulator, bot_client: Bot) -> None:
        emu.delay_next("sendChatAction", 0.3)

        started = time.monotonic()
        await bot_client.send_chat_action(USER, "typing")
        delayed = time.monotonic() - started
        started = time.monotonic()
        await bot_client.send_chat_action(USER, "typing")

        assert delayed >= 0.3
        assert time.monotonic() - started < 0.3

    def test_faults_for_unknown_methods_are_refused(self, emu: BotAPIEmulator) -> None:
        with pytest.raises(ValueError, match="sendMesage"):
            emu.fail_next("sendMesage")


# ---------------------------------------------------------------------- the HTTP contract


class TestHttp:
    async def test_malformed_token_is_unauthorized(
        self, emu: BotAPIEmulator, http: aiohttp.ClientSession
    ) -> None:
        async with http.post(f"{emu.base_url}not-a-token/getMe") as response:
            assert response.status == 401
            assert await response.json() == {
                "ok": False,
                "error_code": 401,
                "description": "Unauthorized",
            }

    async def test_ptb_reports_a_bad_token(self, emu: BotAPIEmulator) -> None:
        with pytest.raises(InvalidToken):
            await Bot("not-a-token", base_url=emu.base_url).get_me()

    async def test_unknown_method_is_not_found(
        self, emu: BotAPIEmulator, http: aiohttp.ClientSession
    ) -> None:
        async with http.post(f"{emu.base_url}{TOKEN}/sendTelepathy") as response:
            assert response.status == 404
            assert (await response.json())["ok"] is False
        assert emu.calls[-1].status == 404

    async def test_json_and_form_bodies_decode_alike(
        self, emu: BotAPIEmulator, http: aiohttp.ClientSession
    ) -> None:
        markup = {"inline_keyboard": [[{"text": "Go", "callback_data": "go"}]]}
        url = f"{emu.base_url}{TOKEN}/sendMessage"

        await http.post(url, json={"chat_id": USER, "text": "42", "reply_markup": markup})
        form = {"chat_id": str(USER), "text": "42", "reply_markup": json.dumps(markup)}
        await http.post(url, data=form)
        await http.get(url, params=form)

        sent = emu.sent_messages(USER)
        assert [(m["chat_id"], m["text"], m["reply_markup"]) for m in sent] == [
            (USER, "42", markup)
        ] * 3

    async def test_multipart_fields_decode_and_files_are_kept(
        self, emu: BotAPIEmulator, http: aiohttp.ClientSession
    ) -> None:
        form = aiohttp.FormData()
        form.add_field("chat_id", str(USER))
        form.add_field("text", "true")
        form.add_field("document", b"%PDF", filename="a.pdf", content_type="application/pdf")

        await http.post(f"{emu.base_url}{TOKEN}/sendMessage", data=form)

        params = emu.calls[-1].params
        assert (params["chat_id"], params["text"]) == (USER, "true")
        assert params["document"] == UploadedFile("a.pdf", "application/pdf", b"%PDF")

    async def test_method_names_are_case_insensitive(
        self, emu: BotAPIEmulator, http: aiohttp.ClientSession
    ) -> None:
        async with http.post(f"{emu.base_url}{TOKEN}/getme") as response:
            assert (await response.json())["result"]["is_bot"] is True
        assert emu.calls[-1].method == "getMe"


# ---------------------------------------------------------------------- the helpers themselves


class TestHelpers:
    async def test_a_failed_wait_shows_what_arrived(
        self, emu: BotAPIEmulator, bot_client: Bot
    ) -> None:
        await bot_client.send_message(USER, "only one")

        with pytest.raises(AssertionError) as failure:
            await emu.wait_for_messages(USER, 2, timeout=0.1)

        report = str(failure.value)
        assert "expected 2 message(s) to chat 4242" in report
        assert "'only one'" in report
        assert "sendMessage" in report

    async def test_wait_for_call_waits_for_the_next_call(
        self,
        emu: BotAPIEmulator,
        app: Application,  # type: ignore[type-arg]
    ) -> None:
        await emu.wait_for_call("getUpdates")  # the bot is polling
        mark = len(emu.calls)

        emu.push_text(USER, "hi")
        poll = await emu.wait_for_call("getUpdates")

        assert emu.calls.index(poll) >= mark

    async def test_quiet_means_the_bot_has_acted(
        self,
        emu: BotAPIEmulator,
        app: Application,  # type: ignore[type-arg]
    ) -> None:
        emu.push_text(USER, "hi")

        await emu.wait_for_quiet(quiet=0.3)

        assert [m["text"] for m in emu.sent_messages(USER)] == ["hi"]
