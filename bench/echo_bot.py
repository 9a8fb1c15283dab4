"""`python -m bench.echo_bot`: python-telegram-bot alone, the floor under the bot's own cost.

An echo bot built like the real one (`bot.telegram.app.build_application`: the same rate
limiter, concurrent updates, long polling, timeouts), answering every text with a fixed
line: no NLU call, no database, no journal. Driven by the same load as the bot, it measures
what python-telegram-bot and its HTTP client cost per message on this machine, which no
change to the bot's own code can go below.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys

from telegram import Update
from telegram.ext import AIORateLimiter, Application, ContextTypes, MessageHandler, filters

from bot.settings import Settings
from bot.telegram.app import bot_api_requests

REPLY = "Thanks for your message."


async def echo(update: Update, _: ContextTypes.DEFAULT_TYPE) -> None:
    chat = update.effective_chat
    if chat is not None:
        await chat.send_message(REPLY, disable_web_page_preview=True)


async def main() -> int:
    rate = float(os.environ.get("TELEGRAM_MAX_MESSAGES_PER_SECOND", "0"))
    calls, updates = bot_api_requests(Settings.telegram_timeout_seconds)  # the bot's default
    application = (
        Application.builder()
        .token(os.environ["TELEGRAM_BOT_TOKEN"])
        .base_url(os.environ["TELEGRAM_API_BASE_URL"])
        .rate_limiter(AIORateLimiter(overall_max_rate=rate, max_retries=3))
        .request(calls)
        .get_updates_request(updates)
        .concurrent_updates(64)  # the bot's default CONCURRENT_UPDATES
        .build()
    )
    application.add_handler(MessageHandler(filters.TEXT, echo))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    loop.add_signal_handler(signal.SIGUSR1, lambda: None)  # the load generator's warm-up mark
    async with application:
        await application.start()
        assert application.updater is not None
        await application.updater.start_polling(poll_interval=0.0, timeout=10)
        await stop.wait()
        await application.updater.stop()
        await application.stop()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
