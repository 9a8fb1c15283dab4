"""The messages simulated users send: what the story scripts and the development set say.

The held-out NLU set is never used here (it stays unseen by anything that tunes the bot).
Each text gets exactly one reply from the bot: group-chat steps, buttons, non-text messages
and /forget (which rewrites the tables) are left out, and so are requests for a person: after
one, the bot stays quiet until the team answers (README, "Escalation"), which a load test
cannot do. The load generator still copes with a user the bot stops answering.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from bot.settings import PROJECT_ROOT

STORIES = PROJECT_ROOT / "stories"
DEV_SET = PROJECT_ROOT / "tests" / "dev" / "nlu_dev.yml"
QUIET_AFTER = {"/forget", "/human"}
PERSON_INTENTS = {"request_human"}


def story_texts(directory: Path = STORIES) -> list[str]:
    texts: list[str] = []
    for path in sorted(directory.glob("*.yml")):
        story: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for step in story.get("steps") or []:
            text = step.get("send")
            if not isinstance(text, str) or step.get("chat", "private") != "private":
                continue
            if text.strip().split()[0] in QUIET_AFTER or _asks_for_person(step):
                continue
            texts.append(text)
    return texts


def dev_texts(path: Path = DEV_SET) -> list[str]:
    data: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    return [
        str(example["text"])
        for example in data.get("examples") or []
        if example.get("intent") not in PERSON_INTENTS
    ]


def _asks_for_person(step: dict[str, Any]) -> bool:
    expect = step.get("expect") or {}
    return expect.get("intent") in PERSON_INTENTS or expect.get("kind") == "human_requested"


def load_corpus() -> list[str]:
    """Story lines and development-set texts, in a fixed order."""
    return story_texts() + dev_texts()
