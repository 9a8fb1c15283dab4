"""Telegram updates in, replies out: the thin layer between python-telegram-bot and the bot.

Handlers only translate: an update becomes an `Incoming` event for `Conversation.handle`,
and each `Reply` becomes a Telegram message with inline buttons. Nothing here decides what
to say, and nothing here stores a name, username or raw Telegram id.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from dataclasses import dataclass

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.constants import ChatAction, ChatType
from telegram.error import TelegramError
from telegram.ext import (
    Application,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from bot.conversation import Conversation, Incoming, TextIn
from bot.policy.compose import Reply
from bot.policy.decision import Button, Command, NonText
from bot.storage.pseudonym import pseudonymise
from bot.telegram.delivery import with_retries
from bot.telegram.journal import UpdateJournal

log = logging.getLogger(__name__)

COMMANDS = ("start", "help", "resources", "privacy", "forget", "human")
"""The commands in the bot's menu, each described by the reply text `command_<name>`."""

TELEGRAM_MAX_TEXT = 4096
TYPING_AFTER_SECONDS = 0.5
TYPING_MAX_TURNS_IN_FLIGHT = 8
"""Past this many turns at once the bot is loaded: Bot API calls are kept for replies."""


@dataclass(frozen=True)
class FrontEnd:
    """What the handlers need: the conversation and the secret for pseudonyms."""

    conversation: Conversation
    pseudonym_secret: str
    journal: UpdateJournal | None = None
    """Polling mode: the updates taken from Telegram, kept until handled (see its module)."""

    async def respond(self, update: Update, incoming: Incoming) -> None:
        """Answer `incoming` once, however often Telegram delivers the update."""
        user = update.effective_user
        chat = update.effective_chat
        if user is None or chat is None:
            return
        # A recovered update was claimed by the run that was killed while answering it.
        journal = self.journal
        recovered = journal is not None and journal.is_recovered(update.update_id)
        escalation = self.conversation.escalation
        pseudonym = pseudonymise(user.id, self.pseudonym_secret)
        delivered = asyncio.Event()

        async def deliver(reply: Reply) -> None:
            await send_reply(update, reply)
            delivered.set()
            if journal is not None:
                journal.sent(update.update_id)

        # The killed run sent the reply but may not have recorded the turn: record, not resend.
        resend = journal is None or not journal.was_sent(update.update_id)
        handling = asyncio.ensure_future(
            self.conversation.handle(
                pseudonym,
                incoming,
                update_id=update.update_id,
                recovered=recovered,
                contact=escalation.seal(chat.id),
                deliver=deliver if resend else None,
            )
        )
        typed = (
            isinstance(incoming, TextIn)
            and resend
            and self.conversation.turns_in_flight <= TYPING_MAX_TURNS_IN_FLIGHT
        )
        await _typing_while_slow(update, handling, typed, delivered)

    async def on_text(self, update: Update, _: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        if message is not None and message.text is not None:
            await self.respond(update, TextIn(message.text))

    async def on_command(self, update: Update, _: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        if message is None or message.text is None:
            return
        head, _sep, payload = message.text.strip().partition(" ")
        name = head[1:].split("@", 1)[0].lower()
        await self.respond(update, Command(name, payload.strip() or None))

    async def on_button(self, update: Update, _: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        if query is None:
            return
        try:
            await query.answer()
        except TelegramError as exc:  # an old button: answering fails, the press still counts
            log.info("callback answer failed: %s", exc)
        await self.respond(update, Button(query.data or ""))

    async def on_non_text(self, update: Update, _: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        if message is None:
            return
        await self.respond(update, NonText(_non_text_kind(update)))

    async def on_group(self, update: Update, _: ContextTypes.DEFAULT_TYPE) -> None:
        """In groups: store nothing, counter nothing; a command gets a pointer to private chat."""
        message = update.effective_message
        if message is not None and message.text and message.text.startswith("/"):
            library = self.conversation.library.current()
            await message.reply_text(library.reply("group_chat"))

    async def on_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Never let an error kill the bot: log it (without user text) and answer safely."""
        log.error(
            "error while handling an update: %r",
            context.error,
            exc_info=(type(context.error), context.error, context.error.__traceback__)
            if context.error
            else None,
        )
        if not isinstance(update, Update) or update.effective_chat is None:
            return
        if update.effective_chat.type != ChatType.PRIVATE:
            return
        try:
            text = self.conversation.library.current().reply("error")
            chat_id = update.effective_chat.id
            await with_retries(lambda: context.bot.send_message(chat_id, text))
        except Exception:  # the safe reply itself failed: nothing more to do than log
            log.exception("could not send the error reply")


def _non_text_kind(update: Update) -> str:
    message = update.effective_message
    if message is None:
        return "unknown"
    for kind in ("sticker", "photo", "voice", "video", "audio", "document", "location"):
        if getattr(message, kind, None):
            return kind
    return "other"


async def _typing_while_slow(
    update: Update, handling: asyncio.Future[list[Reply]], typed: bool, delivered: asyncio.Event
) -> list[Reply]:
    """The turn's replies; "typing..." is shown only if no reply left within
    `TYPING_AFTER_SECONDS`.

    A typing action before every reply would cost a Bot API call (counted against Telegram's
    30 calls a second) and a round trip of latency, for an indicator nobody sees when the
    reply follows within a fraction of a second. Under load (more than
    `TYPING_MAX_TURNS_IN_FLIGHT` turns at once) replies are slow because the bot is busy, and
    a typing action for each would take the Bot API calls the replies need (measured with
    `make bench`: 14% of the bot's CPU when driven flat out), so none is sent (`typed` is
    False).
    """
    if not typed:
        return await handling
    try:
        return await asyncio.wait_for(asyncio.shield(handling), TYPING_AFTER_SECONDS)
    except TimeoutError:
        if not delivered.is_set():  # the reply left, the turn is only committing
            await _typing(update)
        return await handling
    except asyncio.CancelledError:
        handling.cancel()
        raise


async def _typing(update: Update) -> None:
    chat = update.effective_chat
    if chat is None:
        return
    try:
        await chat.send_action(ChatAction.TYPING)
    except TelegramError as exc:  # cosmetic: never fail a reply because of it
        log.info("typing indicator failed: %s", exc)


def keyboard(reply: Reply) -> InlineKeyboardMarkup | None:
    """One button per row for actions; country buttons two to a row to keep the list short."""
    if not reply.buttons:
        return None
    rows: list[list[InlineKeyboardButton]] = []
    for label, data in reply.buttons:
        button = InlineKeyboardButton(label, callback_data=data)
        last = rows[-1] if rows else []
        pairs_with_last = len(last) == 1 and str(last[0].callback_data).startswith("country:")
        if data.startswith("country:") and pairs_with_last:
            last.append(button)
        else:
            rows.append([button])
    return InlineKeyboardMarkup(rows)


def split_text(text: str, limit: int = TELEGRAM_MAX_TEXT) -> list[str]:
    """Split at paragraph breaks so no part exceeds Telegram's message limit."""
    if len(text) <= limit:
        return [text]
    parts: list[str] = []
    current = ""
    for paragraph in text.split("\n\n"):
        while len(paragraph) > limit:
            if current:
                parts.append(current)
                current = ""
            parts.append(paragraph[:limit])
            paragraph = paragraph[limit:]
        candidate = f"{current}\n\n{paragraph}" if current else paragraph
        if len(candidate) > limit:
            parts.append(current)
            current = paragraph
        else:
            current = candidate
    if current:
        parts.append(current)
    return parts


async def send_reply(update: Update, reply: Reply) -> None:
    chat = update.effective_chat
    if chat is None:
        return
    parts = split_text(reply.text)
    for index, part in enumerate(parts):
        markup = keyboard(reply) if index == len(parts) - 1 else None
        await with_retries(
            functools.partial(
                chat.send_message, part, reply_markup=markup, disable_web_page_preview=True
            )
        )


def add_handlers(application: Application, front_end: FrontEnd) -> None:  # type: ignore[type-arg]
    """Every route of the bot, in one place."""
    private = filters.ChatType.PRIVATE
    application.add_handler(MessageHandler(~private, front_end.on_group), group=0)
    application.add_handler(CommandHandler(list(COMMANDS), front_end.on_command, filters=private))
    application.add_handler(MessageHandler(private & filters.COMMAND, front_end.on_command))
    application.add_handler(CallbackQueryHandler(front_end.on_button))
    application.add_handler(MessageHandler(private & filters.TEXT, front_end.on_text))
    application.add_handler(
        MessageHandler(private & ~filters.TEXT & ~filters.StatusUpdate.ALL, front_end.on_non_text)
    )
    application.add_error_handler(front_end.on_error)
