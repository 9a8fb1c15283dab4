"""Statistics for the dashboard, on SQLite and PostgreSQL; test traffic never counts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from bot.review.demo import seed_demo
from bot.review.inbox import InboxFilter, inbox_page, inbox_query
from bot.review.statistics import (
    CampaignActivity,
    ContentOutcome,
    Period,
    campaign_activity,
    content_outcomes,
    daily_activity,
    intents_by_day,
    outcome_of,
    to_csv,
)
from bot.storage.models import Message
from bot.storage.store import Store
from tests.review_data import press, say, set_last_seen


async def test_content_outcomes_follow_each_item_to_what_the_user_did_next(store: Store) -> None:
    await say(store, "a", "they protect us", "claim_protects_muslims", reply_content=("t-1",))
    await press(store, "a", "another_story")
    await say(store, "b", "they protect us", "claim_protects_muslims", reply_content=("t-1",))
    await say(store, "c", "life is good there", "claim_good_life", reply_content=("t-2", "f-1"))
    await press(store, "c", "help")
    await say(store, "d", "life is good there", "claim_good_life", reply_content=("t-2",))
    await say(store, "d", "thanks", "thanks")
    await say(store, "e", "life is good there", "claim_good_life", reply_content=("t-2",))
    await press(store, "e", "human")
    await say(store, "t", "x", "claim_good_life", reply_content=("t-2",), is_test=True)

    today = datetime.now(UTC).date()
    found = await content_outcomes(store.database, Period(today, today))
    assert found == [
        ContentOutcome("t-2", 3, another_story=0, help=1, human=1, wrote_again=1, left=0),
        ContentOutcome("t-1", 2, another_story=1, help=0, human=0, wrote_again=0, left=1),
        ContentOutcome("f-1", 1, another_story=0, help=1, human=0, wrote_again=0, left=0),
    ]


@pytest.mark.parametrize(
    ("kind", "text", "intent", "outcome"),
    [
        (None, None, None, "left"),
        ("callback", "another_story", None, "another_story"),
        ("callback", "country:DE", None, "help"),
        ("text", "who can help my brother", "ask_help_leaving", "help"),
        ("command", "/resources", None, "help"),
        ("command", "/human", None, "human"),
        ("text", "can i talk to a real person", "request_human", "human"),
        ("text", "ok", "affirm", "wrote_again"),
    ],
)
def test_what_a_next_message_means(
    kind: str | None, text: str | None, intent: str | None, outcome: str
) -> None:
    assert outcome_of(kind, text, intent) == outcome


async def test_daily_activity_intents_and_campaigns(store: Store) -> None:
    await say(store, "old", "i want to die", "crisis_self_harm")
    await set_last_seen(store, "old", days_ago=2)
    await say(store, "new", "i want to go there", "interest_joining")
    await say(store, "new", "the dawla protects", "claim_protects_muslims")
    await say(store, "other", "hi", "greet")
    await say(store, "tester", "hi", "greet", is_test=True)
    await store.set_campaign("new", "school_talk")
    await store.set_campaign("other", "school_talk")
    await store.set_campaign("old", "=cmd|' /C calc'!A0")

    today = datetime.now(UTC).date()
    period = Period(today - timedelta(days=2), today)
    days = await daily_activity(store.database, period)
    assert [
        (d.day, d.conversations, d.messages_in, d.messages_out, d.crisis, d.risk) for d in days
    ] == [
        (today - timedelta(days=2), 1, 1, 1, 1, 0),
        (today - timedelta(days=1), 0, 0, 0, 0, 0),
        (today, 2, 3, 3, 0, 2),
    ]
    intents = await intents_by_day(store.database, period)
    assert intents == {
        "crisis_self_harm": {today - timedelta(days=2): 1},
        "interest_joining": {today: 1},
        "claim_protects_muslims": {today: 1},
        "greet": {today: 1},
    }
    found = await campaign_activity(store.database, period)
    assert found == [
        CampaignActivity("=cmd|' /C calc'!A0", 1, 1, risk_users=0, crisis_users=1),
        CampaignActivity("school_talk", 2, 3, risk_users=1, crisis_users=0),
    ]
    # A campaign tag that a spreadsheet would run as a formula is exported inert.
    assert to_csv(found).splitlines() == [
        "campaign,conversations,messages_in,risk_users,crisis_users",
        "'=cmd|' /C calc'!A0,1,1,0,1",
        "school_talk,2,3,1,0",
    ]


def test_a_period_cannot_end_before_it_starts() -> None:
    today = datetime.now(UTC).date()
    with pytest.raises(ValueError, match="ends before"):
        Period(today, today - timedelta(days=1))


async def test_demo_data_fills_the_inbox_and_refuses_a_used_database(store: Store) -> None:
    written = await seed_demo(store.database, 300, {"claim_good_life": ["t-demo"]})
    async with store.database.session() as session:
        count = len((await session.scalars(select(Message.id))).all())
    assert written == count > 600
    page = await inbox_page(store.database, InboxFilter(level="crisis"), page_size=500)
    assert page.rows and all(r.risk_level == "crisis" for r in page.rows)
    # The bot can still add users after the demo's explicit ids.
    await say(store, "after-demo", "hi", "greet")
    with pytest.raises(ValueError, match="already has users"):
        await seed_demo(store.database, 1, {})


async def test_postgresql_reads_an_inbox_page_through_its_index(store: Store) -> None:
    if store.database.dialect != "postgresql":
        # SQLite's plan for the same query, to the same effect.
        await seed_demo(store.database, 2000, {})
        async with store.database.engine.connect() as connection:
            plan = await connection.exec_driver_sql("EXPLAIN QUERY PLAN " + first_page_sql(store))
            assert "USING INDEX ix_users_inbox_order" in str(plan.all())
        return
    await seed_demo(store.database, 5000, {})
    async with store.database.engine.connect() as connection:
        plan = await connection.exec_driver_sql("EXPLAIN " + first_page_sql(store))
        text = "\n".join(row[0] for row in plan.all())
    assert "ix_users_inbox_order" in text, text
    assert "Sort" not in text.split("ix_users_inbox_order")[0], text


def first_page_sql(store: Store) -> str:
    """The SQL of the inbox's first page, with its parameters written in."""
    statement = inbox_query()
    dialect = store.database.engine.dialect
    return str(statement.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))
