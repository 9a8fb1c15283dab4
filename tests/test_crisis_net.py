"""The deterministic crisis safety net: explicit crisis phrasing caught, hyperbole left alone."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.nlu.client import apply_crisis_floor
from bot.nlu.understanding import IntentScore, Understanding
from bot.safety.crisis_net import detect_crisis, normalise


@pytest.mark.parametrize(
    "text",
    [
        "i want to kill myself",
        "I'm going to end it all tonight",
        "honestly i just want to die",
        "everyone would be better off without me",
        "thinking about suicide again",
        "i keep cutting myself",
        "kms",
        "i dont want to live anymore",
        "no reason to live",
        "I WANT TO KILL MYSELF",
        "i want to k\u200bill myself",
        "ｉ ｗａｎｔ ｔｏ ｄｉｅ",
        "been giving away all my things lately",
        "i wrote goodbye letters",
        "it would be better if i was gone",
        "i wont be here much longer",
        # published warning signs (988 Lifeline, Samaritans, WHO) and filter-dodging slang
        "i'm such a burden to everyone",
        "everyone would be happier without me",
        "i hope i dont wake up tomorrow",
        "i dont wanna live",
        "so tired of being alive",
        "no strength left to live",
        "i wanna unalive",
        "sewer slide",
        "if you dont hear from me again, im sorry",
        "i swallowed too many tablets",
        "took a bunch of my dads sleeping tablets",
        "i think i overdosed",
        "i want to die of this pain",
        "that movie was so bad i wanted to die lol",  # hyperbole or a mask: crisis comes first
        "i want to die of embarrassment lol but honestly i want to die",
        "i want to die, my hair is falling out and nothing helps",
        "i wanna die my hair is falling out and everything is wrong",
        "gonna die my hair pink lol. honestly i want to die",
        # farewells and imagining oneself gone
        "this is the last message i'll ever send",
        "this is the last message i will send forever",
        "tell my mum i love her, thats all",
        "if i was gone my family would finally have some peace",
        "maybe if im dead it will all stop",
    ],
)
def test_explicit_self_harm_is_caught(text: str) -> None:
    found = detect_crisis(text)
    assert found is not None and found.intent == "crisis_self_harm"


@pytest.mark.parametrize(
    "text",
    [
        "im going to kill people at school",
        "i want to hurt them all",
        "I'm gonna attack the kuffar",
        "i will shoot everyone",
        "imma hurt whoever did this",
        "they will all pay for what they did to us",
        "i keep imagining them all bleeding",
        "i want them all dead",
        "im gonna put him in hospital",
        "im going to get my revenge on all of them",
        "they will pay with their blood",
        "the lot of them better watch their backs after what they said",
        # "leakage": a warning to stay away, fame after the act, "watch the news"
        "dont come to school tomorrow. trust me",
        "stay away from the mosque on friday, i'm serious",
        "dont come to school tomorrow trust me they will all see",
        "they will remember my name after what i do",
        "watch the news on monday, i was not joking",
    ],
)
def test_explicit_violence_is_caught(text: str) -> None:
    found = detect_crisis(text)
    assert found is not None and found.intent == "crisis_violence"


@pytest.mark.parametrize(
    "text",
    [
        "this homework is killing me",
        "dying to see the new marvel movie",
        "kill the lights please",
        "my brother and i fight all the time",
        "what does the quran say about suicide bombers being haram",
        "jihad al nafs is the real jihad",
        "the dawla protects the sunnis",
        "shoot me a text when ur home",
        "gonna kill him in fifa tonight",
        "my parents will pay for it",
        "they pay for everything over there",
        "i cant go on holiday this year",
        "i hope i dont wake up late tomorrow",
        "im so tired of living in this city",
        "youtubers say unalive because of the algorithm",
        "took too many pictures at the beach",
        "the rapper died of an overdose",
        "i bought a gun in gta",
        "my dad got a gun licence for hunting",
        "i dont want to be a burden to my parents",
        "you better watch your back on that bike, the roads are icy",
        "literally want to die of embarrassment, i waved at a guy who wasnt waving at me",
        "i wanna die from laughter at this meme",
        "i want to die my hair blue but my mom said no",  # "dye", misspelt
        "bro i wanna die my hair blonde for summer",
        "this is the last message i'll send tonight, going to bed",
        "if i was gone for a week would you even miss me lol",
        "if im dead tired tomorrow blame the group chat",
        "dont come to class tomorrow, its cancelled",
        "skip the match on sunday, it's going to pour, trust me",
        "don't go to the mall on saturday, trust me, it's packed",
        "dont come to class tomorrow cause the heating is broken, trust me",
        "they'll remember my name after this season",
        "watch the news tonight, our school is on it",
        "that was the last text i sent him before he blocked me",
        "ok this is the last msg i'll send you about the party",
        "how do i tell my mom i love her without it being awkward",
        "tell my sister i love her dress",
        "if im gone when you get here just use the spare key",
        "if i'm dead just revive me",
        "avoid the canteen today trust me lol",
        "avoid the mall on black friday, trust me",
        "don't go to school tomorrow trust me you need a mental health day",
        "everyone's gonna remember my name after what i did at prom",
        "they'll remember my name after friday's talent show",
        "bro watch the news rn im not joking theres a tornado near us",
        "",
    ],
)
def test_everyday_language_is_not_a_crisis(text: str) -> None:
    assert detect_crisis(text) is None


@given(st.text(max_size=5000))
def test_any_text_is_handled_without_error(text: str) -> None:
    result = detect_crisis(text)
    assert result is None or result.intent in {"crisis_self_harm", "crisis_violence"}


def test_normalise_removes_zero_width_and_control_characters() -> None:
    assert normalise("Kill\u200b\x00 MY\u202eself") == "kill myself"


def _ranked(*scores: tuple[str, float]) -> Understanding:
    ranking = tuple(IntentScore(n, c) for n, c in scores)
    return Understanding("text", scores[0][0], scores[0][1], ranking=ranking)


def test_a_crisis_intent_above_the_floor_wins_over_the_top_intent() -> None:
    understood = _ranked(("ask_help_leaving", 0.6), ("crisis_violence", 0.3))
    floored = apply_crisis_floor(understood, 0.2)
    assert floored.intent == "crisis_violence"
    assert floored.source == "crisis_floor"
    assert floored.ranking == understood.ranking


def test_a_crisis_intent_below_the_floor_changes_nothing() -> None:
    understood = _ranked(("greet", 0.9), ("crisis_self_harm", 0.05))
    assert apply_crisis_floor(understood, 0.2) is understood
