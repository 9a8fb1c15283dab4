"""Invented conversations for trying the dashboard and for measuring it at scale.

`python -m bot db seed-demo --users N` fills an EMPTY database (it refuses one that has
users) with N made-up conversations over the last 30 days: a realistic share of crisis and
risk, campaigns, buttons pressed after a testimony, low-confidence messages. Pseudonyms are
random, texts come from the fixed phrases below: nothing is anybody's.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, insert, select

from bot.nlu.intents import FALLBACK_INTENT
from bot.nlu.understanding import Understanding
from bot.safety.risk import assess, record_signals
from bot.storage.database import Database
from bot.storage.models import Base, User

DEMO_MODEL = "nlu-demo.tar.gz"
CAMPAIGNS = ("school_talk", "youtube_ad", "forum_post")

# (intent, text, confidence). A few per intent are enough for a dashboard to look lived in.
PHRASES: dict[str, tuple[tuple[str, float], ...]] = {
    "greet": (("hi", 0.98), ("salam, who is this", 0.91)),
    "claim_protects_muslims": (
        ("the dawla is the only one protecting the sunnis", 0.93),
        ("who else defends muslims in syria? only them", 0.71),
    ),
    "claim_good_life": (
        ("they say you get a house and a wife over there", 0.88),
        ("life in the caliphate looks better than here honestly", 0.64),
    ),
    "claim_religious_duty": (("hijrah is a duty for every muslim", 0.9),),
    "interest_joining": (
        ("how do i get to them, i want to go", 0.95),
        ("i am thinking about making hijrah to them", 0.83),
    ),
    "sympathy_general": (("honestly i kind of respect what they stand for", 0.58),),
    "crisis_self_harm": (("i don't want to be alive anymore", 0.97),),
    "crisis_violence": (("sometimes i want to hurt the people at school", 0.9),),
    "question_defectors": (("why should i believe people who left", 0.86),),
    "ask_help_leaving": (("my brother is in contact with them, who can help us", 0.89),),
    "oppose_extremism": (("those people have nothing to do with islam", 0.92),),
    "benign_religious": (("what time is fajr prayer", 0.87),),
    "thanks": (("thanks, that was interesting", 0.96),),
    FALLBACK_INTENT: (("idk man whatever", 0.31), ("the brothers at the place said so", 0.42)),
}
# What the bot "said" in the demo: short stand-ins for the library's texts.
REPLIES: dict[str, str] = {
    "counter_message": (
        "Someone who was there and left said: “They promised us brotherhood; what we found "
        "was fear.” (a testimony, with its source) What do you make of that?"
    ),
    "safety_self_harm": (
        "I'm a bot, but I want you to be safe. Are you safe right now? You can call a crisis "
        "line any time, or talk to a person from our team."
    ),
    "fallback": "Sorry, I didn't get that. Could you say it another way?",
    "greet": "Hi! I'm a bot from the Defector Voices team.",
    "question_defectors": "Fair question. These are people who were there: here is who they are.",
    "ask_help_leaving": "You are not alone with this. Which country are you in?",
}
_RISK = ("claim_protects_muslims", "claim_good_life", "claim_religious_duty", "interest_joining")


def _pseudonym(rng: random.Random) -> str:
    return hashlib.sha256(rng.randbytes(16)).hexdigest()


def _ranking(intent: str, confidence: float, rng: random.Random) -> list[dict[str, Any]]:
    others = [i for i in PHRASES if i not in (intent, FALLBACK_INTENT)]
    rest = 1.0 - confidence
    ranking = [{"name": intent, "confidence": round(confidence, 4)}]
    for name in rng.sample(others, 3):
        share = round(rest * rng.uniform(0.3, 0.6), 4)
        rest -= share
        ranking.append({"name": name, "confidence": share})
    return ranking


def _conversation(
    rng: random.Random, user_id: int, start: datetime, testimonies: Mapping[str, Sequence[str]]
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The messages of one invented user, and the user's flags."""
    roll = rng.random()
    if roll < 0.03:
        script = ["greet", rng.choice(("crisis_self_harm", "crisis_violence"))]
    elif roll < 0.05:
        script = ["interest_joining", "button", "interest_joining", "interest_joining"]
    elif roll < 0.25:
        script = [rng.choice(_RISK), "button", rng.choice((*_RISK, "sympathy_general"))]
    elif roll < 0.35:
        script = [FALLBACK_INTENT, "question_defectors"]
    else:
        script = [rng.choice(("greet", "benign_religious", "oppose_extremism", "thanks"))]
    if rng.random() < 0.3:
        script.append(rng.choice(("thanks", "ask_help_leaving", FALLBACK_INTENT)))
    now = start
    messages: list[dict[str, Any]] = []
    flags = {"crisis_flag": False, "risk_flag": False, "human_requested": False}
    last_sent: list[str] = []
    signals: dict[str, int] = {}
    for step in script:
        now += timedelta(seconds=rng.randint(20, 600))
        base = {"user_id": user_id, "created_at": now, "is_test": False, "entities": []}
        if step == "button":
            data = rng.choice(("another_story", "help", "human", "another_story"))
            messages.append(
                {
                    **base,
                    "direction": "in",
                    "kind": "callback",
                    "text": data,
                    "ranking": [],
                    "content_ids": [],
                    "flags": [],
                    "intent": None,
                    "confidence": None,
                    "intent_source": None,
                    "model": None,
                }
            )
            flags["human_requested"] |= data == "human"
            reply_kind, content = "counter_message", last_sent
        else:
            text, confidence = rng.choice(PHRASES[step])
            signals = record_signals(signals, Understanding(text, step, confidence))
            flag = (
                ["crisis"]
                if step.startswith("crisis")
                else ["risk"]
                if step in (*_RISK, "sympathy_general")
                else []
            )
            flags["crisis_flag"] |= flag == ["crisis"]
            flags["risk_flag"] |= flag == ["risk"]
            messages.append(
                {
                    **base,
                    "direction": "in",
                    "kind": "text",
                    "text": text,
                    "intent": step,
                    "confidence": confidence,
                    "ranking": _ranking(step, confidence, rng),
                    "intent_source": "nlu",
                    "model": DEMO_MODEL,
                    "content_ids": [],
                    "flags": flag,
                }
            )
            reply_kind = {"crisis": "safety_self_harm", "risk": "counter_message"}.get(
                flag[0] if flag else "", "fallback" if step == FALLBACK_INTENT else step
            )
            content = []
            if reply_kind == "counter_message":
                claim = step if step in testimonies else "interest_joining"
                content = [rng.choice(testimonies[claim])] if testimonies.get(claim) else []
            last_sent = content
        now += timedelta(seconds=1)
        messages.append(
            {
                "user_id": user_id,
                "created_at": now,
                "is_test": False,
                "entities": [],
                "direction": "out",
                "kind": reply_kind,
                "text": f"[demo reply: {reply_kind}]",
                "intent": None,
                "confidence": None,
                "ranking": [],
                "intent_source": None,
                "model": None,
                "content_ids": content,
                "flags": [],
            }
        )
    assessment = assess(signals, in_crisis=flags["crisis_flag"])
    return messages, {
        **flags,
        "last_seen_at": now,
        "in_crisis": flags["crisis_flag"],
        "risk_signals": signals,
        "risk_level": assessment.level,
        "risk_reasons": list(assessment.reasons),
        "handling": "waiting" if flags["human_requested"] else "bot",
        "muted": False,
    }


