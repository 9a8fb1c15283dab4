"""Sending to a chat outside a conversation turn: moderators' alerts, a team member's words.

The same `telegram.Bot` as the bot's when they run in one process (`make run`); a dashboard
run alone opens its own with the same token and API URL (`standalone_messenger`).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from telegram import Bot

from bot.policy.compose import Reply
from bot.settings import Settings
from bot.telegram.handlers import keyboard, split_text


class TelegramMessenger:
    """`bot.escalation.service.Messenger` over python-telegram-bot."""

    def __init__(self, bot: Bot) -> None:
        self.bot = bot

    async def send(self, chat_id: int, reply: Reply) -> None:
        parts = split_text(reply.text)
        for index, part in enumerate(parts):
            markup = keyboard(reply) if index == len(parts) - 1 else None
            await self.bot.send_message(
                chat_id, part, reply_markup=markup, disable_web_page_preview=True
            )


@contextlib.asynccontextmanager
async def standalone_messenger(settings: Settings) -> AsyncIterator[TelegramMessenger | None]:
    """A messenger for a process without the bot (None without TELEGRAM_BOT_TOKEN)."""
    if not settings.telegram_bot_token:
        yield None
        return
    bot = Bot(settings.telegram_bot_token, base_url=settings.telegram_api_base_url)
    async with bot:
        yield TelegramMessenger(bot)
