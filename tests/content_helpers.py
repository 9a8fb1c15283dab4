"""Shared by the content tests: a valid new testimony, and serving it to a user first."""

from __future__ import annotations

from typing import Any

from bot.storage.pseudonym import pseudonymise
from tests.conftest import RunningBot

CLAIM = "claim_protects_muslims"
CLAIM_MESSAGE = "the khilafah is the only place where muslims are safe"
"""A message the model reads as `CLAIM` (the Telegram tests rely on it too)."""


def new_testimony(text: str = "They said they protected us. They did not.") -> dict[str, Any]:
    """The fields of a valid quote answering `CLAIM`, as the editor's form sends them."""
    return {
        "form": "quote",
        "text": text,
        "claims": [CLAIM],
        "speaker": "A woman who lived under the group in Mosul, interviewed after she left",
        "source": {
            "title": "Life after the caliphate",
            "publisher": "Example Press",
            "date": "2019-03",
            "url": "https://example.org/life-after",
        },
        "language": "en",
        "checked": "2026-11-25",
    }


async def mark_other_stories_seen(bot: RunningBot, user: int) -> None:
    """Make every approved story for `CLAIM` already shown to `user`, so the next
    counter-message for the claim can only use a story approved after this call."""
    pseudonym = pseudonymise(user, bot.settings.pseudonym_secret)
    state = await bot.store.load_user(pseudonym)
    state.shown_testimonies = [t.id for t in bot.library.current().approved_testimonies(CLAIM)]
    await bot.store.save_user(state)
