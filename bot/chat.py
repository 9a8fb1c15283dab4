"""A terminal chat on the same pipeline and database as the Telegram bot.

For trying the bot without a Telegram token: type messages or `/commands`; buttons are shown
as numbers, and typing a number presses that button. Its traffic is marked as test traffic.
"""

from __future__ import annotations

import asyncio
import sys
import threading
from typing import TextIO

from bot.conversation import Conversation, Incoming, TextIn
from bot.policy.compose import Reply
from bot.policy.decision import Button, Command
from bot.storage.pseudonym import pseudonymise

TERMINAL_USER_ID = 0
"""The terminal user's stand-in Telegram id; only its pseudonym is stored."""


def render(reply: Reply) -> str:
    lines = [reply.text]
    if reply.buttons:
        lines.append("  ".join(f"[{n}] {label}" for n, (label, _) in enumerate(reply.buttons, 1)))
    return "\n".join(lines)


def parse_input(line: str, last: Reply | None) -> Incoming | None:
    text = line.strip()
    if not text:
        return None
    if last is not None and text.isdigit() and 1 <= int(text) <= len(last.buttons):
        return Button(last.buttons[int(text) - 1][1])
    if text.startswith("/"):
        head, _sep, payload = text.partition(" ")
        return Command(head[1:].lower(), payload.strip() or None)
    return TextIn(text)


async def chat(
    conversation: Conversation,
    secret: str,
    stdin: TextIO = sys.stdin,
    stdout: TextIO = sys.stdout,
    stop: asyncio.Event | None = None,
) -> None:
    """Read lines until end of input (Ctrl-D) or `stop`; print each reply."""
    pseudonym = pseudonymise(TERMINAL_USER_ID, secret)
    last: Reply | None = None
    prompt = stdin.isatty()
    lines = _read_lines_in_background(stdin)
    while stop is None or not stop.is_set():
        if prompt:
            stdout.write("you> ")
            stdout.flush()
        line = await lines.get()
        if line is None:
            break
        incoming = parse_input(line, last)
        if incoming is None:
            continue
        for reply in await conversation.handle(pseudonym, incoming, is_test=True):
            stdout.write(f"bot> {render(reply)}\n\n")
            stdout.flush()
            last = reply


def _read_lines_in_background(stdin: TextIO) -> asyncio.Queue[str | None]:
    """Lines from a daemon thread, so a blocked read never delays shutdown (Ctrl-C)."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[str | None] = asyncio.Queue()

    def read() -> None:
        for line in iter(stdin.readline, ""):
            loop.call_soon_threadsafe(queue.put_nowait, line)
        loop.call_soon_threadsafe(queue.put_nowait, None)

    threading.Thread(target=read, name="terminal-chat-stdin", daemon=True).start()
    return queue
