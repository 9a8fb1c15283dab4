"""Escalation end to end: crisis replies and alerts, takeover, unanswered requests, floods.

The real bot (python-telegram-bot) against the Bot API emulator, the real Rasa server, and
real SQLite and PostgreSQL databases. The moderators' group is a chat of the emulator.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from bot.nlu.server import LocalNLUServer
from bot.storage.escalation import EscalationStore
from tests.conftest import BACKENDS, RunningBot, database_url_for, running_bot
from tests.emulator.factories import JSON

pytestmark = pytest.mark.e2e

MODERATORS = -100_777_000_111
"""The moderators' Telegram group in the emulator."""
ESCALATION = {"moderator_chat_id": MODERATORS, "dashboard_public_url": "https://dash.example"}


@pytest.fixture(scope="module", params=BACKENDS)
async def bot(
    request: pytest.FixtureRequest,
    nlu_server: LocalNLUServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[RunningBot]:
    """A bot with a moderators' group and a small flood limit, once per backend."""
    async with running_bot(
        request.param,
        tmp_path_factory.mktemp(f"escalation-{request.param}"),
        nlu_server,
        flood_max_messages=5,
        flood_window_seconds=20,
        **ESCALATION,
    ) as running:
        yield running


def alerts_about(bot: RunningBot, user: int) -> list[JSON]:
    """Messages in the moderators' group about this user (found by the short conversation id)."""
    short = bot.pseudonym(user)[:10]
    return [m for m in bot.emulator.sent_messages(MODERATORS) if short in m["text"]]


async def eventually(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.05)


async def say(bot: RunningBot, user: int, text: str) -> JSON:
    """Send `text` as `user` and return the bot's answer to it."""
    before = len(bot.emulator.sent_messages(user))
    bot.emulator.push_text(user, text)
    messages = await bot.emulator.wait_for_messages(user, before + 1, timeout=20)
    return messages[before]


async def say_unanswered(bot: RunningBot, user: int, text: str) -> None:
    """Send `text` as `user` and check the bot stays silent (the message is still stored)."""
    before = len(bot.emulator.sent_messages(user))
    stored = len(await bot.store.messages_for(bot.pseudonym(user)))
    bot.emulator.push_text(user, text)
    await bot.emulator.wait_for_quiet(quiet=1.0, timeout=20)
    assert len(bot.emulator.sent_messages(user)) == before
    messages = await bot.store.messages_for(bot.pseudonym(user))
    assert len(messages) == stored + 1
    assert (messages[-1].direction, messages[-1].text) == ("in", text)


async def test_a_crisis_message_gets_the_safety_reply_and_one_alert_without_the_users_words(
    bot: RunningBot,
) -> None:
    user = bot.new_user()
    words = "I want to kill myself, I can't go on"
    pushed = time.monotonic()
    reply = await say(bot, user, words)
    library = bot.library.current()
    assert reply["text"].startswith(library.reply("safety_self_harm")[:60])
    assert "112" in reply["text"]  # the emergency numbers, with no country known yet
    assert bot.emulator.buttons(reply) == [
        library.reply("button_safe_yes"),
        library.reply("button_safe_no"),
        library.reply("button_human"),
        library.reply("button_grounding"),
        library.reply("button_safety_plan"),
    ]
    await eventually(lambda: len(alerts_about(bot, user)) == 1)
    (alert,) = alerts_about(bot, user)
    posted = next(
        c.time
        for c in bot.emulator.calls_to("sendMessage")
        if c.params.get("chat_id") == MODERATORS and c.params.get("text") == alert["text"]
    )
    assert posted - pushed < 5.0, "the team hears of a crisis within seconds"
    answered = next(
        c.time
        for c in bot.emulator.calls_to("sendMessage")
        if c.params.get("chat_id") == user and c.params.get("text") == reply["text"]
    )
    assert answered - pushed < 5.0
    pseudonym = bot.pseudonym(user)
    assert alert["text"].startswith(library.reply("alert_heading_crisis"))
    assert f"https://dash.example/escalation/{pseudonym}" in alert["text"]
    assert "crisis intent (self-harm) x1" in alert["text"]
    for word in ("kill", "myself", "go on", str(user)):
        assert word not in alert["text"].replace(pseudonym, "")

    # A second message in the same crisis is answered, but it is the same event: no new alert.
    again = await say(bot, user, "I really want to die")
    assert "112" in again["text"]
    await bot.emulator.wait_for_quiet(quiet=1.0)
    assert len(alerts_about(bot, user)) == 1
    state = await bot.store.load_user(pseudonym)
    assert (state.in_crisis, state.risk_level) == (True, "crisis")
    queue = await EscalationStore(bot.store.database).queue()
    mine = [a for a in queue if a.pseudonym == pseudonym]
    assert [(a.kind, a.severity, a.status) for a in mine] == [("crisis", "crisis", "open")]
    assert mine[0].notified_at is not None


async def test_the_crisis_buttons_open_grounding_and_a_safety_plan_and_never_clear_crisis(
    bot: RunningBot,
) -> None:
    user = bot.new_user()
    library = bot.library.current()
    safety = await say(bot, user, "I want to end my life")
    for label, key in (
        ("button_grounding", "grounding"),
        ("button_safety_plan", "safety_plan"),
        ("button_safe_yes", "crisis_safe_yes"),
    ):
        before = len(bot.emulator.sent_messages(user))
        data = bot.emulator.callback_data(safety, library.reply(label))
        bot.emulator.push_callback(user, data, safety["message_id"])
        answer = (await bot.emulator.wait_for_messages(user, before + 1))[before]
        assert answer["text"].startswith(library.reply(key)[:50])
    state = await bot.store.load_user(bot.pseudonym(user))
    assert state.in_crisis, "saying 'I'm safe' once never ends crisis state"
    # Not a counter-message while in crisis state, whatever the topic.
    reply = await say(bot, user, "the dawla protects the muslims")
    assert reply["text"].startswith(library.reply("crisis_followup")[:40])


async def test_saying_not_safe_updates_the_alert_once(bot: RunningBot) -> None:
    user = bot.new_user()
    library = bot.library.current()
    safety = await say(bot, user, "I want to hurt myself")
    await eventually(lambda: len(alerts_about(bot, user)) == 1)
    before = len(bot.emulator.sent_messages(user))
    bot.emulator.push_callback(
        user,
        bot.emulator.callback_data(safety, library.reply("button_safe_no")),
        safety["message_id"],
    )
    answer = (await bot.emulator.wait_for_messages(user, before + 1))[before]
    assert answer["text"].startswith(library.reply("crisis_safe_no")[:40])
    await eventually(lambda: len(alerts_about(bot, user)) == 2)
    assert alerts_about(bot, user)[1]["text"].startswith(library.reply("alert_heading_not_safe"))


async def test_a_stated_plan_to_join_raises_one_high_risk_alert(bot: RunningBot) -> None:
    user = bot.new_user()
    await say(bot, user, "I want to join the dawla, I booked my flight to turkey next week")
    state = await bot.store.load_user(bot.pseudonym(user))
    assert state.risk_level == "high"
    assert "stated a plan or date" in state.risk_reasons
    await eventually(lambda: len(alerts_about(bot, user)) == 1)
    library = bot.library.current()
    assert alerts_about(bot, user)[0]["text"].startswith(library.reply("alert_heading_high_risk"))
    await say(bot, user, "how can i join the islamic state")
    await bot.emulator.wait_for_quiet(quiet=1.0)
    assert len(alerts_about(bot, user)) == 1, "still high: the same event"


async def test_takeover_silences_the_bot_delivers_the_moderators_message_and_hand_back_resumes(
    bot: RunningBot,
) -> None:
    user = bot.new_user()
    pseudonym = bot.pseudonym(user)
    library = bot.library.current()
    await say(bot, user, "hello")

    taken = await bot.escalation.take_over(pseudonym, "moderator-ana")
    assert taken.sent, taken.reason
    notice = bot.emulator.sent_messages(user)[-1]
    assert notice["text"] == library.reply("takeover_started", operator="the test team")

    await say_unanswered(bot, user, "the dawla protects the muslims")
    await say_unanswered(bot, user, "/help")

    sent = await bot.escalation.send_team_message(pseudonym, "moderator-ana", "Hi, how are you?")
    assert sent.sent, sent.reason
    delivered = bot.emulator.sent_messages(user)[-1]
    assert delivered["text"] == library.reply(
        "team_message", operator="the test team", text="Hi, how are you?"
    )
    assert "person in the team" in delivered["text"]

    back = await bot.escalation.hand_back(pseudonym, "moderator-ana")
    assert back.sent, back.reason
    assert bot.emulator.sent_messages(user)[-1]["text"] == library.reply("handed_back")
    reply = await say(bot, user, "the dawla protects the muslims")
    assert "“" in reply["text"] or "In summary" in reply["text"], "the bot answers again"

    kinds = [(m.direction, m.kind) for m in await bot.store.messages_for(pseudonym)]
    assert kinds == [
        ("in", "text"),
        ("out", "greet"),
        ("out", "takeover_started"),
        ("in", "text"),
        ("in", "command"),
        ("out", "team_message"),
        ("out", "handed_back"),
        ("in", "text"),
        ("out", "counter_message"),
    ]


async def test_a_muted_user_gets_no_reply_but_a_crisis_is_still_answered(bot: RunningBot) -> None:
    user = bot.new_user()
    pseudonym = bot.pseudonym(user)
    await say(bot, user, "hi")
    assert await bot.escalation.escalations.set_muted(pseudonym, True)
    await say_unanswered(bot, user, "you are all liars")
    reply = await say(bot, user, "I want to kill myself")
    assert reply["text"].startswith(bot.library.current().reply("safety_self_harm")[:40])


async def test_a_flood_gets_one_cooldown_note_and_everything_is_stored(bot: RunningBot) -> None:
    user = bot.new_user()
    for number in range(9):
        bot.emulator.push_text(user, f"hello {number}")
    await bot.emulator.wait_for_messages(user, 6, timeout=30)
    await bot.emulator.wait_for_quiet(quiet=1.5, timeout=30)
    texts = [m["text"] for m in bot.emulator.sent_messages(user)]
    cooldown = bot.library.current().reply("cooldown")
    assert texts.count(cooldown) == 1
    assert len(texts) == 6 and texts[5] == cooldown
    stored = await bot.store.messages_for(bot.pseudonym(user))
    assert [m.text for m in stored if m.direction == "in"] == [f"hello {n}" for n in range(9)]

    # A crisis in the middle of a flood is answered all the same.
    reply = await say(bot, user, "I want to end my life")
    assert "112" in reply["text"]


async def test_an_unanswered_request_for_a_person_gets_resources_and_is_escalated(
    nlu_server: LocalNLUServer, tmp_path: Path
) -> None:
    async with running_bot(
        "sqlite",
        tmp_path,
        nlu_server,
        human_request_timeout_seconds=2,
        escalation_check_seconds=0.2,
        **ESCALATION,
    ) as bot:
        await _unanswered_request_is_escalated(bot)


async def test_an_unanswered_request_is_escalated_on_postgresql(
    nlu_server: LocalNLUServer, tmp_path: Path
) -> None:
    async with running_bot(
        "postgresql",
        tmp_path,
        nlu_server,
        human_request_timeout_seconds=2,
        escalation_check_seconds=0.2,
        **ESCALATION,
    ) as bot:
        await _unanswered_request_is_escalated(bot)


async def _unanswered_request_is_escalated(bot: RunningBot) -> None:
    user = bot.new_user()
    pseudonym = bot.pseudonym(user)
    library = bot.library.current()
    await say(bot, user, "hello")
    requested = await say(bot, user, "/human")
    assert requested["text"] == library.reply(
        "human_requested", operator="the test team", wait="30 minutes"
    )
    await eventually(lambda: len(alerts_about(bot, user)) == 1)
    assert alerts_about(bot, user)[0]["text"].startswith(
        library.reply("alert_heading_human_request")
    )
    await say_unanswered(bot, user, "hello? is anyone there")

    # Nobody takes it: after the timeout the user gets resources and the team a reminder.
    messages = await bot.emulator.wait_for_messages(user, 3, timeout=15)
    unanswered = messages[2]["text"]
    assert unanswered.startswith(library.reply("human_unanswered"))
    assert "112" in unanswered and "findahelpline.com" in unanswered
    await eventually(lambda: len(alerts_about(bot, user)) == 2)
    assert alerts_about(bot, user)[1]["text"].startswith(library.reply("alert_heading_escalated"))
    queue = await EscalationStore(bot.store.database).queue()
    (request,) = [a for a in queue if a.pseudonym == pseudonym]
    assert (request.kind, request.severity, request.status) == ("human_request", "high", "open")
    assert request.escalated_at is not None
    assert "nobody answered in time" in request.reasons

    # The bot answers again, and a second sweep sends nothing more.
    assert await bot.escalation.sweep_unanswered() == 0
    reply = await say(bot, user, "hello")
    assert reply["text"] == library.reply("greet")


async def test_crisis_state_survives_a_restart_and_only_a_moderator_closes_it(
    nlu_server: LocalNLUServer, tmp_path: Path, backend: str
) -> None:
    async with database_url_for(backend, tmp_path) as url:
        user = 0
        async with running_bot(backend, tmp_path, nlu_server, database_url=url) as first:
            user = first.new_user()
            await say(first, user, "I want to kill myself")

        async with running_bot(backend, tmp_path, nlu_server, database_url=url) as second:
            # Telegram's update ids keep growing across restarts; a new emulator starts over.
            second.emulator.push_raw({"update_id": 200_000, "unknown_kind": {"x": 1}})
            library = second.library.current()
            pseudonym = second.pseudonym(user)
            denial = await say(second, user, "no I'm fine, forget it")
            assert denial["text"].startswith(library.reply("crisis_followup")[:40])
            state = await second.store.load_user(pseudonym)
            assert (state.in_crisis, state.risk_level) == (True, "crisis")

            assert await second.escalation.escalations.close_crisis(pseudonym)
            reply = await say(second, user, "the dawla protects the muslims")
            assert "“" in reply["text"] or "In summary" in reply["text"]
            state = await second.store.load_user(pseudonym)
            assert (state.in_crisis, state.risk_level) == (False, "elevated")


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    value: str = request.param
    return value
