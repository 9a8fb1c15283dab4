"""The moderators' review queries and actions, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from bot.review.inbox import BadCursor, InboxFilter, campaigns, inbox_page
from bot.review.transcript import (
    NotFound,
    add_note,
    annotate,
    mark_reviewed,
    set_flag,
    transcript,
)
from bot.storage.models import User
from bot.storage.review_models import IntentAnnotation, ModeratorNote
from bot.storage.store import Store
from tests.review_data import press, say, set_last_seen, user_id_of


async def pseudonyms_in(store: Store, where: InboxFilter | None = None) -> list[str]:
    page = await inbox_page(store.database, where or InboxFilter(), page_size=100)
    return [row.pseudonym for row in page.rows]


async def three_severities(store: Store) -> None:
    """other-old, risk-old, crisis-old, other-new, risk-new, and a test-traffic user."""
    await say(store, "other-old", "hello", "greet")
    await say(store, "risk-old", "the dawla protects us", "claim_protects_muslims")
    await say(store, "crisis-old", "i want to die", "crisis_self_harm")
    await say(store, "other-new", "what time is fajr", "benign_religious")
    await say(store, "risk-new", "i want to go there", "interest_joining")
    await say(store, "tester", "i want to die", "crisis_self_harm", is_test=True)
    for days, name in enumerate(["risk-new", "other-new", "crisis-old", "risk-old", "other-old"]):
        await set_last_seen(store, name, days_ago=days + 1)


async def test_inbox_orders_by_severity_then_recency_without_test_traffic(store: Store) -> None:
    await three_severities(store)
    page = await inbox_page(store.database)
    assert [r.pseudonym for r in page.rows] == [
        "crisis-old",
        "risk-new",
        "risk-old",
        "other-new",
        "other-old",
    ]
    assert [r.risk_level for r in page.rows] == ["crisis", "elevated", "low", "none", "none"]
    first = page.rows[0]
    assert (first.messages, first.last_intent, first.last_text) == (
        2,
        "crisis_self_harm",
        "i want to die",
    )
    assert page.next_cursor is None


async def test_inbox_pages_follow_each_other_without_gaps_or_repeats(store: Store) -> None:
    for n in range(7):
        if n % 3 == 0:
            await say(store, f"user-{n}", "they protect us", "claim_protects_muslims")
        else:
            await say(store, f"user-{n}", "hi", "greet")
    everything = await pseudonyms_in(store)
    seen: list[str] = []
    cursor = None
    for _ in range(3):
        page = await inbox_page(store.database, cursor=cursor, page_size=3)
        seen += [r.pseudonym for r in page.rows]
        cursor = page.next_cursor
    assert cursor is None
    assert seen == everything
    assert len(set(seen)) == 7
    assert seen[:3] == ["user-6", "user-3", "user-0"]  # the risk users, newest first


@pytest.mark.parametrize("cursor", ["", "nonsense!", "W10", "WzEsMiwzLDRd", "WyJ4IiwxLDIsM10"])
async def test_an_edited_cursor_is_refused(store: Store, cursor: str) -> None:
    with pytest.raises(BadCursor):
        await inbox_page(store.database, cursor=cursor)


async def test_inbox_filters(store: Store) -> None:
    await three_severities(store)
    await store.set_campaign("risk-new", "school_talk")
    await press(store, "other-new", "human")
    await store.record_message("other-new", direction="out", kind="human_requested", text="ok")
    async with store.database.session() as session, session.begin():
        await session.execute(
            User.__table__.update()
            .where(User.pseudonym == "other-new")
            .values(human_requested=True)
        )
    await say(store, "search-me", "100% sure about the Dawla_state", "claim_protects_muslims")
    await say(store, "tagalog", "ano ang ginagawa mo ngayong gabi kapatid", "benign_religious")
    await store.record_message("tagalog", direction="out", kind="other_language", text="sorry")

    assert await pseudonyms_in(store, InboxFilter(flag="crisis")) == ["crisis-old"]
    assert await pseudonyms_in(store, InboxFilter(level="elevated")) == ["risk-new"]
    assert await pseudonyms_in(store, InboxFilter(flag="risk")) == [
        "risk-new",
        "search-me",
        "risk-old",
    ]
    assert await pseudonyms_in(store, InboxFilter(flag="human_requested")) == ["other-new"]
    assert await pseudonyms_in(store, InboxFilter(flag="other_language")) == ["tagalog"]
    assert await pseudonyms_in(store, InboxFilter(intent="interest_joining")) == ["risk-new"]
    assert await pseudonyms_in(store, InboxFilter(campaign="school_talk")) == ["risk-new"]
    assert await campaigns(store.database) == ["school_talk"]
    # Case-insensitive, and LIKE's wildcards in the search are plain characters.
    assert await pseudonyms_in(store, InboxFilter(search="DAWLA_S")) == ["search-me"]
    assert await pseudonyms_in(store, InboxFilter(search="100%")) == ["search-me"]
    assert await pseudonyms_in(store, InboxFilter(search="dawla")) == ["search-me", "risk-old"]
    assert await pseudonyms_in(store, InboxFilter(search="_")) == ["search-me"]
    today = datetime.now(UTC).date()
    window = InboxFilter(since=today - timedelta(days=4), until=today - timedelta(days=3))
    assert await pseudonyms_in(store, window) == ["crisis-old", "risk-old"]


async def test_status_is_new_again_when_the_user_writes_after_a_review(store: Store) -> None:
    await say(store, "reviewed", "hi", "greet")
    await say(store, "untouched", "hi", "greet")
    user_id = await user_id_of(store, "reviewed")
    await mark_reviewed(store.database, user_id, by="mod")
    assert await pseudonyms_in(store, InboxFilter(status="reviewed")) == ["reviewed"]
    assert await pseudonyms_in(store, InboxFilter(status="new")) == ["untouched"]

    await say(store, "reviewed", "me again", "greet")
    assert await pseudonyms_in(store, InboxFilter(status="reviewed")) == []
    assert set(await pseudonyms_in(store, InboxFilter(status="new"))) == {"reviewed", "untouched"}


async def test_transcript_shows_intents_alternatives_content_and_actions(store: Store) -> None:
    first = await say(
        store,
        "reader",
        "the dawla protects sunnis",
        "claim_protects_muslims",
        0.62,
        flags=("risk",),
        reply_content=("icsr-not-protecting-but-killing",),
    )
    await press(store, "reader", "another_story")
    await say(store, "reader", "test", "greet", is_test=True)
    user_id = await user_id_of(store, "reader")

    await set_flag(store.database, user_id, True, by="mod-a")
    await add_note(store.database, user_id, "  follow up next week <b>  ", by="mod-a")
    done = await annotate(store.database, first, "sympathy_general", by="mod-b")
    assert (done.user_id, done.pseudonym, done.model_intent, done.confirmed) == (
        user_id,
        "reader",
        "claim_protects_muslims",
        False,
    )
    await mark_reviewed(store.database, user_id, by="mod-b")

    seen = await transcript(store.database, user_id)
    assert seen.pseudonym == "reader"
    assert (seen.risk_level, seen.flagged, seen.reviewed, seen.reviewed_by) == (
        "low",
        True,
        True,
        "mod-b",
    )
    assert [(m.direction, m.kind) for m in seen.messages] == [
        ("in", "text"),
        ("out", "counter_message"),
        ("in", "callback"),
    ]
    said = seen.messages[0]
    assert (said.intent, said.confidence, said.corrected_intent, said.annotator) == (
        "claim_protects_muslims",
        0.62,
        "sympathy_general",
        "mod-b",
    )
    assert [name for name, _ in said.alternatives] == ["greet", "thanks", "affirm"]
    assert seen.messages[1].content_ids == ("icsr-not-protecting-but-killing",)
    assert [(n.author, n.text) for n in seen.notes] == [("mod-a", "follow up next week <b>")]

    await set_flag(store.database, user_id, False, by="mod-a")
    assert (await transcript(store.database, user_id)).flagged is False


async def test_actions_refuse_what_does_not_exist_or_is_not_allowed(store: Store) -> None:
    said = await say(store, "someone", "hello", "greet")
    user_id = await user_id_of(store, "someone")
    with pytest.raises(NotFound):
        await transcript(store.database, user_id + 1000)
    with pytest.raises(NotFound):
        await mark_reviewed(store.database, user_id + 1000, by="mod")
    with pytest.raises(NotFound):
        await annotate(store.database, said + 1, "greet", by="mod")  # the bot's reply
    with pytest.raises(ValueError, match="unknown intent"):
        await annotate(store.database, said, "nlu_fallback", by="mod")
    with pytest.raises(ValueError, match="empty"):
        await add_note(store.database, user_id, "   ", by="mod")
    with pytest.raises(ValueError, match="at most"):
        await add_note(store.database, user_id, "x" * 4001, by="mod")


async def test_a_second_annotation_replaces_the_first(store: Store) -> None:
    said = await say(store, "twice", "hmm", "nlu_fallback", 0.3)
    await annotate(store.database, said, "greet", by="mod-a")
    await annotate(store.database, said, "thanks", by="mod-b")
    async with store.database.session() as session:
        rows = (await session.scalars(select(IntentAnnotation))).all()
    assert [(a.intent, a.model_intent, a.annotator) for a in rows] == [
        ("thanks", "nlu_fallback", "mod-b")
    ]


async def test_forget_takes_notes_reviews_and_annotations_with_it(store: Store) -> None:
    said = await say(store, "leaving", "hi", "greet")
    user_id = await user_id_of(store, "leaving")
    await add_note(store.database, user_id, "a note", by="mod")
    await annotate(store.database, said, "greet", by="mod")
    await set_flag(store.database, user_id, True, by="mod")
    await store.forget_user("leaving")
    async with store.database.session() as session:
        for table in (ModeratorNote, IntentAnnotation):
            assert await session.scalar(select(func.count()).select_from(table)) == 0
