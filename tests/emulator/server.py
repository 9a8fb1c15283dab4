"""A local stand-in for the Telegram Bot API, for end-to-end tests of the real bot.

The bot under test is the production code with python-telegram-bot (PTB) unchanged; only its
``base_url`` points here. The emulator therefore has to answer the way Telegram does, in the
places PTB and the bot depend on:

* PTB posts form fields and JSON-encodes every value that is not a string, so each field is
  decoded here, except the text fields, which PTB sends verbatim ("42" typed by a user stays
  a string).
* getUpdates long-polls, and an ``offset`` confirms (deletes) every earlier update: an update
  that a crashed poll never confirmed is delivered again, as on Telegram.
* Errors carry Telegram's JSON (``error_code``, ``description``, ``parameters.retry_after``)
  because PTB picks its exception class (RetryAfter, Forbidden, BadRequest...) from them.
* The limits that bots run into in production answer with Telegram's errors: texts over 4096
  characters, callback data over 64 bytes, editing a message to what it already says.

Tests drive it through ``push_*`` (updates the bot will receive) and read back what the bot
did through ``calls``, ``sent_messages`` and the ``wait_for_*`` helpers.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import itertools
import json
import re
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from http import HTTPStatus
from types import TracebackType
from typing import Any, Self, TypedDict, Unpack
from urllib.parse import urlsplit

from aiohttp import web

from . import factories
from .factories import JSON, ChatType
from .webhook import WebhookDelivery, WebhookSender, webhook_info

_TOKEN = re.compile(r"\d+:[A-Za-z0-9_-]+")
_COMMAND_NAME = re.compile(r"[a-z0-9_]{1,32}")

# PTB sends string values as they are and JSON-encodes everything else. These parameters are
# strings in the Bot API, so decoding them would turn a user's "42" or "true" into a number
# or a boolean (and a numeric callback_query_id into an int).
_TEXT_PARAMS = frozenset(
    {
        "action",
        "business_connection_id",
        "callback_query_id",
        "caption",
        "description",
        "emoji",
        "inline_message_id",
        "ip_address",
        "language_code",
        "message_effect_id",
        "name",
        "parse_mode",
        "query",
        "secret_token",
        "short_description",
        "text",
        "title",
        "url",
    }
)

# Exactly one of these makes an inline button do something; Telegram rejects a button with none.
_INLINE_BUTTON_ACTIONS = frozenset(
    {
        "callback_data",
        "callback_game",
        "copy_text",
        "login_url",
        "pay",
        "switch_inline_query",
        "switch_inline_query_chosen_chat",
        "switch_inline_query_current_chat",
        "url",
        "web_app",
    }
)

MAX_TEXT_LENGTH = 4096
MAX_CALLBACK_DATA_BYTES = 64
FIRST_UPDATE_ID = 100_001  # far from message ids, so a test cannot confuse the two

_NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply markup "
    "are exactly the same as a current content and reply markup of the message"
)
_DEFAULT_DESCRIPTIONS = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden: bot was blocked by the user",
    404: "Not Found",
    409: "Conflict: terminated by other getUpdates request",
    429: "Too Many Requests: retry after {retry_after}",
    500: "Internal Server Error",
    502: "Bad Gateway",
}


class _ConnectionReset(Exception):
    """Raised after the emulator dropped a connection on purpose (`reset_next`)."""


class ApiError(Exception):
    """A refusal the emulator answers with Telegram's error JSON instead of a result."""

    def __init__(self, status: int, description: str, parameters: JSON | None = None) -> None:
        super().__init__(description)
        self.status = status
        self.description = description
        self.parameters = parameters

    def body(self) -> JSON:
        body: JSON = {"ok": False, "error_code": self.status, "description": self.description}
        if self.parameters:
            body["parameters"] = self.parameters
        return body


@dataclass
class RecordedCall:
    """One request the bot made, recorded when it arrived and completed when answered.

    ``status`` is None while the call is still being answered (a long poll) and 499 when the
    client went away first; ``result`` is what the emulator answered with when ``status`` is 200.
    """

    method: str
    params: JSON
    time: float  # time.monotonic() on arrival
    status: int | None = None
    result: Any = None
    description: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == HTTPStatus.OK


@dataclass(frozen=True)
class UploadedFile:
    """A file part of a multipart request (sendPhoto, sendVoice... with new content)."""

    filename: str
    content_type: str
    data: bytes


class MessageOptions(TypedDict, total=False):
    """Who sends a pushed update, and where; every key is optional.

    chat_type: "private" (default), "group" or "supergroup".
    chat_id: defaults to the user id in a private chat (as on Telegram), else to a negative id.
    first_name: "Test" by default; username and language_code are left out unless given.
    """

    chat_type: ChatType
    chat_id: int | None
    first_name: str
    username: str | None
    language_code: str | None


_Method = Callable[[JSON, web.Request], Awaitable[Any]]


class _Signal:
    """Wakes every current waiter at once.

    Each round gets a fresh Event, so a waiter that checks its condition and then waits (with no
    await in between) cannot miss a wake-up; ``fire`` is synchronous, so ``push_*`` can call it.
    """

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def fire(self) -> None:
        self._event.set()
        self._event = asyncio.Event()

    async def wait(self) -> None:
        await self._event.wait()


