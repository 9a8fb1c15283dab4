"""A user's risk level, derived from what they said, with the reasons a moderator reads.

The level orders the moderators' inbox and decides when the team is alerted, so it must be
explainable: every level comes with the signals that produced it ("interest_joining x3",
"stated a plan or date"). Signals are counts kept on the user (`RiskSignals`), not a scan of
the transcript, so the level survives the retention sweep and is cheap to recompute when a
moderator closes a crisis.

Levels, highest first (first rule that matches wins):

| level | when |
|---|---|
| crisis | the user is in crisis state (a crisis intent; only a moderator closes it) |
| high | a plan or date stated in a risk message, or interest in joining 3 times or more |
| elevated | interest in joining once or more, 4+ risk messages, or a crisis a moderator closed |
| low | any risk message (a recruitment claim or sympathy) |
| none | nothing of the above |

This module is pure: no I/O, so every rule is a unit test (`tests/test_risk.py`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from bot.nlu.intents import CRISIS_INTENTS, RISK_INTENTS
from bot.nlu.understanding import Understanding

RISK_LEVELS: tuple[str, ...] = ("none", "low", "elevated", "high", "crisis")
"""From lowest to highest; `severity` gives the position."""

ALERT_LEVELS: frozenset[str] = frozenset({"high", "crisis"})
"""Reaching one of these levels alerts the moderators."""

PLAN = "plan_or_date"
"""The signal key counting risk messages that state a plan or a date."""

HIGH_INTEREST_COUNT = 3
ELEVATED_RISK_COUNT = 4

_DAYS = r"monday|tuesday|wednesday|thursday|friday|saturday|sunday"
_MONTHS = (
    r"jan(uary)?|feb(ruary)?|mar(ch)?|apr(il)?|may|june?|july?|aug(ust)?|"
    r"sep(t|tember)?|oct(ober)?|nov(ember)?|dec(ember)?"
)
_PLACES = (
    r"syria|sham|iraq|raqqa|mosul|idlib|turkey|the\s+border|"
    r"the\s+(caliphate|khilafah?|dawla|state)|dawla|khilafah?"
)
_PLAN_PATTERN = re.compile(
    rf"""
    \b(
        (booked|bought|buying|booking|got|getting|have|packed|packing)\s+
            (a\s+|my\s+|the\s+|our\s+)?(ticket|flight|passport|visa|bag)s?
      | (my|our|the)\s+(flight|ticket|bus|plane|train)\b
      | (leav(e|ing)|go(ing)?|gonna\s+go|travel(l?ing)?|fly(ing)?|head(ing)?|
         mov(e|ing)|cross(ing)?|get(ting)?|make\s+hijrah?)\s+
            (out\s+|over\s+)?(to|for|into)\s+({_PLACES})
      | (make|making|do|doing)\s+hijrah?\s+(soon|next|this|on|in|tomorrow|tonight)
      | (next|this)\s+(week|month|weekend|year|{_DAYS})
      | tomorrow | tonight
      | on\s+({_DAYS})
      | in\s+(\d+|a|one|two|three|four|five|six|a\s+few|few)\s+(days?|weeks?|months?)
      | \d{{1,2}}(st|nd|rd|th)?\s+(of\s+)?({_MONTHS})\b
      | ({_MONTHS})\s+\d{{1,2}}(st|nd|rd|th)?\b
      | \d{{1,2}}[./]\d{{1,2}}([./]\d{{2,4}})?
      | (someone|a\s+brother|a\s+contact|my\s+contact|they|he)\s+
            (will|is\s+going\s+to|gonna)\s+(take|get|meet|pick)\s+me
    )\b
    """,
    re.IGNORECASE | re.VERBOSE,
)


def states_plan_or_date(text: str) -> bool:
    """Whether `text` names a date, a time or a step towards travelling (a ticket, a route).

    Only counted for messages already understood as risk or crisis: "see you tomorrow" in a
    greeting is not a plan to join anything.
    """
    return _PLAN_PATTERN.search(text) is not None


RiskSignals = Mapping[str, int]
"""Counts of risk and crisis intents the user expressed, and of `PLAN`."""


def record_signals(signals: RiskSignals, understanding: Understanding) -> dict[str, int]:
    """The signals after one more understood message (a new dict; `signals` is not changed)."""
    updated = dict(signals)
    intent = understanding.intent
    if intent is None or (intent not in RISK_INTENTS and intent not in CRISIS_INTENTS):
        return updated
    updated[intent] = updated.get(intent, 0) + 1
    if states_plan_or_date(understanding.text):
        updated[PLAN] = updated.get(PLAN, 0) + 1
    return updated


@dataclass(frozen=True)
class RiskAssessment:
    """A level from `RISK_LEVELS` and the reasons for it, most serious first."""

    level: str
    reasons: tuple[str, ...]


def severity(level: str) -> int:
    """The position of `level` in `RISK_LEVELS` (0 for none ... 4 for crisis)."""
    return RISK_LEVELS.index(level)


def assess(signals: RiskSignals, *, in_crisis: bool) -> RiskAssessment:
    """The risk level for these signals; `in_crisis` is the persisted crisis state."""
    crisis_reasons = [
        f"crisis intent ({_CRISIS_NAMES[intent]}) x{signals[intent]}"
        for intent in sorted(CRISIS_INTENTS)
        if signals.get(intent, 0) > 0
    ]
    interest = signals.get("interest_joining", 0)
    risk_total = sum(signals.get(intent, 0) for intent in RISK_INTENTS)
    plan = signals.get(PLAN, 0) > 0 and (risk_total > 0 or bool(crisis_reasons))
    risk_reasons = [
        f"{intent} x{signals[intent]}"
        for intent in sorted(RISK_INTENTS, key=lambda i: (i != "interest_joining", i))
        if signals.get(intent, 0) > 0
    ]
    plan_reason = ["stated a plan or date"] if plan else []

    if in_crisis:
        return RiskAssessment(
            "crisis", tuple((crisis_reasons or ["in crisis state"]) + plan_reason + risk_reasons)
        )
    if plan or interest >= HIGH_INTEREST_COUNT:
        return RiskAssessment("high", tuple(plan_reason + risk_reasons + crisis_reasons))
    closed = ["earlier crisis, closed by a moderator"] if crisis_reasons else []
    if interest >= 1 or risk_total >= ELEVATED_RISK_COUNT or closed:
        return RiskAssessment("elevated", tuple(closed + risk_reasons + crisis_reasons))
    if risk_total >= 1:
        return RiskAssessment("low", tuple(risk_reasons))
    return RiskAssessment("none", ())


_CRISIS_NAMES = {"crisis_self_harm": "self-harm", "crisis_violence": "violence"}