async def seed_demo(
    database: Database,
    users: int,
    testimonies: Mapping[str, Sequence[str]],
    *,
    days: int = 30,
    seed: int = 7,
    batch: int = 2000,
) -> int:
    """Add `users` invented conversations; returns the number of messages written.

    Refuses (ValueError) a database that has users already: demo data must never mix with
    real conversations.
    """
    async with database.session() as session:
        if (await session.scalar(select(func.count()).select_from(User))) or 0:
            raise ValueError("the database already has users; seed-demo needs an empty one")
    rng = random.Random(seed)
    now = datetime.now(UTC)
    written = 0
    next_id = 1
    for first in range(0, users, batch):
        user_rows: list[dict[str, Any]] = []
        message_rows: list[dict[str, Any]] = []
        for _ in range(min(batch, users - first)):
            start = now - timedelta(days=days) + timedelta(seconds=rng.randint(0, days * 86400))
            start = min(start, now - timedelta(hours=1))
            messages, flags = _conversation(rng, next_id, start, testimonies)
            user_rows.append(
                {
                    "id": next_id,
                    "pseudonym": _pseudonym(rng),
                    "created_at": start,
                    "country": rng.choice((None, "DE", "FR", "GB", "SE", "BE")),
                    "campaign": rng.choice((None, None, *CAMPAIGNS)),
                    "in_crisis": flags["crisis_flag"],
                    "last_claim": None,
                    "last_reply_kind": messages[-1]["kind"],
                    "shown_testimonies": [],
                    **flags,
                }
            )
            message_rows.extend(messages)
            next_id += 1
        async with database.session() as session, session.begin():
            # Core executemany: one round trip per batch (the ORM's bulk path is per row here).
            await session.execute(insert(Base.metadata.tables["users"]), user_rows)
            await session.execute(insert(Base.metadata.tables["messages"]), message_rows)
        written += len(message_rows)
    if database.dialect == "postgresql":
        async with database.engine.connect() as connection:
            connection = await connection.execution_options(isolation_level="AUTOCOMMIT")
            # The ids above were given explicitly: move the sequence past them.
            await connection.exec_driver_sql(
                "SELECT setval(pg_get_serial_sequence('users', 'id'), max(id)) FROM users"
            )
            await connection.exec_driver_sql("ANALYZE users, messages")
    return written
