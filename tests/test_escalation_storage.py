"""Escalation state in the database, on SQLite and PostgreSQL: risk level, crisis, alerts."""

from __future__ import annotations

from bot.policy.state import UserState
from bot.storage import Database, Store


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
