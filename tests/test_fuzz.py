"""Property tests: odd input never crashes the bot, every error is clear, nothing stored breaks.

Example counts are bounded so that the whole file runs in about a minute: these run in
`make test` on every change, and a failing example is shrunk and printed by hypothesis.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.content.loader import ContentError, load_library
from bot.conversation import clean_user_text
from bot.nlu.client import NLUClient
from bot.nlu.intents import CRISIS_INTENTS, RISK_INTENTS
from bot.nlu.understanding import Entity, IntentScore, Understanding
from bot.policy.decision import (
    CALM,
    FLOOD_AGAIN,
    FLOOD_FIRST,
    SAFETY_KINDS,
    SILENT,
    Button,
    Command,
    Message,
    NonText,
    decide,
)
from bot.policy.state import UserState
from bot.settings import PROJECT_ROOT, Settings, SettingsError
from tests.conftest import RunningBot

# Characters that break naive code: bidi controls, zero-width, NUL and other controls,
# combining marks, emoji with joiners, Arabic and Cyrillic letters.
ODD = (
    "\u202e\u202d\u200f\u200e\u200b\u200c\u200d\ufeff\x00\x07\x1b\r\t\n\u0301\u0651🏳️‍🌈مرحبا Привет"
)
odd_text = st.text(alphabet=st.one_of(st.sampled_from(ODD), st.characters(codec="utf-8")))


# -- update handling, end to end --------------------------------------------------------------


@pytest.mark.e2e
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    text=st.one_of(
        odd_text.filter(lambda t: t.strip() and not t.lstrip().startswith("/")),
        st.integers(4001, 5000).map(lambda n: ("\u200bسلام akhi \x00 " * 400)[:n]),
    )
)
async def test_any_text_is_answered_once_and_stored_clean(bot: RunningBot, text: str) -> None:
    user = bot.new_user()
    bot.emulator.push_text(user, text)
    messages = await bot.emulator.wait_for_messages(user, 1, timeout=30)
    stored = await bot.store.messages_for(bot.pseudonym(user))
    clean, cut = clean_user_text(text, bot.settings.max_message_chars)
    assert [(m.direction, m.text) for m in stored][:1] == [("in", clean)]
    assert [m.direction for m in stored] == ["in", "out"]
    assert stored[1].text == messages[0]["text"]
    assert messages[0]["text"].startswith(bot.library.current().reply("too_long")) == cut


json_leaf = st.one_of(st.none(), st.booleans(), st.integers(-(2**63), 2**63), st.floats(), odd_text)
UPDATE_KEYS = (
    "message", "edited_message", "callback_query", "from", "chat", "id", "text", "date",
    "message_id", "type", "data", "entities", "sticker", "photo", "is_bot", "first_name",
)  # fmt: skip
json_value = st.recursive(
    json_leaf,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.sampled_from(UPDATE_KEYS) | odd_text, inner, max_size=5),
    ),
    max_leaves=12,
)


@pytest.mark.e2e
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(update=st.dictionaries(st.sampled_from(UPDATE_KEYS[:3]) | odd_text, json_value, max_size=3))
async def test_a_malformed_update_never_stops_the_bot(
    bot: RunningBot, update: dict[str, Any]
) -> None:
    update.pop("update_id", None)
    bot.emulator.push_raw(update)
    user = bot.new_user()
    bot.emulator.push_text(user, "/help")
    messages = await bot.emulator.wait_for_messages(user, 1, timeout=30)
    assert "/forget" in messages[0]["text"]
    stored = await bot.store.messages_for(bot.pseudonym(user))
    assert [(m.direction, m.kind) for m in stored] == [("in", "command"), ("out", "help")]


# -- the NLU client and odd server answers ----------------------------------------------------


@contextlib.asynccontextmanager
async def nlu_answering(answers: list[tuple[int, Any]]) -> AsyncIterator[str]:
    """A misbehaving NLU server: each request gets the next (status, body) of `answers`."""

    async def parse(_: web.Request) -> web.StreamResponse:
        status, body = answers.pop(0) if answers else (200, {})
        if isinstance(body, bytes):
            return web.Response(status=status, body=body, content_type="application/json")
        return web.json_response(body, status=status)

    app = web.Application()
    app.router.add_post("/model/parse", parse)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


rasa_like = st.fixed_dictionaries(
    {},
    optional={
        "intent": st.one_of(
            json_value,
            st.fixed_dictionaries({}, optional={"name": json_value, "confidence": json_value}),
        ),
        "intent_ranking": st.one_of(json_value, st.lists(json_value, max_size=4)),
        "entities": st.one_of(json_value, st.lists(json_value, max_size=4)),
        "text": json_value,
    },
)


@settings(max_examples=60, deadline=None)
@given(
    status=st.sampled_from([200, 200, 200, 400, 404, 500, 503]),
    body=st.one_of(rasa_like, json_value, st.binary(max_size=40)),
    crisis=st.booleans(),
)
async def test_any_nlu_answer_gives_an_understanding_and_crisis_is_still_caught(
    status: int, body: Any, crisis: bool
) -> None:
    text = "i want to kill myself tonight" if crisis else "what is life like in raqqa"
    async with (
        nlu_answering([(status, body)]) as url,
        NLUClient(url, timeout_seconds=2) as client,
    ):
        understood = await client.understand(text)
    assert isinstance(understood, Understanding)
    assert understood.text == text
    assert understood.source in {"nlu", "safety_net", "unavailable", "crisis_floor", "risk_family"}
    if crisis:
        assert understood.is_crisis
    assert isinstance(understood.confidence, float)
    assert all(isinstance(s.name, str) for s in understood.ranking)


# -- the dialogue policy ----------------------------------------------------------------------

intents = st.one_of(
    st.none(),
    st.sampled_from(
        sorted(CRISIS_INTENTS | RISK_INTENTS | {"greet", "nlu_fallback", "ask_privacy"})
    ),
    odd_text,
)
states = st.builds(
    UserState,
    pseudonym=st.just("p"),
    country=st.one_of(st.none(), st.sampled_from(["SY", "IQ", "global"]), odd_text),
    in_crisis=st.booleans(),
    human_requested=st.booleans(),
    last_claim=st.one_of(st.none(), odd_text),
    last_reply_kind=st.one_of(st.none(), odd_text),
    shown_testimonies=st.lists(odd_text, max_size=3),
    risk_level=st.sampled_from(["none", "low", "elevated", "high", "crisis"]),
    handling=st.sampled_from(["bot", "waiting", "person"]),
    muted=st.booleans(),
)
understandings = st.builds(
    Understanding,
    text=odd_text,
    intent=intents,
    confidence=st.floats(0, 1),
    ranking=st.lists(st.builds(IntentScore, odd_text, st.floats(0, 1)), max_size=3).map(tuple),
    entities=st.lists(st.builds(Entity, st.just("country"), odd_text), max_size=2).map(tuple),
)
events = st.one_of(
    st.builds(Message, understandings),
    st.builds(Command, odd_text, st.one_of(st.none(), odd_text)),
    st.builds(Button, odd_text | st.sampled_from(["another_story", "help", "forget_yes"])),
    st.builds(NonText, odd_text),
)


@settings(max_examples=400, deadline=None)
@given(event=events, state=states, flood=st.sampled_from([CALM, FLOOD_FIRST, FLOOD_AGAIN]))
def test_the_policy_decides_for_any_event_and_crisis_always_wins(
    event: Message | Command | Button | NonText, state: UserState, flood: str
) -> None:
    plan = decide(event, state, flood)
    assert isinstance(plan.kind, str) and plan.kind
    if isinstance(event, Message) and event.understanding.intent in CRISIS_INTENTS:
        # A person from the team who took the conversation over answers it (alerted by
        # the crisis flag); otherwise the bot's safety reply, whatever else is true.
        if state.handling == "person":
            assert plan.kind in SAFETY_KINDS | {SILENT}
        else:
            assert plan.kind in SAFETY_KINDS
        assert "crisis" in plan.flags


# -- the content loader -----------------------------------------------------------------------

CONTENT = PROJECT_ROOT / "responses"
CONTENT_FILES = sorted(p.name for p in CONTENT.glob("*.yml"))


@settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    name=st.sampled_from(CONTENT_FILES),
    where=st.floats(0, 1),
    junk=st.one_of(
        st.sampled_from(["\t- : [", "key: 'open", "{{{{", ": :", "- &a *b", "\x00", "? ]"]),
        odd_text,
    ),
)
def test_broken_content_gives_a_content_error_naming_the_file(
    tmp_path_factory: pytest.TempPathFactory, name: str, where: float, junk: str
) -> None:
    directory = tmp_path_factory.mktemp("content")
    shutil.copytree(CONTENT, directory, dirs_exist_ok=True)
    path = directory / name
    lines = path.read_text(encoding="utf-8").splitlines()
    at = int(where * len(lines))
    path.write_text("\n".join([*lines[:at], junk, *lines[at:]]) + "\n", encoding="utf-8")
    problems: list[str] = []
    try:
        load_library(directory)
    except ContentError as error:
        problems = error.problems
        assert problems, "a ContentError lists its problems"
    assert all(str(directory) in p or p.startswith(name) for p in problems), problems
    if problems:
        assert any(name in p for p in problems), problems


# -- settings ---------------------------------------------------------------------------------

NUMERIC = [
    "RETENTION_DAYS", "NLU_TIMEOUT_SECONDS", "NLU_PORT", "MAX_MESSAGE_CHARS",
    "CONCURRENT_UPDATES", "WRITE_BUFFER_MAX_BYTES", "WRITE_BUFFER_RETRY_SECONDS",
    "TELEGRAM_TIMEOUT_SECONDS", "CRISIS_CONFIDENCE_FLOOR", "LOG_LEVEL", "DATABASE_URL",
    "TELEGRAM_API_BASE_URL", "BOT_MODE", "LISTEN_PORT", "FLOOD_MAX_MESSAGES",
]  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(
    name=st.sampled_from(NUMERIC),
    value=st.one_of(odd_text, st.from_regex(r"-?\d{1,6}(\.\d*)?", fullmatch=True)),
)
def test_any_setting_value_is_taken_or_refused_naming_the_variable(name: str, value: str) -> None:
    environ = {"DATA_DIR": "/tmp/unused-fuzz", name: value}
    message = ""
    try:
        Settings.from_env(environ)
    except SettingsError as error:
        message = str(error)
    assert not message or name in message
