"""A local Telegram Bot API for end-to-end tests of the bot with python-telegram-bot unchanged.

Start it, point ``ApplicationBuilder().base_url`` at ``emu.base_url``, push updates with
``emu.push_*`` and read what the bot did from ``emu.calls`` and ``emu.sent_messages``.
"""

from .server import ApiError, BotAPIEmulator, MessageOptions, RecordedCall, UploadedFile

__all__ = ["ApiError", "BotAPIEmulator", "MessageOptions", "RecordedCall", "UploadedFile"]
