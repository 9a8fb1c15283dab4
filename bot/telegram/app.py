"""Building and running the python-telegram-bot application."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from telegram import BotCommand, Update
from telegram.ext import AIORateLimiter, Application

from bot.content.model import Library
from bot.settings import Settings
from bot.telegram.handlers import COMMANDS, FrontEnd, add_handlers
from bot.telegram.journal import JournalingQueue, UpdateJournal
from bot.telegram.messenger import TelegramMessenger
from bot.telegram.ordering import PerUserOrderedProcessor
from bot.telegram.request import AiohttpRequest
from bot.telegram.tolerant import TolerantApplicationBuilder

log = logging.getLogger(__name__)

BOT_API_CONNECTIONS = 16
"""Connections for Bot API calls other than getUpdates: far more than Telegram's 30 calls a
second need, and a call waits for a free one rather than fail. (With httpx, a pool grown to
python-telegram-bot's default 256 cost 10-15% of the bot's CPU: httpcore checks every pooled
connection before each request.)"""


def bot_api_requests(timeout_seconds: float) -> tuple[AiohttpRequest, AiohttpRequest]:
    """The Bot API clients (`bot.telegram.request`): one for calls, one for getUpdates.

    Every timeout (connecting, waiting for a pooled connection, writing, reading) is
    `timeout_seconds`; getUpdates adds its long-poll time to the read timeout itself.
    """

    def request(connections: int) -> AiohttpRequest:
        return AiohttpRequest(
            connections=connections,
            connect_timeout=timeout_seconds,
            read_timeout=timeout_seconds,
            write_timeout=timeout_seconds,
            pool_timeout=timeout_seconds,
        )

    return request(BOT_API_CONNECTIONS), request(1)


def build_application(settings: Settings, front_end: FrontEnd) -> Application:  # type: ignore[type-arg]
    """The bot: Telegram's API (or a self-hosted one), rate limiting, per-user ordering."""
    if not settings.telegram_bot_token:
        raise ValueError("TELEGRAM_BOT_TOKEN is not set")
    # Telegram allows about 30 messages a second in bulk; AIORateLimiter counts every call
    # with a chat_id against that. A bot with paid broadcasts (or a test against the
    # emulator) raises or lifts the cap with TELEGRAM_MAX_MESSAGES_PER_SECOND (0: none).
    rate = settings.telegram_max_messages_per_second
    limiter = AIORateLimiter(overall_max_rate=rate, max_retries=3)
    journal = front_end.journal
    calls, updates = bot_api_requests(settings.telegram_timeout_seconds)
    builder = TolerantApplicationBuilder()
    if journal is not None:
        builder = builder.update_queue(JournalingQueue(journal))
    application = (
        builder.token(settings.telegram_bot_token)
        .base_url(settings.telegram_api_base_url)
        .rate_limiter(limiter)
        .request(calls)
        .get_updates_request(updates)
        .concurrent_updates(
            PerUserOrderedProcessor(
                settings.concurrent_updates, on_done=journal.done if journal else None
            )
        )
        .build()
    )
    add_handlers(application, front_end)
    # Alerts and the team's messages leave through this same bot (bot.escalation.service).
    front_end.conversation.escalation.attach(TelegramMessenger(application.bot))
    return application


def bot_commands(library: Library) -> list[BotCommand]:
    return [BotCommand(name, library.reply(f"command_{name}")[:256]) for name in COMMANDS]


async def run_polling(
    application: Application,  # type: ignore[type-arg]
    library: Library,
    stop: asyncio.Event,
    journal: UpdateJournal | None = None,
    on_started: Callable[[], object] | None = None,
) -> None:
    """Poll until `stop` is set, then shut down cleanly (pending updates are confirmed).

    With an update journal, the updates a killed run left unanswered are queued first.
    `on_started` is called once polling has started.
    """
    async with application:
        if journal is not None:
            await requeue_unanswered(application, journal)
        await application.bot.set_my_commands(bot_commands(library))
        await application.start()
        assert application.updater is not None
        await application.updater.start_polling(
            poll_interval=0.0, timeout=10, drop_pending_updates=False
        )
        me = application.bot.username
        log.info("bot @%s is polling for updates", me)
        if on_started is not None:
            on_started()
        try:
            await stop.wait()
        finally:
            await application.updater.stop()
            await application.stop()
            if journal is not None:
                journal.close()


async def requeue_unanswered(
    application: Application,  # type: ignore[type-arg]
    journal: UpdateJournal,
) -> None:
    """Queue the updates the last run took from Telegram but did not finish, in order."""
    for data in journal.open():
        try:
            update = Update.de_json(data, application.bot)
        except Exception as exc:  # whatever PTB raises for a field it cannot read
            log.error("update journal: an update could not be read back: %s", type(exc).__name__)
            journal.done(int(data["update_id"]))
            continue
        await application.update_queue.put(update)


ALLOWED_UPDATES = ["message", "edited_message", "callback_query", "my_chat_member"]
"""The update types the bot asks Telegram for in webhook mode."""


async def register_webhook(
    application: Application,  # type: ignore[type-arg]
    library: Library,
    settings: Settings,
) -> None:
    """Set the command menu and point Telegram at `WEBHOOK_URL` with the secret token.

    Every replica does this at start-up with the same values, so it is idempotent. Pending
    updates are kept: Telegram holds them while no replica answers.
    """
    await application.bot.set_my_commands(bot_commands(library))
    await application.bot.set_webhook(
        url=settings.webhook_url or "",
        secret_token=settings.webhook_secret,
        allowed_updates=ALLOWED_UPDATES,
        max_connections=settings.webhook_max_connections,
        drop_pending_updates=False,
    )
    log.info("webhook registered for bot @%s", application.bot.username)
