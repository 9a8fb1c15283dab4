"""Pieces of one conversation turn that need no server: cleaning input, campaigns, retention."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import update
from sqlalchemy.exc import OperationalError
from telegram.error import TimedOut

from bot.content.database_provider import StaticLibrary
from bot.content.loader import load_library
from bot.conversation import Conversation, TextIn, campaign_from_payload, clean_user_text
from bot.nlu.client import NLUClient
from bot.policy.compose import Reply
from bot.policy.decision import Command
from bot.retention import purge_expired, retention_loop
from bot.storage.models import Message, User
from bot.storage.store import Store
from bot.storage.turns import TurnStart
from tests.conftest import free_port, make_settings


@given(st.text(max_size=6000), st.integers(min_value=1, max_value=5000))
def test_clean_text_never_exceeds_the_limit_and_holds_no_control_characters(
    text: str, limit: int
) -> None:
    clean, cut = clean_user_text(text, limit)
    assert len(clean) <= limit
    assert "\x00" not in clean
    if cut:
        assert len(clean) == limit


def test_clean_text_keeps_line_breaks_and_scripts() -> None:
    assert clean_user_text("  سلام\nakhi\x07 \u200f ", 100) == ("سلام\nakhi \u200f", False)


def test_only_tag_like_payloads_become_campaigns() -> None:
    assert campaign_from_payload("spring_2026-ads") == "spring_2026-ads"
    assert campaign_from_payload(None) is None
    assert campaign_from_payload("") is None
    assert campaign_from_payload("a" * 65) is None
    assert campaign_from_payload("<script>") is None
    assert campaign_from_payload("name=yusuf&phone=123") is None


async def backdate(store: Store, message_id: int, days: int) -> None:
    async with store.database.session() as session, session.begin():
        await session.execute(
            update(Message)
            .where(Message.id == message_id)
            .values(created_at=datetime.now(UTC) - timedelta(days=days))
        )


async def test_purge_deletes_only_what_is_older_than_the_retention(store: Store) -> None:
    old = await store.record_message("p1", direction="in", kind="text", text="old")
    await store.record_message("p1", direction="out", kind="greet", text="recent")
    await backdate(store, old, days=31)
    assert await purge_expired(store, retention_days=30) == 1
    assert [m.text for m in await store.messages_for("p1")] == ["recent"]


async def test_the_retention_loop_runs_at_once_and_stops_when_cancelled(store: Store) -> None:
    old = await store.record_message("p2", direction="in", kind="text", text="old")
    await backdate(store, old, days=100)
    task = asyncio.create_task(retention_loop(store, retention_days=90, interval_seconds=3600))
    for _ in range(100):
        if not await store.messages_for("p2"):
            break
        await asyncio.sleep(0.05)
    assert await store.messages_for("p2") == []
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert task.cancelled()


@contextlib.asynccontextmanager
async def conversation_without_nlu(
    tmp_path: Path, store: Store, **changes: object
) -> AsyncIterator[Conversation]:
    """The conversation over the test store with `changes` to the settings; commands and
    buttons need no NLU server."""
    settings = make_settings(tmp_path, **changes)
    library = StaticLibrary(load_library(settings.content_dir))
    async with NLUClient(f"http://127.0.0.1:{free_port()}", None, timeout_seconds=1) as dead:
        yield Conversation(settings, store, dead, library)


@pytest.fixture
async def commands_only(tmp_path: Path, store: Store) -> AsyncIterator[Conversation]:
    async with conversation_without_nlu(tmp_path, store) as conversation:
        yield conversation


async def test_a_reply_leaves_before_its_turn_is_committed_and_is_recorded_if_sending_fails(
    commands_only: Conversation, store: Store
) -> None:
    """The commit's wait for the disk is not part of the reply's latency; nothing is lost."""
    conversation = commands_only
    stored_when_sent: list[int] = []

    async def deliver(reply: Reply) -> None:
        stored_when_sent.append(len(await store.messages_for("c" * 64)))

    replies = await conversation.handle("c" * 64, Command("help"), update_id=77, deliver=deliver)
    assert [r.kind for r in replies] == ["help"]
    assert stored_when_sent == [0], "sent before the records were committed"
    assert [m.kind for m in await store.messages_for("c" * 64)] == ["command", "help"]

    async def broken(reply: Reply) -> None:
        raise TimedOut("Telegram did not answer")

    with pytest.raises(TimedOut):
        await conversation.handle("c" * 64, Command("privacy"), update_id=78, deliver=broken)
    kinds = [m.kind for m in await store.messages_for("c" * 64)]
    assert kinds == ["command", "help", "command", "privacy"], "recorded all the same"

    # Telegram delivers update 78 again: it was claimed, so nothing is said or stored twice.
    sent: list[Reply] = []

    async def collect(reply: Reply) -> None:
        sent.append(reply)

    assert (
        await conversation.handle("c" * 64, Command("privacy"), update_id=78, deliver=collect) == []
    )
    assert sent == [] and len(await store.messages_for("c" * 64)) == 4


RECHECK_AFTER = 0.3  # long enough that a quick turn on a busy CI machine stays under it


@pytest.fixture
async def rechecking(tmp_path: Path, store: Store) -> AsyncIterator[Conversation]:
    """`commands_only` with a short `TAKEOVER_RECHECK_SECONDS`, so a slow turn is quick to make."""
    async with conversation_without_nlu(
        tmp_path, store, takeover_recheck_seconds=RECHECK_AFTER
    ) as conversation:
        yield conversation


def take_over_after_the_read(store: Store, pseudonym: str, delay: float) -> asyncio.Event:
    """Make the next turns' first read be followed by a takeover and `delay` seconds of work."""
    taken = asyncio.Event()
    original = store.begin_turn

    async def begin_then_take_over(*args: Any, **kwargs: Any) -> TurnStart:
        start = await original(*args, **kwargs)
        async with store.database.session() as session, session.begin():
            await session.execute(
                update(User).where(User.pseudonym == pseudonym).values(handling="person")
            )
        taken.set()
        await asyncio.sleep(delay)
        return start

    store.begin_turn = begin_then_take_over  # type: ignore[method-assign]
    return taken