class _UpdateQueue:
    """Telegram's side of getUpdates: updates wait until an offset beyond them confirms them.

    Handing an update out does not delete it; only confirmation does. A poll whose answer was
    lost (client cancelled, crashed) therefore gets the same updates again, as on Telegram.
    Redeliveries (``push_duplicate``) are handed out once whatever the offset, placed first in
    their batch so that PTB's next offset (last update_id + 1) still confirms the others.
    """

    def __init__(self) -> None:
        self._pending: list[JSON] = []  # sorted by update_id
        self._redeliveries: deque[JSON] = deque()
        self._history: dict[int, JSON] = {}
        self._last_id = FIRST_UPDATE_ID - 1
        self.changed = _Signal()
        # With a webhook set, updates go to it instead of waiting for getUpdates.
        self.sink: WebhookSender | None = None

    def push(self, update: JSON) -> int:
        update = copy.deepcopy(update)
        update_id = update.get("update_id")
        if not isinstance(update_id, int) or isinstance(update_id, bool):
            update_id = self._last_id + 1
            update["update_id"] = update_id
        self._last_id = max(self._last_id, update_id)
        self._history[update_id] = update
        if self.sink is not None:
            self.sink.enqueue(copy.deepcopy(update))
            self.changed.fire()
            return update_id
        self._pending.append(update)
        self._pending.sort(key=lambda pending: int(pending["update_id"]))
        self.changed.fire()
        return update_id

    def next_id(self) -> int:
        return self._last_id + 1

    def redeliver(self, update_id: int) -> int:
        if update_id not in self._history:
            raise KeyError(f"update {update_id} was never pushed, so it cannot be duplicated")
        if self.sink is not None:
            self.sink.redeliver(copy.deepcopy(self._history[update_id]))
            self.changed.fire()
            return update_id
        self._redeliveries.append(self._history[update_id])
        self.changed.fire()
        return update_id

    def confirm(self, offset: int) -> int:
        """Forget updates before ``offset`` (a negative one keeps the last -offset); how many."""
        before = len(self._pending)
        if offset < 0:
            del self._pending[:offset]
        else:
            self._pending = [u for u in self._pending if u["update_id"] >= offset]
        return before - len(self._pending)

    def clear(self) -> None:
        self._pending.clear()
        self._redeliveries.clear()

    def hand_over(self, sink: WebhookSender | None) -> None:
        """Send future updates to ``sink`` (None: back to getUpdates), and the waiting ones now."""
        self.sink = sink
        if sink is None:
            return
        for update in [*self._redeliveries, *self._pending]:
            sink.enqueue(copy.deepcopy(update))
        self.clear()

    @property
    def pending_count(self) -> int:
        return len(self._pending) + len(self._redeliveries)

    def take(self, limit: int) -> list[JSON]:
        batch: list[JSON] = []
        while self._redeliveries and len(batch) < limit:
            batch.append(self._redeliveries.popleft())
        batch.extend(self._pending[: limit - len(batch)])
        return copy.deepcopy(batch)


class _Chats:
    """Chats and the messages in them, incoming and outgoing.

    A chat has one message-id sequence for both directions, as on Telegram: the user's message
    1 is answered by the bot's message 2. Messages are kept so that edits, deletions, replies and
    callback queries can refer to them.
    """

    def __init__(self) -> None:
        self._chats: dict[int, JSON] = {}
        self._by_username: dict[str, int] = {}
        self._messages: dict[tuple[int, int], JSON] = {}
        self._last_message_id: dict[int, int] = {}

    def remember(self, chat: JSON) -> JSON:
        self._chats[chat["id"]] = copy.deepcopy(chat)
        return chat

    def resolve(self, chat_ref: Any) -> JSON:
        """The chat for a ``chat_id`` parameter; unknown chats are made up, never refused."""
        if isinstance(chat_ref, str) and chat_ref.startswith("@"):
            username = chat_ref[1:]
            if username not in self._by_username:
                self._by_username[username] = -1_000_000_000_000 - len(self._by_username) - 1
                channel = factories.make_chat(
                    self._by_username[username], "channel", username=username
                )
                self.remember(channel)
            return copy.deepcopy(self._chats[self._by_username[username]])
        if isinstance(chat_ref, str) and re.fullmatch(r"-?\d+", chat_ref):
            chat_ref = int(chat_ref)
        if not isinstance(chat_ref, int) or isinstance(chat_ref, bool) or chat_ref == 0:
            raise ApiError(400, "Bad Request: chat not found")
        if chat_ref not in self._chats:
            chat_type: ChatType = "private"
            if chat_ref < 0:
                chat_type = "supergroup" if str(chat_ref).startswith("-100") else "group"
            self.remember(factories.make_chat(chat_ref, chat_type))
        return copy.deepcopy(self._chats[chat_ref])

    def add(self, chat: JSON, sender: JSON | None, content: JSON) -> JSON:
        message_id = self._last_message_id.get(chat["id"], 0) + 1
        message = factories.make_message(
            message_id=message_id, chat=chat, sender=sender, content=content
        )
        self.keep(message)
        return copy.deepcopy(message)

    def keep(self, message: JSON) -> None:
        """Store a message (new or edited) and move the chat's id sequence past it."""
        chat_id, message_id = message["chat"]["id"], message["message_id"]
        self._messages[chat_id, message_id] = copy.deepcopy(message)
        self._last_message_id[chat_id] = max(self._last_message_id.get(chat_id, 0), message_id)

    def get(self, chat_id: int, message_id: int) -> JSON | None:
        message = self._messages.get((chat_id, message_id))
        return copy.deepcopy(message) if message is not None else None

    def delete(self, chat_id: int, message_id: int) -> bool:
        return self._messages.pop((chat_id, message_id), None) is not None


@dataclass(frozen=True)
class _Failure:
    status: int
    description: str
    retry_after: int | None

    def error(self) -> ApiError:
        parameters = {"retry_after": self.retry_after} if self.retry_after is not None else None
        return ApiError(self.status, self.description, parameters)


