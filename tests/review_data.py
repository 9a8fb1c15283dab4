"""Conversations written through the real `Store`, for the review and dashboard tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import update

from bot.conversation import flags_for
from bot.nlu.understanding import IntentScore, Understanding
from bot.safety.risk import record_signals
from bot.storage.models import Message, User
from bot.storage.store import Store

RANKING = ("greet", "thanks", "affirm", "deny", "insult")


def understood(text: str, intent: str | None, confidence: float = 0.9) -> Understanding:
    """An understanding with `intent` on top and four more intents in the ranking."""
    others = [i for i in RANKING if i != intent]
    ranking = (IntentScore(intent, confidence),) if intent else ()
    ranking += tuple(
        IntentScore(name, round((1 - confidence) / (n + 2), 4)) for n, name in enumerate(others)
    )
    return Understanding(
        text,
        intent,
        confidence,
        ranking=ranking,
        source="nlu" if intent else "unavailable",
        model="nlu-test.tar.gz",
    )


async def say(
    store: Store,
    pseudonym: str,
    text: str,
    intent: str | None,
    confidence: float = 0.9,
    *,
    flags: tuple[str, ...] = (),
    is_test: bool = False,
    reply_content: tuple[str, ...] = (),
) -> int:
    """The user says `text`, the bot answers; returns the incoming message's id.

    Flags, crisis state and risk level are kept as `Conversation.handle` keeps them.
    """
    understanding = understood(text, intent, confidence)
    if not flags:
        flags = flags_for(understanding)
    message_id = await store.record_message(
        pseudonym,
        direction="in",
        kind="text",
        text=text,
        understanding=understanding,
        flags=flags,
        is_test=is_test,
    )
    state = await store.load_user(pseudonym)
    state.risk_signals = record_signals(state.risk_signals, understanding)
    state.in_crisis = state.in_crisis or understanding.is_crisis
    await store.save_user(state)
    await store.record_message(
        pseudonym,
        direction="out",
        kind="counter_message" if reply_content else "fallback",
        text="a reply",
        content_ids=reply_content,
        is_test=is_test,
    )
    return message_id


async def press(store: Store, pseudonym: str, data: str) -> int:
    return await store.record_message(pseudonym, direction="in", kind="callback", text=data)


async def user_id_of(store: Store, pseudonym: str) -> int:
    async with store.database.session() as session:
        found = await session.scalar(
            User.__table__.select().with_only_columns(User.id).where(User.pseudonym == pseudonym)
        )
        assert found is not None
        return int(found)


async def set_last_seen(store: Store, pseudonym: str, days_ago: float) -> None:
    """Move a user's whole conversation `days_ago` into the past (messages and last seen)."""
    when = datetime.now(UTC) - timedelta(days=days_ago)
    user_id = await user_id_of(store, pseudonym)
    async with store.database.session() as session, session.begin():
        await session.execute(update(User).where(User.id == user_id).values(last_seen_at=when))
        await session.execute(
            update(Message).where(Message.user_id == user_id).values(created_at=when)
        )