async def test_a_reply_is_withheld_when_a_person_took_over_during_a_slow_turn(
    rechecking: Conversation, store: Store
) -> None:
    conversation = rechecking
    await conversation.handle("d" * 64, Command("start"))
    taken = take_over_after_the_read(store, "d" * 64, delay=RECHECK_AFTER * 2)
    sent: list[Reply] = []

    async def collect(reply: Reply) -> None:
        sent.append(reply)

    replies = await conversation.handle("d" * 64, Command("help"), update_id=80, deliver=collect)
    assert taken.is_set() and replies == [] and sent == []
    kinds = [m.kind for m in await store.messages_for("d" * 64)]
    assert kinds[-2:] == ["command", "help"], "the withheld reply is recorded as composed"


async def test_a_quick_turn_trusts_its_first_read_and_reads_who_handles_the_user_no_more(
    rechecking: Conversation, store: Store
) -> None:
    """The re-read costs every reply a database round trip; a fresh first read stands."""
    conversation = rechecking
    await conversation.handle("e" * 64, Command("start"))
    reads: list[str] = []
    original = store.handling_of

    async def counted(pseudonym: str) -> str | None:
        reads.append(pseudonym)
        return await original(pseudonym)

    store.handling_of = counted  # type: ignore[method-assign]
    sent: list[Reply] = []

    async def collect(reply: Reply) -> None:
        sent.append(reply)

    replies = await conversation.handle("e" * 64, Command("help"), update_id=81, deliver=collect)
    assert [r.kind for r in replies] == ["help"] == [r.kind for r in sent]
    assert reads == [], "a quick turn does not read the handling again"

    take_over_after_the_read(store, "e" * 64, delay=RECHECK_AFTER * 2)
    replies = await conversation.handle("e" * 64, Command("help"), update_id=82, deliver=collect)
    assert replies == [] and len(sent) == 1 and reads == ["e" * 64]


async def test_a_failed_first_read_cancels_the_classification_it_ran_beside(
    commands_only: Conversation, store: Store
) -> None:
    """The turn's read and the NLU request run together; a dead database ends both."""
    conversation = commands_only
    outcome: list[str] = []

    async def slow_understanding(text: str) -> Any:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            outcome.append("cancelled")
            raise
        outcome.append("finished")

    async def broken_read(*args: Any, **kwargs: Any) -> TurnStart:
        await asyncio.sleep(0.01)
        raise OperationalError("SELECT", {}, Exception("database is gone"))

    conversation._understand = slow_understanding  # type: ignore[method-assign]
    store.begin_turn = broken_read  # type: ignore[method-assign]
    with pytest.raises(OperationalError):
        await conversation.handle("f" * 64, TextIn("i want to go to sham"), update_id=90)
    await asyncio.sleep(0)
    assert outcome == ["cancelled"]
