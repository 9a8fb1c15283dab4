"""`AiohttpRequest`: python-telegram-bot's calls over aiohttp keep the library's error contract.

The bot's retries (`bot.telegram.delivery`) and the rate limiter's 429 handling depend on
which exception a failure raises; each case here goes through the real library to the
emulator over HTTP.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
from telegram import InlineKeyboardButton, InlineKeyboardMarkup
from telegram.error import BadRequest, InvalidToken, NetworkError, RetryAfter, TimedOut
from telegram.ext import ExtBot

from bot.telegram.request import AiohttpRequest
from tests.emulator.server import BotAPIEmulator, UploadedFile


@pytest.fixture
async def emulator() -> AsyncIterator[BotAPIEmulator]:
    async with BotAPIEmulator() as emu:
        yield emu


def client(emulator: BotAPIEmulator, *, connections: int = 4, timeout: float = 1.0) -> ExtBot[None]:
    request = AiohttpRequest(
        connections=connections,
        connect_timeout=timeout,
        read_timeout=timeout,
        write_timeout=timeout,
        pool_timeout=timeout,
    )
    return ExtBot(emulator.token, base_url=emulator.base_url, request=request)


async def test_a_message_with_buttons_is_sent_and_the_sent_message_comes_back(
    emulator: BotAPIEmulator,
) -> None:
    markup = InlineKeyboardMarkup([[InlineKeyboardButton("Another story", callback_data="more")]])
    async with client(emulator) as bot:
        sent = await bot.send_message(42, "“Quoted” — şahit, ICSR 2015", reply_markup=markup)
    assert sent.text == "“Quoted” — şahit, ICSR 2015" and sent.chat.id == 42
    [call] = emulator.calls_to("sendMessage")
    assert call.params["chat_id"] == 42
    assert call.params["reply_markup"] == {
        "inline_keyboard": [[{"text": "Another story", "callback_data": "more"}]]
    }


async def test_error_statuses_become_the_librarys_own_exceptions(
    emulator: BotAPIEmulator,
) -> None:
    emulator.fail_next("sendMessage", status=429, retry_after=3)
    emulator.fail_next("sendMessage", status=400, description="Bad Request: chat not found")
    async with client(emulator) as bot:
        with pytest.raises(RetryAfter) as limited:
            await bot.send_message(1, "a")
        with pytest.raises(BadRequest, match=r"(?i)chat not found"):
            await bot.send_message(1, "b")
        assert (await bot.send_message(1, "c")).text == "c"
    assert limited.value.retry_after == 3


async def test_a_reset_connection_is_a_network_error_and_the_next_call_works(
    emulator: BotAPIEmulator,
) -> None:
    emulator.reset_next("sendMessage")
    async with client(emulator) as bot:
        with pytest.raises(NetworkError) as failed:
            await bot.send_message(1, "lost")
        assert not isinstance(failed.value, TimedOut)
        assert (await bot.send_message(1, "after")).text == "after"


async def test_a_slow_answer_times_out_within_the_read_timeout(emulator: BotAPIEmulator) -> None:
    emulator.delay_next("sendMessage", 5.0)
    async with client(emulator, timeout=0.3) as bot:
        started = time.monotonic()
        with pytest.raises(TimedOut):
            await bot.send_message(1, "slow")
        assert time.monotonic() - started < 2.0


async def test_waiting_for_a_free_connection_times_out_instead_of_hanging(
    emulator: BotAPIEmulator,
) -> None:
    emulator.hold("sendMessage")
    async with client(emulator, connections=1, timeout=0.3) as bot:
        first = asyncio.ensure_future(bot.send_message(1, "held", read_timeout=10))
        while emulator.held_calls("sendMessage") < 1:
            await asyncio.sleep(0.01)
        started = time.monotonic()
        with pytest.raises(TimedOut):
            await bot.send_message(1, "no connection free")
        assert time.monotonic() - started < 2.0
        emulator.release("sendMessage")
        assert (await first).text == "held"


async def test_a_file_is_sent_as_multipart_with_its_name_and_content(
    emulator: BotAPIEmulator,
) -> None:
    async with client(emulator) as bot:
        with pytest.raises(InvalidToken):  # the emulator has no sendDocument: 404
            await bot.send_document(7, b"exit programmes, 2026", filename="resources.txt")
    [call] = emulator.calls_to("sendDocument")
    document = call.params["document"]
    assert isinstance(document, UploadedFile)
    assert document.filename == "resources.txt" and document.data == b"exit programmes, 2026"
    assert call.params["chat_id"] == 7


async def test_calls_before_initialising_say_so(emulator: BotAPIEmulator) -> None:
    request = AiohttpRequest(
        connections=1, connect_timeout=1, read_timeout=1, write_timeout=1, pool_timeout=1
    )
    with pytest.raises(RuntimeError, match="not initialized"):
        await request.do_request(f"{emulator.base_url}{emulator.token}/getMe", "POST")
    with pytest.raises(ValueError, match="at least 1"):
        AiohttpRequest(
            connections=0, connect_timeout=1, read_timeout=1, write_timeout=1, pool_timeout=1
        )


async def test_a_peer_that_stops_reading_the_request_cannot_hold_a_call_forever() -> None:
    """aiohttp has no write timeout: the call as a whole is bounded instead."""
    accepted: list[asyncio.StreamWriter] = []

    async def never_read(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)  # kept open, never read from, never answered

    server = await asyncio.start_server(never_read, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    request = AiohttpRequest(
        connections=1, connect_timeout=0.2, read_timeout=0.2, write_timeout=0.2, pool_timeout=0.2
    )
    bot = ExtBot("123:stuck", base_url=f"http://127.0.0.1:{port}/bot", request=request)
    await request.initialize()
    try:
        started = time.monotonic()
        with pytest.raises(TimedOut):
            # Far more than the socket buffers take: the write itself blocks.
            await bot.send_message(1, "x" * 32_000_000)
        assert time.monotonic() - started < 5.0
    finally:
        await request.shutdown()
        for writer in accepted:
            writer.close()
        server.close()
        await server.wait_closed()
