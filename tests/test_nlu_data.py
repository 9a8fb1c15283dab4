"""The training data: the right intents, enough varied examples, no leaks from the test sets."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest
import yaml

from bot.nlu.evaluation import load_labelled
from bot.nlu.intents import ALL_INTENTS, CRISIS_INTENTS, RISK_INTENTS
from bot.settings import PROJECT_ROOT

ANNOTATION = re.compile(r"\[([^\]]+)\]\{[^}]*\}|\[([^\]]+)\]\([^)]*\)")


def plain(example: str) -> str:
    """An example without entity annotations, normalised for comparison."""
    text = ANNOTATION.sub(lambda m: m.group(1) or m.group(2), example)
    return " ".join(text.casefold().split())


def training_examples() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for path in sorted((PROJECT_ROOT / "nlu").glob("*.yml")):
        for block in yaml.safe_load(path.read_text(encoding="utf-8")).get("nlu", []):
            if "intent" in block:
                lines = [line.strip() for line in block["examples"].splitlines()]
                found.setdefault(block["intent"], []).extend(
                    line[2:].strip() for line in lines if line.startswith("- ")
                )
    return found


@pytest.fixture(scope="module")
def examples() -> dict[str, list[str]]:
    return training_examples()


def test_exactly_the_specified_intents_are_trained(examples: dict[str, list[str]]) -> None:
    assert set(examples) == ALL_INTENTS
    domain = yaml.safe_load((PROJECT_ROOT / "domain.yml").read_text())
    assert set(domain["intents"]) == ALL_INTENTS
    assert domain["entities"] == ["country"]


def test_every_intent_has_enough_examples(examples: dict[str, list[str]]) -> None:
    for intent, texts in examples.items():
        floor = 40 if intent in RISK_INTENTS | CRISIS_INTENTS else 20
        assert len(texts) >= floor, f"{intent}: {len(texts)} examples"


def test_no_example_is_labelled_twice(examples: dict[str, list[str]]) -> None:
    counts = Counter(plain(t) for texts in examples.values() for t in set(texts))
    assert [t for t, n in counts.items() if n > 1] == []


@pytest.mark.parametrize("name", ["data/nlu_heldout.yml", "dev/nlu_dev.yml"])
def test_no_evaluation_example_is_in_the_training_data(
    examples: dict[str, list[str]], name: str
) -> None:
    """Short phrases ("hi", "thanks", "i want to die") are typed alike by everyone and may
    coincide; a longer message in both would mean the sets were not written independently."""
    trained = {plain(t) for texts in examples.values() for t in texts}
    evaluated = load_labelled(Path(__file__).parent / name)
    leaked = [e.text for e in evaluated if plain(e.text) in trained and len(e.text.split()) > 4]
    assert leaked == []


def test_the_held_out_set_is_a_fair_test() -> None:
    heldout = load_labelled(Path(__file__).parent / "data" / "nlu_heldout.yml")
    assert {e.intent for e in heldout} == ALL_INTENTS
    assert sum(e.hard for e in heldout) >= len(heldout) / 4
    benign = [e for e in heldout if e.intent not in RISK_INTENTS | CRISIS_INTENTS]
    assert len(benign) >= 100


def test_country_annotations_use_iso_codes(examples: dict[str, list[str]]) -> None:
    values = re.findall(r'"entity":\s*"country",\s*"value":\s*"([^"]+)"', str(examples))
    assert values, "no annotated country examples"
    assert all(re.fullmatch(r"[A-Z]{2}", v) for v in values), values
