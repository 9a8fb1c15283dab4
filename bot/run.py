"""`python -m bot run`: the bot with everything it needs, stopped cleanly by Ctrl-C or SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys

from bot.chat import chat
from bot.retention import retention_loop
from bot.services import Services
from bot.settings import Settings
from bot.telegram.app import build_application, run_polling
from bot.telegram.handlers import FrontEnd

log = logging.getLogger(__name__)

TERMINAL_CHAT_INTRO = """\
TELEGRAM_BOT_TOKEN is not set, so the bot is not connected to Telegram.
To connect it: open Telegram, talk to @BotFather, send /newbot, and put the token it gives
you in .env as TELEGRAM_BOT_TOKEN=... (see README, "Configuration").

Meanwhile, here is the same bot in this terminal (Ctrl-D to quit). Type a message or a
command such as /start; type a button's number to press it.
"""


def install_stop_signals(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)


async def run(settings: Settings) -> int:
    stop = asyncio.Event()
    install_stop_signals(stop)
    async with Services(settings) as services:
        retention = asyncio.create_task(
            retention_loop(
                services.store, settings.retention_days, settings.retention_check_seconds
            )
        )
        try:
            if settings.telegram_bot_token:
                front_end = FrontEnd(services.conversation, settings.pseudonym_secret)
                application = build_application(settings, front_end)
                await run_polling(application, services.library.current(), stop)
            else:
                sys.stdout.write(TERMINAL_CHAT_INTRO)
                sys.stdout.flush()
                chatting = asyncio.create_task(
                    chat(services.conversation, settings.pseudonym_secret, stop=stop)
                )
                stopping = asyncio.create_task(stop.wait())
                await asyncio.wait({chatting, stopping}, return_when=asyncio.FIRST_COMPLETED)
                stopping.cancel()
                if chatting.done():
                    chatting.result()
        finally:
            retention.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await retention
    log.info("stopped")
    return 0
