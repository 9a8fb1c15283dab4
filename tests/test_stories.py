"""Replays every conversation script in `stories/` end to end, on SQLite and PostgreSQL.

Each step goes from the Bot API emulator through python-telegram-bot, the real Rasa server,
the policy and the content library to a reply at the emulator and rows in the database; the
step's `expect` is checked against both.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.settings import PROJECT_ROOT
from tests.conftest import RunningBot

STORIES = sorted((PROJECT_ROOT / "stories").glob("*.yml"))
KNOWN_STEP_KEYS = {"send", "press", "send_sticker", "send_photo", "send_voice", "chat", "expect"}
KNOWN_EXPECT_KEYS = {
    "kind",
    "intent",
    "flags",
    "buttons",
    "text_contains",
    "testimony",
    "no_reply",
    "stored_messages",
    "campaign",
}


def load_story(path: Path) -> dict[str, Any]:
    story: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert story.get("story"), f"{path.name}: a story needs a one-line 'story' description"
    for number, step in enumerate(story["steps"], 1):
        unknown = set(step) - KNOWN_STEP_KEYS | set(step.get("expect", {})) - KNOWN_EXPECT_KEYS
        assert not unknown, f"{path.name} step {number}: unknown keys {unknown}"
    return story


def test_there_are_at_least_fifteen_stories() -> None:
    assert len(STORIES) >= 15
    for path in STORIES:
        load_story(path)


def _button_ids(message: dict[str, Any]) -> list[str]:
    markup = message.get("reply_markup") or {}
    return [b["callback_data"] for row in markup.get("inline_keyboard", []) for b in row]


def _matches(expected: str, actual: list[str]) -> bool:
    if expected.endswith("*"):
        return any(a.startswith(expected[:-1]) for a in actual)
    return expected in actual


class StoryPlayer:
    """Plays one story for one fresh user and checks every expectation."""

    def __init__(self, bot: RunningBot, name: str) -> None:
        self.bot = bot
        self.name = name
        self.user = bot.new_user()
        self.group_chat = -self.user
        self.last_message: dict[str, Any] | None = None
        self.testimonies_seen: set[str] = set()

    async def play(self, story: dict[str, Any]) -> None:
        for number, step in enumerate(story["steps"], 1):
            where = f"{self.name} step {number} ({step})"
            await self.step(step, where)

    async def step(self, step: dict[str, Any], where: str) -> None:
        emulator = self.bot.emulator
        in_group = step.get("chat") == "group"
        chat_id = self.group_chat if in_group else self.user
        before = len(emulator.sent_messages(chat_id))
        stored_before = len(await self.bot.store.messages_for(self.bot.pseudonym(self.user)))
        if "send" in step:
            if in_group:
                emulator.push_text(self.user, step["send"], chat_type="group", chat_id=chat_id)
            else:
                emulator.push_text(self.user, step["send"])
        elif "press" in step:
            # Users can press a button on any earlier message, so take the newest that has it.
            data = step["press"]
            carrying = [m for m in emulator.sent_messages(chat_id) if data in _button_ids(m)]
            assert carrying, f"{where}: no message so far has a button {data!r}"
            emulator.push_callback(self.user, data, carrying[-1]["message_id"])
        elif step.get("send_sticker"):
            emulator.push_sticker(self.user)
        elif step.get("send_photo"):
            emulator.push_photo(self.user)
        elif step.get("send_voice"):
            emulator.push_voice(self.user)
        expect: dict[str, Any] = step.get("expect", {})
        if expect.get("no_reply"):
            # The bot has handled the update once the emulator stops hearing from it.
            await emulator.wait_for_quiet(quiet=1.0, timeout=20)
            assert len(emulator.sent_messages(chat_id)) == before, f"{where}: unexpected reply"
        else:
            messages = await emulator.wait_for_messages(chat_id, before + 1, timeout=20)
            self.last_message = messages[-1]
        await self.check(expect, where, stored_before, in_group)

    async def check(
        self, expect: dict[str, Any], where: str, stored_before: int, in_group: bool
    ) -> None:
        stored = await self.bot.store.messages_for(self.bot.pseudonym(self.user))
        new_rows = stored[stored_before:]
        incoming = [m for m in new_rows if m.direction == "in"]
        outgoing = [m for m in new_rows if m.direction == "out"]
        library = self.bot.library.current()
        text = (self.last_message or {}).get("text", "")
        if "stored_messages" in expect:
            assert len(stored) == expect["stored_messages"], f"{where}: {len(stored)} rows stored"
        if "kind" in expect:
            kind = expect["kind"]
            if kind in ("forget_done", "group_chat"):  # nothing is stored for these
                assert text == library.reply(kind), f"{where}: got {text!r}"
            else:
                assert outgoing, f"{where}: no reply stored"
                assert outgoing[-1].kind == kind, f"{where}: reply kind {outgoing[-1].kind}"
        if "intent" in expect:
            assert incoming, f"{where}: no incoming message stored"
            assert incoming[-1].intent == expect["intent"], (
                f"{where}: understood as {incoming[-1].intent} ({incoming[-1].confidence:.2f})"
            )
        if "flags" in expect:
            flags = set(outgoing[-1].flags) if outgoing else set()
            assert flags == set(expect["flags"]), f"{where}: flags {flags}"
        if "buttons" in expect:
            ids = _button_ids(self.last_message or {})
            for wanted in expect["buttons"]:
                assert _matches(wanted, ids), f"{where}: button {wanted} not in {ids}"
        for fragment in expect.get("text_contains", []):
            assert fragment.casefold() in text.casefold(), f"{where}: {fragment!r} not in {text!r}"
        if "testimony" in expect:
            used = [i for m in outgoing for i in m.content_ids]
            testimonies = {t.id for t in library.testimonies}
            sent = [i for i in used if i in testimonies]
            assert sent, f"{where}: no testimony sent"
            testimony = next(t for t in library.testimonies if t.id == sent[0])
            assert testimony.status == "approved", f"{where}: unapproved {testimony.id} sent"
            assert testimony.source.url in text, f"{where}: the source is not shown"
            if expect["testimony"] == "new":
                assert sent[0] not in self.testimonies_seen, f"{where}: {sent[0]} repeated"
            self.testimonies_seen.add(sent[0])
        if "campaign" in expect:
            state = await self.bot.store.load_user(self.bot.pseudonym(self.user))
            assert state.campaign == expect["campaign"]


@pytest.mark.e2e
@pytest.mark.parametrize("path", STORIES, ids=[p.stem for p in STORIES])
async def test_story_plays_end_to_end(bot: RunningBot, path: Path) -> None:
    await StoryPlayer(bot, path.name).play(load_story(path))
