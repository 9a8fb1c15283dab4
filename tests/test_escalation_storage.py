"""Escalation state in the database, on SQLite and PostgreSQL: risk level, crisis, alerts."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bot.escalation.contact import ContactSealer, ContactUnreadable
from bot.policy.decision import CALM, COOLDOWN, FLOOD_AGAIN, FLOOD_FIRST
from bot.policy.state import UserState
from bot.services import resilient_store
from bot.storage import Database, Store
from bot.storage.escalation import CRISIS, HIGH_RISK, HUMAN_REQUEST, EscalationStore
from bot.storage.models import Alert, utcnow
from bot.storage.turns import flood_status
from tests.conftest import counting_commits, make_settings


async def test_saving_a_user_stores_the_risk_level_and_reasons(store: Store) -> None:
    state = await store.load_user("p-risk")
    assert (state.risk_level, state.risk_reasons) == ("none", [])
    state.risk_signals = {"interest_joining": 3, "claim_good_life": 1}
    await store.save_user(state)
    assert (state.risk_level, state.risk_reasons) == (
        "high",
        ["interest_joining x3", "claim_good_life x1"],
    )
    reloaded = await store.load_user("p-risk")
    assert reloaded.risk_level == "high"
    assert reloaded.risk_reasons == ["interest_joining x3", "claim_good_life x1"]
    assert reloaded.risk_signals == {"interest_joining": 3, "claim_good_life": 1}


async def test_saving_never_lowers_crisis_state(store: Store) -> None:
    state = UserState(pseudonym="p-crisis", in_crisis=True, risk_signals={"crisis_self_harm": 1})
    await store.save_user(state)
    assert state.risk_level == "crisis"

    # A turn that began before the crisis (its state says not in crisis) cannot clear it.
    stale = UserState(pseudonym="p-crisis", risk_signals={"crisis_self_harm": 1, "deny": 0})
    await store.save_user(stale)
    assert stale.in_crisis is True
    assert stale.risk_level == "crisis"

    reopened = Store(Database(store.database.url))
    await reopened.start()
    try:
        after_restart = await reopened.load_user("p-crisis")
    finally:
        await reopened.close()
    assert after_restart.in_crisis is True
    assert after_restart.risk_level == "crisis"
    assert after_restart.risk_reasons == ["crisis intent (self-harm) x1"]


async def test_one_alert_per_event_until_a_moderator_resolves_it(store: Store) -> None:
    escalations = EscalationStore(store.database)
    await store.load_user("p-alert")
    first = await escalations.raise_alert("p-alert", CRISIS, "crisis", ["crisis intent x1"])
    assert first is not None
    assert (first.kind, first.severity, first.status) == ("crisis", "crisis", "open")
    assert await escalations.raise_alert("p-alert", CRISIS, "crisis", ["again"]) is None
    assert await escalations.raise_alert("nobody", CRISIS, "crisis", []) is None

    assert await escalations.acknowledge(first.id, "mod-a")
    assert not await escalations.acknowledge(first.id, "mod-b"), "acknowledged once"
    assert await escalations.raise_alert("p-alert", CRISIS, "crisis", []) is None
    assert await escalations.resolve(first.id, "mod-b")
    assert not await escalations.resolve(first.id, "mod-b")
    resolved = await escalations.alert(first.id)
    assert resolved is not None
    assert (resolved.status, resolved.acknowledged_by, resolved.resolved_by) == (
        "resolved",
        "mod-a",
        "mod-b",
    )
    second = await escalations.raise_alert("p-alert", CRISIS, "crisis", ["a new crisis"])
    assert second is not None and second.id != first.id


async def test_a_crisis_message_whose_alert_is_open_already_commits_nothing(
    store: Store,
) -> None:
    """Every crisis turn asks for an alert; only the first of the event writes one."""
    escalations = EscalationStore(store.database)
    await store.load_user("p-quiet")
    with counting_commits(store.database) as counted:
        assert await escalations.raise_alert("p-quiet", CRISIS, "crisis", ["first"]) is not None
        for _ in range(3):
            assert await escalations.raise_alert("p-quiet", CRISIS, "crisis", ["again"]) is None
        assert await escalations.raise_alert("p-quiet", HIGH_RISK, "high", []) is not None
    assert counted.commits == 2
    assert len(await escalations.alerts_for("p-quiet")) == 2


async def test_the_queue_puts_crisis_first_then_high_then_requests(store: Store) -> None:
    escalations = EscalationStore(store.database)
    for pseudonym in ("p-request", "p-high", "p-crisis", "p-done"):
        await store.load_user(pseudonym)
    await escalations.raise_alert("p-request", HUMAN_REQUEST, "request", [])
    await escalations.raise_alert("p-high", HIGH_RISK, "high", [])
    await escalations.raise_alert("p-crisis", CRISIS, "crisis", [])
    done = await escalations.raise_alert("p-done", CRISIS, "crisis", [])
    assert done is not None
    await escalations.resolve(done.id, "mod")
    queue = await escalations.queue()
    assert [a.pseudonym for a in queue] == ["p-crisis", "p-high", "p-request"]
    assert "text" not in queue[0].as_json()

    escalated = await escalations.escalate_request("p-request", "nobody answered in time")
    assert escalated is not None
    assert (escalated.severity, escalated.reasons) == ("high", ("nobody answered in time",))
    # Now high too, and it has waited longer than the other high one.
    assert [a.pseudonym for a in await escalations.queue()] == ["p-crisis", "p-request", "p-high"]


async def test_an_unanswered_request_is_released_once_however_many_look(store: Store) -> None:
    escalations = EscalationStore(store.database)
    await store.load_user("p-wait")
    assert await escalations.request_person("p-wait")
    assert not await escalations.request_person("p-wait"), "already waiting"
    assert await escalations.release_unanswered(utcnow() - timedelta(minutes=5)) == []
    results = await asyncio.gather(
        *(escalations.release_unanswered(utcnow() + timedelta(seconds=1)) for _ in range(5))
    )
    assert sorted(len(r) for r in results) == [0, 0, 0, 0, 1]
    control = await escalations.control("p-wait")
    assert control is not None and control.handling == "bot"


async def test_takeover_and_hand_back_change_who_answers(store: Store) -> None:
    escalations = EscalationStore(store.database)
    await store.load_user("p-take")
    assert await escalations.take_over("p-take", "mod-a")
    assert not await escalations.take_over("p-take", "mod-a")
    assert await escalations.take_over("p-take", "mod-b"), "another moderator can take it"
    control = await escalations.control("p-take")
    assert control is not None
    assert (control.handling, control.handled_by) == ("person", "mod-b")
    assert not await escalations.request_person("p-take"), "a person is already there"
    assert await escalations.hand_back("p-take")
    assert not await escalations.hand_back("p-take")
    control = await escalations.control("p-take")
    assert control is not None
    assert (control.handling, control.handled_by, control.handling_since) == ("bot", None, None)


async def test_only_closing_crisis_lowers_the_level(store: Store) -> None:
    escalations = EscalationStore(store.database)
    state = UserState(pseudonym="p-close", in_crisis=True, risk_signals={"crisis_violence": 2})
    await store.save_user(state)
    assert await escalations.close_crisis("p-close")
    assert not await escalations.close_crisis("p-close")
    closed = await store.load_user("p-close")
    assert (closed.in_crisis, closed.risk_level) == (False, "elevated")
    assert closed.risk_reasons == [
        "earlier crisis, closed by a moderator",
        "crisis intent (violence) x2",
    ]


async def test_the_contact_is_stored_sealed_once_and_deleted_by_forget(store: Store) -> None:
    sealer = ContactSealer("k" * 40)
    chat_id = 7_700_123_456
    state = await store.load_user("p-contact")
    old_key = ContactSealer("o" * 40)
    await store.save_user(state, contact=old_key.seal(chat_id))
    await store.save_user(state)  # a turn without a contact (the terminal chat) keeps it
    assert await EscalationStore(store.database).contact_of("p-contact") is not None
    await store.save_user(state, contact=sealer.seal(chat_id))  # after CONTACT_SECRET rotated
    escalations = EscalationStore(store.database)
    await escalations.raise_alert("p-contact", CRISIS, "crisis", [])
    sealed = await escalations.contact_of("p-contact")
    assert sealed is not None and str(chat_id) not in sealed
    assert sealer.open(sealed) == chat_id
    with pytest.raises(ContactUnreadable):
        ContactSealer("z" * 40).open(sealed)

    await store.forget_user("p-contact")
    assert await escalations.contact_of("p-contact") is None
    async with store.database.session() as session:
        assert await session.scalar(select(func.count()).select_from(Alert)) == 0


async def test_a_turn_start_counts_the_users_recent_incoming_messages(store: Store) -> None:
    async def status() -> str:
        start = await store.begin_turn("p-flood", flood_window_seconds=60)
        # The message being answered is not stored yet when the turn starts: + 1.
        return flood_status(start.recent_incoming + 1, start.cooldown_noted, limit=3)

    for number in range(2):
        await store.record_message("p-flood", direction="in", kind="text", text=f"m{number}")
    await store.record_message("p-flood", direction="out", kind="fallback", text="hm?")
    assert await status() == CALM, "three incoming messages, the limit: still calm"
    await store.record_message("p-flood", direction="in", kind="text", text="m2")
    assert await status() == FLOOD_FIRST
    await store.record_message("p-flood", direction="out", kind=COOLDOWN, text="pause")
    assert await status() == FLOOD_AGAIN
    other = await store.begin_turn("p-other", flood_window_seconds=60)
    assert (other.recent_incoming, other.cooldown_noted) == (0, False)


async def test_a_turn_start_forgets_messages_older_than_the_flood_window(store: Store) -> None:
    long_ago = utcnow() - timedelta(seconds=120)
    for number in range(5):
        await store.record_message(
            "p-old", direction="in", kind="text", text=f"m{number}", created_at=long_ago
        )
    await store.record_message(
        "p-old", direction="out", kind=COOLDOWN, created_at=long_ago, text="x"
    )
    await store.record_message("p-old", direction="in", kind="text", text="now")
    start = await store.begin_turn("p-old", flood_window_seconds=60)
    assert (start.recent_incoming, start.cooldown_noted) == (1, False)


async def test_the_bots_store_hands_back_the_level_the_database_derived(
    store: Store, tmp_path: Path
) -> None:
    """The turn's alerts read the saved state: the resilient store must fill it in too."""
    resilient = resilient_store(store.database, make_settings(tmp_path))
    await resilient.save_user(UserState(pseudonym="p-res", in_crisis=True))
    state = UserState(pseudonym="p-res", risk_signals={"interest_joining": 3})
    await resilient.save_user(state)
    assert state.in_crisis is True, "crisis state as stored, not as the turn loaded it"
    assert (state.risk_level, state.risk_reasons) == (
        "crisis",
        ["in crisis state", "interest_joining x3"],
    )
