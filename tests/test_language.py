"""Telling English from other languages, measured on the held-out messages."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.nlu.evaluation import load_labelled
from bot.nlu.intents import CRISIS_INTENTS
from bot.nlu.language import looks_english

ROOT = Path(__file__).resolve().parents[1]
HELDOUT = ROOT / "tests" / "data" / "nlu_heldout.yml"
TAGALOG = ROOT / "reports" / "nlu" / "batch4_tagalog.yml"


@pytest.mark.parametrize(
    "text",
    [
        "bro the dawla look after the sunnis fr",
        "wallahi akhi im done w everything",
        "salam",
        "salaam alaykum wa rahmatullah",
        "ok",
        "",
        "!!!???",
        "kuffar kuffar kuffar",
    ],
)
def test_english_slang_and_short_messages_count_as_english(text: str) -> None:
    assert looks_english(text)


@pytest.mark.parametrize(
    "text",
    [
        "ano ang ginagawa mo ngayong gabi kapatid ko",
        "je veux partir rejoindre mes frères là-bas",
        "ich habe keine lust mehr auf dieses leben",
    ],
)
def test_whole_sentences_in_another_language_do_not(text: str) -> None:
    assert not looks_english(text)


def test_almost_no_english_held_out_message_is_taken_for_another_language() -> None:
    examples = load_labelled(HELDOUT)
    other = [e.text for e in examples if not looks_english(e.text)]
    assert len(other) / len(examples) <= 0.01, other


def test_most_tagalog_messages_and_their_crisis_messages_are_recognised() -> None:
    examples = load_labelled(TAGALOG)
    crisis = [e for e in examples if e.intent in CRISIS_INTENTS]
    assert sum(not looks_english(e.text) for e in examples) / len(examples) >= 0.75
    assert sum(not looks_english(e.text) for e in crisis) >= len(crisis) - 3
