"""What the bot understood of one message, whichever component produced it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bot.nlu.intents import CRISIS_INTENTS, RISK_INTENTS


@dataclass(frozen=True)
class Entity:
    """An extracted entity; `value` is normalised (a country is an ISO 3166 alpha-2 code)."""

    entity: str
    value: str


@dataclass(frozen=True)
class IntentScore:
    name: str
    confidence: float


@dataclass(frozen=True)
class Understanding:
    """The NLU result for one message.

    `source` says who decided the intent: "nlu" (the Rasa model), "risk_family" (a fallback
    kept as the top risk intent, `bot.nlu.client.apply_risk_family`), "safety_net" (the
    deterministic crisis patterns, which override the model) or "unavailable" (the NLU
    server could not be reached; the message is stored and answered safely).
    """

    text: str
    intent: str | None
    confidence: float
    ranking: tuple[IntentScore, ...] = ()
    entities: tuple[Entity, ...] = ()
    source: str = "nlu"
    model: str | None = None

    @property
    def is_crisis(self) -> bool:
        return self.intent in CRISIS_INTENTS

    @property
    def is_risk(self) -> bool:
        return self.intent in RISK_INTENTS

    def entity(self, name: str) -> str | None:
        for found in self.entities:
            if found.entity == name:
                return found.value
        return None

    def ranking_json(self) -> list[dict[str, Any]]:
        return [{"name": s.name, "confidence": round(s.confidence, 4)} for s in self.ranking]

    def entities_json(self) -> list[dict[str, Any]]:
        return [{"entity": e.entity, "value": e.value} for e in self.entities]
