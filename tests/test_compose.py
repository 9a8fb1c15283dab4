"""Composing replies from the real content library: sources shown, no story repeated early."""

from __future__ import annotations

import pytest

from bot.content.loader import load_library
from bot.content.model import Library
from bot.nlu.intents import CLAIM_INTENTS
from bot.policy.compose import ReplyContext, compose, render_testimony
from bot.policy.decision import ReplyPlan
from bot.policy.state import UserState
from bot.settings import PROJECT_ROOT

CONTEXT = ReplyContext(operator="the test team", retention_days=30)


@pytest.fixture(scope="module")
def library() -> Library:
    return load_library(PROJECT_ROOT / "responses")


def counter(claim: str) -> ReplyPlan:
    return ReplyPlan("counter_message", claim=claim, buttons=("another_story", "help", "human"))


@pytest.mark.parametrize("claim", sorted(CLAIM_INTENTS))
def test_no_testimony_repeats_until_all_for_the_claim_were_shown(
    library: Library, claim: str
) -> None:
    state = UserState("p")
    approved = {t.id for t in library.approved_testimonies(claim)}
    sent = [compose(counter(claim), state, library, CONTEXT).content_ids[0] for _ in approved]
    assert set(sent) == approved
    again = compose(counter(claim), state, library, CONTEXT)
    assert again.content_ids[0] in approved
    assert library.reply("stories_exhausted") in again.text


def test_quotes_are_in_quotation_marks_and_paraphrases_are_not(library: Library) -> None:
    for testimony in library.approved_testimonies():
        text = render_testimony(testimony, library)
        assert testimony.source.url in text
        assert testimony.speaker in text
        if testimony.form == "quote":
            assert f"“{testimony.text.strip()}”" in text
        else:
            assert "“" not in text.split("\n")[0]


def test_only_approved_testimonies_are_sent(library: Library) -> None:
    unapproved = {t.id for t in library.testimonies if t.status != "approved"}
    assert unapproved, "the shipped library should hold drafts to make this test meaningful"
    state = UserState("p")
    for claim in sorted(CLAIM_INTENTS) * 3:
        reply = compose(counter(claim), state, library, CONTEXT)
        assert not set(reply.content_ids) & unapproved


def test_welcome_names_the_operator_and_retention(library: Library) -> None:
    reply = compose(ReplyPlan("welcome"), UserState("p"), library, CONTEXT)
    assert "the test team" in reply.text
    assert "30 days" in reply.text


def test_resources_for_a_country_come_before_global_ones(library: Library) -> None:
    plan = ReplyPlan("resources", resource_kinds=("exit", "family"), country="DE")
    state = UserState("p")
    reply = compose(plan, state, library, CONTEXT)
    assert reply.content_ids
    countries = [next(r.country for r in library.resources if r.id == i) for i in reply.content_ids]
    assert countries[0] == "DE"
    assert countries == sorted(countries, key=lambda c: c == "global")
    assert state.country == "DE"


def test_safety_reply_always_lists_crisis_lines_even_without_a_country(library: Library) -> None:
    plan = ReplyPlan(
        "safety_self_harm", resource_kinds=("emergency", "crisis"), country=None, flags=("crisis",)
    )
    reply = compose(plan, UserState("p"), library, CONTEXT)
    kinds = {next(r.kind for r in library.resources if r.id == i) for i in reply.content_ids}
    assert kinds == {"emergency", "crisis"}
    assert reply.flags == ("crisis",)


def test_country_buttons_list_every_country_and_other(library: Library) -> None:
    plan = ReplyPlan("resources", ask_country=True, buttons=("country",))
    reply = compose(plan, UserState("p"), library, CONTEXT)
    data = [d for _label, d in reply.buttons]
    assert data[-1] == "country:other"
    assert {f"country:{c.code}" for c in library.countries} <= set(data)
