"""Pieces of one conversation turn that need no server: cleaning input, campaigns, retention."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import update

from bot.conversation import campaign_from_payload, clean_user_text
from bot.retention import purge_expired, retention_loop
from bot.storage.models import Message
from bot.storage.store import Store


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
