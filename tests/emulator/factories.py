"""Builders for the Telegram Bot API objects that the emulator hands to the bot.

python-telegram-bot parses every dict it receives with its own ``de_json``; a missing
required field (``date``, ``chat.type``, ``sticker.is_video``...) fails deep inside the
library, far from the test that caused it. Every shape therefore lives here, once, and
tests reach it only through the emulator's ``push_*`` methods.

The builders are pure: identifiers and dates are chosen by the caller (the emulator),
so the same inputs give the same dict.
"""

from __future__ import annotations

import re
import time
from typing import Any, Literal

JSON = dict[str, Any]
ChatType = Literal["private", "group", "supergroup", "channel"]

# Telegram marks "/command" or "/command@botname" at the start of a text as a
# bot_command entity; python-telegram-bot's CommandHandler ignores a text without it.
_COMMAND = re.compile(r"/[A-Za-z0-9_]{1,32}(?:@[A-Za-z0-9_]{3,32})?(?![A-Za-z0-9_@])")


def unix_now() -> int:
    """Telegram dates are whole seconds since the epoch."""
    return int(time.time())


def utf16_len(text: str) -> int:
    """Entity offsets and lengths count UTF-16 code units, not Python characters."""
    return len(text.encode("utf-16-le")) // 2


def command_entities(text: str) -> list[JSON]:
    """The ``bot_command`` entity Telegram attaches to a text that starts with a command."""
    match = _COMMAND.match(text)
    if match is None:
        return []
    return [{"type": "bot_command", "offset": 0, "length": utf16_len(match.group())}]


def make_user(
    user_id: int,
    *,
    first_name: str = "Test",
    username: str | None = None,
    language_code: str | None = None,
) -> JSON:
    """A human Telegram user, as found in ``message.from`` and ``callback_query.from``."""
    user: JSON = {"id": user_id, "is_bot": False, "first_name": first_name}
    if username is not None:
        user["username"] = username
    if language_code is not None:
        user["language_code"] = language_code
    return user


def make_bot_user(bot_id: int, *, first_name: str, username: str, full: bool = False) -> JSON:
    """The bot itself: short in ``message.from``; ``full`` adds the fields only getMe returns."""
    user: JSON = {"id": bot_id, "is_bot": True, "first_name": first_name, "username": username}
    if full:
        user |= {
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }
    return user


def make_chat(
    chat_id: int,
    chat_type: ChatType,
    *,
    user: JSON | None = None,
    title: str | None = None,
    username: str | None = None,
) -> JSON:
    """A chat; a private chat carries its user's names, the others a title."""
    chat: JSON = {"id": chat_id, "type": chat_type}
    if chat_type == "private":
        chat["first_name"] = user["first_name"] if user else "Test"
        if user and "username" in user:
            chat["username"] = user["username"]
    else:
        chat["title"] = title or f"Test {chat_type}"
        if username is not None:
            chat["username"] = username
    return chat


def make_message(
    *,
    message_id: int,
    chat: JSON,
    sender: JSON | None,
    content: JSON,
    date: int | None = None,
) -> JSON:
    """A message; ``content`` holds what it carries (text, sticker, photo, voice...)."""
    message: JSON = {
        "message_id": message_id,
        "date": unix_now() if date is None else date,
        "chat": chat,
    }
    if sender is not None:
        message["from"] = sender
    return message | content


def text_content(text: str) -> JSON:
    """The content of a typed text message, with the command entity Telegram would add."""
    content: JSON = {"text": text}
    entities = command_entities(text)
    if entities:
        content["entities"] = entities
    return content


def _file_ids(kind: str, serial: int) -> JSON:
    return {"file_id": f"{kind}-file-{serial}", "file_unique_id": f"{kind}-unique-{serial}"}


def sticker_content(serial: int, *, emoji: str = "🙂") -> JSON:
    """A static sticker; every field python-telegram-bot requires is present."""
    sticker = _file_ids("sticker", serial) | {
        "type": "regular",
        "width": 512,
        "height": 512,
        "is_animated": False,
        "is_video": False,
        "emoji": emoji,
        "file_size": 20_000,
    }
    return {"sticker": sticker}


def photo_content(serial: int, *, caption: str | None = None) -> JSON:
    """A photo: Telegram sends several sizes of the same picture, smallest first."""
    sizes = [
        _file_ids(f"photo{side}", serial) | {"width": side, "height": side, "file_size": side * 40}
        for side in (90, 320, 800)
    ]
    content: JSON = {"photo": sizes}
    if caption is not None:
        content["caption"] = caption
    return content


def voice_content(serial: int, *, duration: int = 3) -> JSON:
    """A voice note (OGG/Opus), the way a user records one in the app."""
    voice = _file_ids("voice", serial) | {
        "duration": duration,
        "mime_type": "audio/ogg",
        "file_size": 4_000 * duration,
    }
    return {"voice": voice}


def make_callback_query(
    *, query_id: str, sender: JSON, message: JSON, data: str, chat_instance: str
) -> JSON:
    """A press on an inline button; ``message`` is the bot's message that carried it."""
    return {
        "id": query_id,
        "from": sender,
        "message": message,
        "chat_instance": chat_instance,
        "data": data,
    }


def make_update(update_id: int, kind: str, payload: JSON) -> JSON:
    """An update carries exactly one object, under the key naming its kind."""
    return {"update_id": update_id, kind: payload}
