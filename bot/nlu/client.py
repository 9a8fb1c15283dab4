"""HTTP client for the Rasa NLU server (`POST /model/parse`), plus the crisis safety net.

Rasa runs in its own Python 3.10 environment; the app only ever talks to it over HTTP,
so Rasa's old pinned libraries never reach the internet-facing process.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

import aiohttp

from bot.nlu.intents import CRISIS_INTENTS
from bot.nlu.understanding import Entity, IntentScore, Understanding
from bot.safety.crisis_net import detect_crisis

log = logging.getLogger(__name__)


class NLUUnavailable(RuntimeError):
    """The NLU server did not answer in time or answered with an error."""


class NLUClient:
    """Understands messages via a Rasa server; the crisis safety net overrides the model.

    The client owns one `aiohttp.ClientSession`; open it with `start()` (or `async with`)
    inside the running event loop and close it with `close()`.
    """

    def __init__(
        self,
        url: str,
        token: str = "",
        timeout_seconds: float = 3.0,
        crisis_floor: float = 1.0,
    ) -> None:
        self.url = url.rstrip("/")
        self.crisis_floor = crisis_floor
        self._token = token
        self._timeout = aiohttp.ClientTimeout(total=timeout_seconds)
        self._session: aiohttp.ClientSession | None = None
        self.model: str | None = None

    async def start(self) -> None:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def __aenter__(self) -> NLUClient:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def _params(self) -> dict[str, str]:
        return {"token": self._token} if self._token else {}

    async def status(self) -> dict[str, Any]:
        """The server's `/status` (needs the token; 409 until a model is loaded)."""
        session = self._require_session()
        try:
            async with session.get(f"{self.url}/status", params=self._params()) as response:
                if response.status != 200:
                    raise NLUUnavailable(f"NLU server at {self.url} answered {response.status}")
                body: dict[str, Any] = await response.json()
                return body
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise NLUUnavailable(f"NLU server at {self.url} unreachable: {exc!r}") from exc

    async def parse_raw(self, text: str) -> dict[str, Any]:
        """The model's own answer for `text`, without the safety net."""
        session = self._require_session()
        try:
            async with session.post(
                f"{self.url}/model/parse", params=self._params(), json={"text": text}
            ) as response:
                if response.status != 200:
                    detail = (await response.text())[:200]
                    raise NLUUnavailable(
                        f"NLU server at {self.url} answered {response.status}: {detail}"
                    )
                body: dict[str, Any] = await response.json()
                return body
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise NLUUnavailable(f"NLU server at {self.url} unreachable: {exc!r}") from exc

    async def understand(self, text: str) -> Understanding:
        """Classify `text`; never raises for a dead server: the safety net still runs."""
        net = detect_crisis(text)
        try:
            raw = await self.parse_raw(text)
        except NLUUnavailable as exc:
            log.warning("nlu unavailable: %s", exc)
            if net is not None:
                return Understanding(text, net.intent, 1.0, source="safety_net")
            return Understanding(text, None, 0.0, source="unavailable")
        understood = understanding_from_rasa(text, raw, model=self.model)
        if net is not None and understood.intent != net.intent:
            return replace(understood, intent=net.intent, confidence=1.0, source="safety_net")
        return apply_crisis_floor(understood, self.crisis_floor)

    def _require_session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError("NLUClient.start() was not called")
        return self._session


def understanding_from_rasa(text: str, raw: dict[str, Any], model: str | None) -> Understanding:
    """Turn Rasa's parse JSON into an `Understanding`, tolerating missing fields."""
    intent = raw.get("intent") or {}
    name = intent.get("name")
    ranking = tuple(
        IntentScore(str(item.get("name")), float(item.get("confidence") or 0.0))
        for item in (raw.get("intent_ranking") or [])[:5]
        if item.get("name")
    )
    entities = tuple(
        Entity(str(item["entity"]), str(item["value"]))
        for item in raw.get("entities") or []
        if item.get("entity") and item.get("value") is not None
    )
    return Understanding(
        text=text,
        intent=str(name) if name else None,
        confidence=float(intent.get("confidence") or 0.0),
        ranking=ranking,
        entities=entities,
        source="nlu",
        model=model,
    )


def apply_crisis_floor(understood: Understanding, floor: float) -> Understanding:
    """Treat a message as crisis when the model gives a crisis intent at least `floor`.

    The model's top intent is not enough when a crisis is second: "i need help, i could hurt
    someone" may rank `ask_help_leaving` first. Missing a crisis costs more than a kind
    safety reply to someone who did not need it, so a crisis intent anywhere in the ranking
    at or above the floor wins. `CRISIS_CONFIDENCE_FLOOR` sets it; the default 1.0 turns it
    off, because on the current model it added false alarms and no recall (README, "NLU").
    """
    if understood.intent in CRISIS_INTENTS:
        return understood
    for scored in understood.ranking:
        if scored.name in CRISIS_INTENTS and scored.confidence >= floor:
            return replace(
                understood, intent=scored.name, confidence=scored.confidence, source="crisis_floor"
            )
    return understood