class BotAPIEmulator:
    """An HTTP server on 127.0.0.1 that answers python-telegram-bot like the Bot API.

    Use ``async with BotAPIEmulator() as emu:`` and give the bot ``emu.base_url``. Any token of
    Telegram's shape is accepted and the bot's id is the number before the colon, as on Telegram.
    """

    def __init__(
        self,
        *,
        token: str = "123456789:TEST-emulator_token",
        bot_username: str = "defector_voices_test_bot",
        bot_first_name: str = "Defector Voices (test)",
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        if not _TOKEN.fullmatch(token):
            raise ValueError(f"{token!r} does not look like a bot token (digits:letters)")
        self.token = token
        self.bot_username = bot_username
        self.bot_first_name = bot_first_name
        self.calls: list[RecordedCall] = []
        self._host = host
        self._port = port
        self._runner: web.AppRunner | None = None
        self._closing = asyncio.Event()
        self._calls_changed = _Signal()
        self._last_activity = time.monotonic()  # of the bot (calls) or of a test (pushes)
        self._updates = _UpdateQueue()
        self._poll_generation = 0
        self._chats = _Chats()
        self._bot_id = int(token.split(":")[0])
        self._callback_query_ids: set[str] = set()
        self.settle: Callable[[int | None], Awaitable[None]] | None = None
        """Set by a test fixture: waits until the bot has finished its turns for a chat (or,
        given None, for every chat). A reply leaves before its turn's records are committed,
        so a test that reads the database after a reply waits for this (the waits below do)."""
        self._serials = itertools.count(1)
        self._commands: dict[tuple[str, str], list[JSON]] = {}
        self._webhook_url = ""
        self._webhook: WebhookSender | None = None
        self._webhook_backends: list[str] = []
        self._webhook_deliveries: list[WebhookDelivery] = []
        self.webhook_settings: JSON = {}
        self._failures: dict[str, deque[_Failure]] = {}
        self._delays: dict[str, deque[float]] = {}
        self._resets: dict[str, int] = {}
        self._held: dict[str, asyncio.Event] = {}
        self._methods: dict[str, _Method] = {
            "getMe": self._get_me,
            "logOut": self._acknowledge,
            "close": self._acknowledge,
            "setMyCommands": self._set_my_commands,
            "getMyCommands": self._get_my_commands,
            "deleteMyCommands": self._delete_my_commands,
            "setWebhook": self._set_webhook,
            "deleteWebhook": self._delete_webhook,
            "getWebhookInfo": self._get_webhook_info,
            "getUpdates": self._get_updates,
            "sendMessage": self._send_message,
            "sendChatAction": self._send_chat_action,
            "answerCallbackQuery": self._answer_callback_query,
            "editMessageText": self._edit_message_text,
            "editMessageReplyMarkup": self._edit_message_reply_markup,
            "deleteMessage": self._delete_message,
        }
        # Telegram matches method names case-insensitively; calls are recorded canonically.
        self._canonical = {name.lower(): name for name in self._methods}

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        self._closing.clear()
        app = web.Application()
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        app.router.add_route("*", "/{path:.*}", self._not_found)
        # handler_cancellation: a long poll whose client hung up stops instead of waiting on.
        self._runner = web.AppRunner(
            app, handler_cancellation=True, shutdown_timeout=1.0, access_log=None
        )
        await self._runner.setup()
        await web.TCPSite(self._runner, self._host, self._port).start()
        self._port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        """Answer pending long polls and delays at once, then close the server."""
        if self._runner is None:
            return
        self._closing.set()
        self._updates.changed.fire()
        await self._stop_webhook()
        await self._runner.cleanup()
        self._runner = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()

    @property
    def base_url(self) -> str:
        """What to give ``ApplicationBuilder().base_url``; PTB appends ``<token>/<method>``."""
        if self._runner is None:
            raise RuntimeError("the emulator is not running: await start() first")
        return f"http://{self._host}:{self._port}/bot"

    # ------------------------------------------------------------------ pushing updates

    def push_text(self, user_id: int, text: str, **options: Unpack[MessageOptions]) -> int:
        """A user sends ``text``; a leading "/command" gets its bot_command entity."""
        return self._push_message(user_id, factories.text_content(text), options)

    def push_command(
        self,
        user_id: int,
        command: str,
        payload: str | None = None,
        **options: Unpack[MessageOptions],
    ) -> int:
        """A command, e.g. ``("start", "camp_1")``: what a deep link ``?start=camp_1`` sends."""
        text = command if command.startswith("/") else f"/{command}"
        if payload is not None:
            text = f"{text} {payload}"
        return self.push_text(user_id, text, **options)

    def push_sticker(self, user_id: int, **options: Unpack[MessageOptions]) -> int:
        return self._push_message(user_id, factories.sticker_content(next(self._serials)), options)

    def push_photo(
        self, user_id: int, caption: str | None = None, **options: Unpack[MessageOptions]
    ) -> int:
        content = factories.photo_content(next(self._serials), caption=caption)
        return self._push_message(user_id, content, options)

    def push_voice(self, user_id: int, duration: int = 3, **options: Unpack[MessageOptions]) -> int:
        content = factories.voice_content(next(self._serials), duration=duration)
        return self._push_message(user_id, content, options)

    def push_callback(
        self, user_id: int, data: str, message_id: int, **options: Unpack[MessageOptions]
    ) -> int:
        """The user presses the button carrying ``data`` under the bot's message ``message_id``.

        The query carries that message as the emulator last saw it (after edits), as Telegram
        does. A message the emulator never saw is made up as a bot message with that button.
        """
        sender = self._user(user_id, options)
        chat = self._push_chat(sender, options)
        message = self._chats.get(chat["id"], message_id)
        if message is None:
            button = {"text": data, "callback_data": data}
            content = {"text": "Test message", "reply_markup": {"inline_keyboard": [[button]]}}
            message = factories.make_message(
                message_id=message_id, chat=chat, sender=self._bot(), content=content
            )
            self._chats.keep(message)
        query_id = str(4_000_000_000 + next(self._serials))
        self._callback_query_ids.add(query_id)
        query = factories.make_callback_query(
            query_id=query_id,
            sender=sender,
            message=message,
            data=data,
            chat_instance=f"instance-{chat['id']}",
        )
        return self._updates.push(
            factories.make_update(self._updates.next_id(), "callback_query", query)
        )

    def push_raw(self, update: JSON) -> int:
        """Deliver ``update`` as given, for malformed or unusual updates.

        Its update_id is kept if present, else the next one is assigned. An update_id below one
        the bot already confirmed is never delivered, as on Telegram; use push_duplicate for
        redelivery. Well-formed messages and callback queries in it are remembered, so that the
        bot can reply to, edit and answer them.
        """
        message = update.get("message")
        if isinstance(message, dict) and isinstance(message.get("chat"), dict):
            with contextlib.suppress(KeyError, TypeError):
                self._chats.keep(message)
        query = update.get("callback_query")
        if isinstance(query, dict) and isinstance(query.get("id"), str):
            self._callback_query_ids.add(query["id"])
        return self._updates.push(update)

    def push_duplicate(self, update_id: int) -> int:
        """Deliver an already pushed update once more with the same update_id.

        Telegram may resend an update (after a timeout, a restart); the bot must not act twice.
        """
        return self._updates.redeliver(update_id)

    def _push_message(self, user_id: int, content: JSON, options: MessageOptions) -> int:
        sender = self._user(user_id, options)
        message = self._chats.add(self._push_chat(sender, options), sender, content)
        return self._updates.push(
            factories.make_update(self._updates.next_id(), "message", message)
        )

    @staticmethod
    def _user(user_id: int, options: MessageOptions) -> JSON:
        return factories.make_user(
            user_id,
            first_name=options.get("first_name", "Test"),
            username=options.get("username"),
            language_code=options.get("language_code"),
        )

    def _push_chat(self, sender: JSON, options: MessageOptions) -> JSON:
        chat_type = options.get("chat_type", "private")
        if chat_type == "private":
            chat_id = options.get("chat_id") or sender["id"]
            return self._chats.remember(factories.make_chat(chat_id, "private", user=sender))
        default_id = -sender["id"] if chat_type == "group" else -1_000_000_000_000 - sender["id"]
        chat = self._chats.resolve(options.get("chat_id") or default_id)
        if chat["type"] != chat_type:
            chat = self._chats.remember(factories.make_chat(chat["id"], chat_type))
        return chat

    # ------------------------------------------------------------------ fault injection

    def fail_next(
        self,
        method: str,
        *,
        status: int = 429,
        retry_after: int | None = None,
        description: str | None = None,
        times: int = 1,
    ) -> None:
        """Answer the next ``times`` calls of ``method`` with a Telegram error.

        A 429 always tells how long to wait (Telegram never leaves it out; PTB raises RetryAfter
        only when it is there), 1 second unless ``retry_after`` says otherwise. The failed calls
        are recorded but have no effect: a refused sendMessage sends nothing.
        """
        if status == HTTPStatus.TOO_MANY_REQUESTS and retry_after is None:
            retry_after = 1
        if description is None:
            template = _DEFAULT_DESCRIPTIONS.get(status, HTTPStatus(status).phrase)
            description = template.format(retry_after=retry_after)
        failure = _Failure(status, description, retry_after)
        self._failures.setdefault(self._known_method(method), deque()).extend([failure] * times)

    def delay_next(self, method: str, seconds: float, *, times: int = 1) -> None:
        """Answer the next ``times`` calls of ``method`` only after ``seconds``."""
        self._delays.setdefault(self._known_method(method), deque()).extend([seconds] * times)

    def reset_next(self, method: str, *, times: int = 1) -> None:
        """Drop the connection of the next ``times`` calls of ``method`` without an answer.

        The client sees a connection reset; the call has no effect (a reset sendMessage
        sends nothing). Recorded with status 0.
        """
        known = self._known_method(method)
        self._resets[known] = self._resets.get(known, 0) + times

    def hold(self, method: str) -> None:
        """Keep every call of ``method`` waiting, without effect, until ``release(method)``.

        A client that gives up (or dies) meanwhile has sent nothing, as when Telegram never
        received the request.
        """
        self._held.setdefault(self._known_method(method), asyncio.Event()).clear()

    def release(self, method: str) -> None:
        self._held.setdefault(self._known_method(method), asyncio.Event()).set()

    @property
    def unconfirmed_updates(self) -> int:
        """Updates pushed that the bot has not confirmed yet (Telegram would deliver them)."""
        return self._updates.pending_count

    def held_calls(self, method: str) -> int:
        """How many calls of ``method`` are waiting in ``hold`` now."""
        return sum(1 for c in self.calls if c.method == method and c.status is None)

    def _known_method(self, method: str) -> str:
        try:
            return self._canonical[method.lower()]
        except KeyError:
            raise ValueError(f"the emulator does not implement {method!r}") from None

    # ------------------------------------------------------------------ reading what the bot did

    def calls_to(self, method: str) -> list[RecordedCall]:
        return [call for call in self.calls if call.method == method]

    def sent_messages(self, chat_id: int | str | None = None) -> list[JSON]:
        """The successful sendMessage calls (their parameters plus the message_id given back)."""
        return [
            call.params | {"message_id": call.result["message_id"]}
            for call in self.calls
            if call.method == "sendMessage"
            and call.ok
            and (chat_id is None or call.params.get("chat_id") == chat_id)
        ]

    def message(self, chat_id: int, message_id: int) -> JSON | None:
        """A message as it stands now (after edits), or None if unknown or deleted."""
        return self._chats.get(chat_id, message_id)

    def bot_commands(self, scope: JSON | None = None, language_code: str = "") -> list[JSON]:
        """The command list setMyCommands left for ``scope`` and ``language_code``."""
        return copy.deepcopy(self._commands.get(_scope_key(scope, language_code), []))

    async def wait_for_messages(
        self, chat_id: int | str, count: int, timeout: float = 10.0
    ) -> list[JSON]:
        """Every message sent to ``chat_id`` so far, once there are at least ``count``."""

        def enough() -> bool:
            return len(self.sent_messages(chat_id)) >= count

        if not await self._wait_until(enough, timeout):
            raise AssertionError(
                f"expected {count} message(s) to chat {chat_id} within {timeout} s\n"
                + self._describe(chat_id)
            )
        if self.settle is not None:
            chat = chat_id if isinstance(chat_id, int) else None
            await asyncio.wait_for(self.settle(chat), timeout)
        return self.sent_messages(chat_id)

    async def wait_for_call(
        self, method: str, timeout: float = 10.0, *, since: int | None = None
    ) -> RecordedCall:
        """The first call to ``method`` at or after index ``since`` of ``calls``, once answered.

        ``since`` defaults to now: the wait is for the bot's next call. To catch a call the bot
        may make before the wait begins, take ``mark = len(emu.calls)`` before acting and pass
        ``since=mark``. A getUpdates counts as soon as it arrives, since a long poll is answered
        only when an update comes or its timeout runs out: waiting for one tells that the bot
        is polling.
        """
        start = len(self.calls) if since is None else since

        def found() -> RecordedCall | None:
            for call in self.calls[start:]:
                if call.method == method and (call.status is not None or method == "getUpdates"):
                    return call
            return None

        if not await self._wait_until(lambda: found() is not None, timeout):
            raise AssertionError(
                f"expected a {method} call within {timeout} s\n" + self._describe(None)
            )
        call = found()
        assert call is not None
        return call

    async def wait_for_quiet(self, quiet: float = 0.5, timeout: float = 10.0) -> None:
        """Return once the bot has fetched every update and then done nothing for ``quiet`` s.

        For asserting that the bot did *not* answer: the absence of a reply means something
        only after the bot has had the update and time to act on it. getUpdates calls do not
        count as doing something.
        """

        def busy_for() -> float:
            """How much longer to wait before the bot counts as quiet; 0 when it is."""
            in_flight = any(c.status is None and c.method != "getUpdates" for c in self.calls)
            posting = (self._webhook is not None and self._webhook.pending_count) or any(
                d.status is None for d in self._webhook_deliveries
            )
            if in_flight or posting or self._updates.pending_count:
                return quiet
            return max(0.0, quiet - (time.monotonic() - self._last_activity))

        try:
            async with asyncio.timeout(timeout):
                while (remaining := busy_for()) > 0:
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(remaining):
                            await self._calls_changed.wait()
        except TimeoutError:
            raise AssertionError(
                f"the bot did not go quiet for {quiet} s within {timeout} s\n"
                + self._describe(None)
            ) from None
        if self.settle is not None:
            await asyncio.wait_for(self.settle(None), timeout)

    @staticmethod
    def buttons(message: JSON) -> list[str]:
        """The button texts of a message's keyboard (inline or reply), row by row."""
        markup = message.get("reply_markup") or {}
        rows = markup.get("inline_keyboard") or markup.get("keyboard") or []
        return [
            button if isinstance(button, str) else button["text"] for row in rows for button in row
        ]

    @staticmethod
    def callback_data(message: JSON, text: str) -> str:
        """The callback_data of the inline button labelled ``text``."""
        markup = message.get("reply_markup") or {}
        for row in markup.get("inline_keyboard") or []:
            for button in row:
                if button.get("text") == text and "callback_data" in button:
                    return str(button["callback_data"])
        buttons = BotAPIEmulator.buttons(message)
        raise AssertionError(f"no inline button {text!r} with callback data; buttons: {buttons}")

    async def _wait_until(self, condition: Callable[[], bool], timeout: float) -> bool:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                while not condition():
                    await self._calls_changed.wait()
        return condition()

    def _describe(self, chat_id: int | str | None) -> str:
        """What the bot did, for a failed wait: messages first, then the other calls."""
        lines: list[str] = []
        if chat_id is not None:
            mine = self.sent_messages(chat_id)
            lines.append(f"messages to chat {chat_id} ({len(mine)}):")
            lines.extend(f"  {_summary(message)}" for message in mine)
            lines.append(f"messages to other chats: {len(self.sent_messages()) - len(mine)}")
        start = self.calls[0].time if self.calls else 0.0
        others = [call for call in self.calls if call.method != "getUpdates"]
        lines.append(f"calls other than getUpdates ({len(others)}, last 20 shown):")
        for call in others[-20:]:
            params = {key: value for key, value in call.params.items() if key != "reply_markup"}
            outcome = call.status if call.ok else f"{call.status} {call.description}"
            lines.append(f"  +{call.time - start:.3f}s {call.method} {params} -> {outcome}")
        polls = len(self.calls) - len(others)
        lines.append(f"getUpdates calls: {polls}; updates waiting: {self._updates.pending_count}")
        return "\n".join(lines)

    # ------------------------------------------------------------------ HTTP

    async def _handle(self, request: web.Request) -> web.Response:
        token, asked = request.match_info["token"], request.match_info["method"]
        method = self._canonical.get(asked.lower(), asked)
        call = RecordedCall(method=method, params={}, time=time.monotonic())
        self.calls.append(call)
        try:
            call.params = await _read_params(request)
            self._note_activity(call)
            call.result = await self._answer(call, token, request)
            call.status = HTTPStatus.OK
            body: JSON = {"ok": True, "result": call.result}
        except ApiError as error:
            call.status, call.description = error.status, error.description
            body = error.body()
        except _ConnectionReset:
            call.status, call.description = 0, "connection reset by the emulator"
            return web.Response(status=500)  # nobody reads it: the connection is gone
        except asyncio.CancelledError:
            call.status, call.description = 499, "the client closed the connection first"
            raise
        except Exception as bug:  # an emulator bug: say so rather than hang the waiters
            crash = ApiError(500, f"Internal Server Error: emulator bug: {bug!r}")
            call.status, call.description = crash.status, crash.description
            body = crash.body()
        finally:
            self._note_activity(call)
        return web.json_response(body, status=call.status)

    def _note_activity(self, call: RecordedCall) -> None:
        """Wake the wait_for_* helpers; anything but polling makes the bot not quiet."""
        if call.method != "getUpdates":
            self._last_activity = time.monotonic()
        self._calls_changed.fire()

    async def _answer(self, call: RecordedCall, token: str, request: web.Request) -> Any:
        if not _TOKEN.fullmatch(token):
            raise ApiError(401, "Unauthorized")
        handler = self._methods.get(call.method)
        if handler is None:
            raise ApiError(404, "Not Found")
        self._bot_id = int(token.split(":")[0])
        held = self._held.get(call.method)
        if held is not None and not held.is_set():
            waiting = asyncio.ensure_future(held.wait())
            closing = asyncio.ensure_future(self._closing.wait())
            try:
                await asyncio.wait({waiting, closing}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                waiting.cancel()
                closing.cancel()
        delays = self._delays.get(call.method)
        if delays:
            await self._pause(delays.popleft())
        if self._resets.get(call.method):
            self._resets[call.method] -= 1
            if request.transport is not None:
                request.transport.abort()
            raise _ConnectionReset
        failures = self._failures.get(call.method)
        if failures:
            raise failures.popleft().error()
        return await handler(call.params, request)

    async def _not_found(self, request: web.Request) -> web.Response:
        return web.json_response(ApiError(404, "Not Found").body(), status=404)

    async def _pause(self, seconds: float) -> None:
        """Sleep, but no longer than until the emulator stops."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._closing.wait()

    # ------------------------------------------------------------------ Bot API methods

    def _bot(self, *, full: bool = False) -> JSON:
        return factories.make_bot_user(
            self._bot_id, first_name=self.bot_first_name, username=self.bot_username, full=full
        )

    async def _get_me(self, params: JSON, request: web.Request) -> JSON:
        return self._bot(full=True)

    async def _acknowledge(self, params: JSON, request: web.Request) -> bool:
        return True

    async def _set_my_commands(self, params: JSON, request: web.Request) -> bool:
        commands = params.get("commands")
        if not isinstance(commands, list):
            raise ApiError(400, "Bad Request: can't parse commands JSON object")
        for command in commands:
            if not isinstance(command, dict) or not _COMMAND_NAME.fullmatch(
                str(command.get("command", ""))
            ):
                raise ApiError(400, "Bad Request: BOT_COMMAND_INVALID")
            if not 1 <= len(str(command.get("description", ""))) <= 256:
                raise ApiError(400, "Bad Request: command description is empty or too long")
        key = _scope_key(params.get("scope"), params.get("language_code") or "")
        self._commands[key] = [
            {"command": c["command"], "description": c["description"]} for c in commands
        ]
        return True

    async def _get_my_commands(self, params: JSON, request: web.Request) -> list[JSON]:
        return self.bot_commands(params.get("scope"), params.get("language_code") or "")

    async def _delete_my_commands(self, params: JSON, request: web.Request) -> bool:
        key = _scope_key(params.get("scope"), params.get("language_code") or "")
        self._commands.pop(key, None)
        return True

    async def _set_webhook(self, params: JSON, request: web.Request) -> bool:
        """Record the webhook and start posting updates to it.

        Telegram posts only to HTTPS; plain HTTP is accepted for loopback hosts, as the
        Bot API server does in its local mode, so tests can point it at a bot on 127.0.0.1.
        """
        url = str(params.get("url") or "")
        if not url:
            return await self._delete_webhook(params, request)
        parts = urlsplit(url)
        loopback = parts.scheme == "http" and parts.hostname in ("127.0.0.1", "localhost")
        if parts.scheme != "https" and not loopback:
            raise ApiError(
                400, "Bad Request: bad webhook: An HTTPS URL must be provided for webhook"
            )
        secret = params.get("secret_token") or ""
        if secret and not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", str(secret)):
            raise ApiError(400, "Bad Request: secret token contains unallowed characters")
        if params.get("drop_pending_updates"):
            self._updates.clear()
        self.webhook_settings = dict(params)
        self._webhook_url = url
        if self._webhook is None:
            self._webhook = WebhookSender(
                self._webhook_deliveries, self._webhook_backends, self._webhook_activity
            )
            self._webhook.start()
        self._webhook.configure(url, str(secret), _int_param(params, "max_connections", 40))
        self._updates.hand_over(self._webhook)
        return True

    async def _delete_webhook(self, params: JSON, request: web.Request) -> bool:
        await self._stop_webhook()
        self.webhook_settings = {}
        if params.get("drop_pending_updates"):
            self._updates.clear()
        return True

    async def _stop_webhook(self) -> None:
        """Stop posting; updates not yet taken by the bot wait for getUpdates again."""
        sender, self._webhook = self._webhook, None
        self._webhook_url = ""
        self._updates.hand_over(None)
        if sender is not None:
            for update in await sender.stop():
                self._updates.push(update)

    def _webhook_activity(self) -> None:
        self._last_activity = time.monotonic()
        self._calls_changed.fire()

    async def _get_webhook_info(self, params: JSON, request: web.Request) -> JSON:
        if self._webhook is None:
            return {
                "url": "",
                "has_custom_certificate": False,
                "pending_update_count": self._updates.pending_count,
            }
        return webhook_info(self._webhook)

    # ------------------------------------------------------------------ webhook (tests)

    def route_webhook(self, backends: list[str]) -> None:
        """Play a load balancer: post each update to one of ``backends`` (full URLs) at random."""
        self._webhook_backends[:] = backends

    @property
    def webhook_deliveries(self) -> list[WebhookDelivery]:
        """Every post of an update to the bot so far (empty without a webhook)."""
        return list(self._webhook_deliveries)

    async def _get_updates(self, params: JSON, request: web.Request) -> list[JSON]:
        """Long polling: answer as soon as there is an update, or after ``timeout`` seconds.

        A newer getUpdates ends an older one with 409, as Telegram does when two copies of a bot
        poll at once: an e2e test that forgot to stop an Application shows up here.
        """
        if self._webhook_url:
            raise ApiError(
                409,
                "Conflict: can't use getUpdates method while webhook is active; "
                "use deleteWebhook to delete the webhook first",
            )
        offset = _int_param(params, "offset", 0)
        limit = min(max(_int_param(params, "limit", 100), 1), 100)
        timeout = max(float(_int_param(params, "timeout", 0)), 0.0)
        self._poll_generation += 1
        generation = self._poll_generation
        self._updates.changed.fire()  # an older poll, if any, sees it has been superseded
        if offset and self._updates.confirm(offset):
            self._last_activity = time.monotonic()  # the bot has the updates: it may act now
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                while (
                    not self._updates.pending_count
                    and not self._closing.is_set()
                    and generation == self._poll_generation
                ):
                    await self._updates.changed.wait()
        if generation != self._poll_generation:
            raise ApiError(
                409,
                "Conflict: terminated by other getUpdates request; "
                "make sure that only one bot instance is running",
            )
        if request.transport is None or request.transport.is_closing():
            return []  # nobody to hand the redeliveries to: keep them for the next poll
        batch = self._updates.take(limit)
        if batch:
            self._last_activity = time.monotonic()
        return batch

    async def _send_message(self, params: JSON, request: web.Request) -> JSON:
        chat = self._chats.resolve(_required(params, "chat_id"))
        content: JSON = {"text": _checked_text(params.get("text"))}
        if isinstance(params.get("entities"), list):
            content["entities"] = params["entities"]
        markup = _inline_markup(_checked_markup(params.get("reply_markup")))
        if markup is not None:
            content["reply_markup"] = markup
        replied = self._replied_message(chat, params.get("reply_parameters"))
        if replied is not None:
            content["reply_to_message"] = replied
        return self._chats.add(chat, self._bot(), content)

    def _replied_message(self, chat: JSON, reply_parameters: Any) -> JSON | None:
        if not isinstance(reply_parameters, dict) or "message_id" not in reply_parameters:
            return None
        chat_id = chat["id"]
        if "chat_id" in reply_parameters:
            chat_id = self._chats.resolve(reply_parameters["chat_id"])["id"]
        replied = self._chats.get(chat_id, reply_parameters["message_id"])
        if replied is None and not reply_parameters.get("allow_sending_without_reply"):
            raise ApiError(400, "Bad Request: message to be replied not found")
        if replied is not None:
            replied.pop("reply_to_message", None)  # Telegram nests one level only
        return replied

    async def _send_chat_action(self, params: JSON, request: web.Request) -> bool:
        self._chats.resolve(_required(params, "chat_id"))
        _required(params, "action")
        return True

    async def _answer_callback_query(self, params: JSON, request: web.Request) -> bool:
        if params.get("callback_query_id") not in self._callback_query_ids:
            raise ApiError(
                400,
                "Bad Request: query is too old and response timeout expired or query ID is invalid",
            )
        return True

    async def _edit_message_text(self, params: JSON, request: web.Request) -> JSON | bool:
        text = _checked_text(params.get("text"))
        # Telegram drops an inline keyboard that an editMessageText does not repeat.
        markup = _inline_markup(_checked_markup(params.get("reply_markup")))

        def edit(message: JSON) -> JSON:
            message["text"] = text
            message.pop("entities", None)
            if isinstance(params.get("entities"), list):
                message["entities"] = params["entities"]
            return _with_markup(message, markup)

        return self._edit(params, edit)

    async def _edit_message_reply_markup(self, params: JSON, request: web.Request) -> JSON | bool:
        markup = _inline_markup(_checked_markup(params.get("reply_markup")))
        return self._edit(params, lambda message: _with_markup(message, markup))

    def _edit(self, params: JSON, edit: Callable[[JSON], JSON]) -> JSON | bool:
        """Apply ``edit`` to the bot's stored message, refusing what Telegram refuses."""
        if params.get("inline_message_id"):
            return True  # inline messages live outside any chat the emulator knows
        message = self._target(params, "Bad Request: message to edit not found")
        if message.get("from", {}).get("id") != self._bot_id:
            raise ApiError(400, "Bad Request: message can't be edited")
        edited = edit(copy.deepcopy(message))
        if _visible(edited) == _visible(message):
            raise ApiError(400, _NOT_MODIFIED)
        edited["edit_date"] = factories.unix_now()
        self._chats.keep(edited)
        return edited

    async def _delete_message(self, params: JSON, request: web.Request) -> bool:
        message = self._target(params, "Bad Request: message to delete not found")
        return self._chats.delete(message["chat"]["id"], message["message_id"])

    def _target(self, params: JSON, not_found: str) -> JSON:
        chat = self._chats.resolve(_required(params, "chat_id"))
        message_id = _int_param(params, "message_id", 0)
        message = self._chats.get(chat["id"], message_id)
        if message is None:
            raise ApiError(400, not_found)
        return message


# ---------------------------------------------------------------------- request decoding


async def _read_params(request: web.Request) -> JSON:
    """The call's parameters from the query string and a JSON, form or multipart body."""
    params: JSON = {name: _decode_field(name, value) for name, value in request.query.items()}
    if not request.body_exists:
        return params
    if request.content_type == "application/json":
        try:
            body = await request.json()
        except ValueError:
            raise ApiError(400, "Bad Request: can't parse JSON") from None
        if not isinstance(body, dict):
            raise ApiError(400, "Bad Request: the request body must be a JSON object")
        return params | body
    form = await request.post()
    for name, value in form.items():
        if isinstance(value, web.FileField):
            params[name] = UploadedFile(value.filename, value.content_type, value.file.read())
        else:
            params[name] = _decode_field(name, value if isinstance(value, str) else value.decode())
    return params


def _decode_field(name: str, raw: str) -> Any:
    """A form field as PTB meant it: JSON for non-strings, the raw text for strings."""
    if name in _TEXT_PARAMS:
        return raw
    try:
        value = json.loads(raw, parse_constant=_reject_constant)
    except ValueError:
        return raw
    if name == "chat_id" and type(value) is not int:
        return raw  # "@channelname", or a string that merely parses as JSON
    return value


def _reject_constant(constant: str) -> Any:
    raise ValueError(f"{constant} is not a Bot API value")


def _required(params: JSON, name: str) -> Any:
    value = params.get(name)
    if value is None or value == "":
        raise ApiError(400, f"Bad Request: {name} is empty")
    return value


def _int_param(params: JSON, name: str, default: int) -> int:
    value = params.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ApiError(400, f"Bad Request: {name} must be a number")
    try:
        return int(value)
    except ValueError:
        raise ApiError(400, f"Bad Request: {name} must be a number") from None


def _checked_text(text: Any) -> str:
    if not isinstance(text, str) or not text.strip():
        raise ApiError(400, "Bad Request: message text is empty")
    if factories.utf16_len(text) > MAX_TEXT_LENGTH:
        raise ApiError(400, "Bad Request: message is too long")
    return text


def _checked_markup(markup: Any) -> JSON | None:
    """Refuse the keyboards Telegram refuses; the usual one is callback data over 64 bytes."""
    if markup is None:
        return None
    if not isinstance(markup, dict):
        raise ApiError(400, "Bad Request: can't parse reply keyboard markup JSON object")
    rows = markup.get("inline_keyboard")
    if rows is None:
        return markup  # a reply keyboard, ReplyKeyboardRemove or ForceReply
    if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
        raise ApiError(400, "Bad Request: can't parse inline keyboard markup JSON object")
    for button in itertools.chain.from_iterable(rows):
        if not isinstance(button, dict) or not button.get("text"):
            raise ApiError(400, "Bad Request: can't parse inline keyboard button: text is empty")
        if len(_INLINE_BUTTON_ACTIONS & button.keys()) != 1:
            raise ApiError(
                400,
                "Bad Request: can't parse inline keyboard button: "
                "Text buttons are unallowed in the inline keyboard",
            )
        data = button.get("callback_data")
        if data is not None and not 1 <= len(str(data).encode()) <= MAX_CALLBACK_DATA_BYTES:
            raise ApiError(400, "Bad Request: BUTTON_DATA_INVALID")
    return markup


def _inline_markup(markup: JSON | None) -> JSON | None:
    """Only inline keyboards come back in a Message; PTB would fail to parse anything else."""
    if markup is not None and markup.get("inline_keyboard"):
        return markup
    return None


def _with_markup(message: JSON, markup: JSON | None) -> JSON:
    message.pop("reply_markup", None)
    if markup is not None:
        message["reply_markup"] = markup
    return message


def _visible(message: JSON) -> tuple[Any, ...]:
    """What a user sees of a message: an edit that changes none of it is refused."""
    return (message.get("text"), message.get("caption"), message.get("reply_markup"))


def _scope_key(scope: Any, language_code: str) -> tuple[str, str]:
    return json.dumps(scope or {"type": "default"}, sort_keys=True), language_code


def _summary(message: JSON) -> str:
    buttons = BotAPIEmulator.buttons(message)
    suffix = f" buttons={buttons}" if buttons else ""
    return f"#{message['message_id']} {message.get('text')!r}{suffix}"
