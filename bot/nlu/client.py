"""HTTP client for the Rasa NLU server(s) (`POST /model/parse`), plus the crisis safety net.

Rasa runs in its own Python 3.10 environment; the app only ever talks to it over HTTP,
so Rasa's old pinned libraries never reach the internet-facing process.

The client never makes a user wait on a broken server longer than the timeout: each server
sits behind a circuit breaker (`bot.nlu.breaker`), several servers form a round-robin pool
(`bot.nlu.pool`) that a background health check watches, and repeated texts can be answered
from a bounded cache (`bot.nlu.cache`). When no server may be called, `understand` answers at
once with the `unavailable` understanding (the crisis safety net still runs).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import aiohttp

from bot.nlu.breaker import BreakerState
from bot.nlu.cache import ParseCache
from bot.nlu.intents import CRISIS_INTENTS, FALLBACK_INTENT, RISK_INTENTS
from bot.nlu.pool import Endpoint, NLUPool
from bot.nlu.understanding import Entity, IntentScore, Understanding
from bot.safety.crisis_net import detect_crisis

log = logging.getLogger(__name__)


class NLUUnavailable(RuntimeError):
    """The NLU server did not answer in time or answered with an error.

    `refused` says no server was called at all (every circuit open).
    """

    def __init__(self, message: str, *, refused: bool = False) -> None:
        super().__init__(message)
        self.refused = refused


@dataclass
class NLUStats:
    """Counters for operators and the benchmark; no text, no user."""

    parsed: int = 0
    unavailable: int = 0
    refused_by_breaker: int = 0


def split_urls(urls: str | Sequence[str]) -> list[str]:
    """`NLU_URL` may list several servers separated by commas."""
    if isinstance(urls, str):
        return [url.strip() for url in urls.split(",") if url.strip()]
    return [url.strip() for url in urls if url.strip()]


class NLUClient:
    """Understands messages via one or more Rasa servers; the crisis safety net overrides them.

    The client owns one `aiohttp.ClientSession` and the health-check task; open them with
    `start()` (or `async with`) inside the running event loop and close them with `close()`.
    """

    def __init__(
        self,
        url: str | Sequence[str],
        token: str = "",
        timeout_seconds: float = 3.0,
        crisis_floor: float = 1.0,
        risk_family_floor: float = 1.0,
        *,
        failure_threshold: int = 5,
        cooldown_seconds: float = 10.0,
        health_interval_seconds: float = 2.0,
        cache_size: int = 0,
    ) -> None:
        self.pool = NLUPool.of(
            split_urls(url), failure_threshold=failure_threshold, cooldown_seconds=cooldown_seconds
        )
        self.url = self.pool.endpoints[0].url
        self.crisis_floor = crisis_floor
        self.risk_family_floor = risk_family_floor
        self.timeout_seconds = timeout_seconds
        self.health_interval_seconds = health_interval_seconds
        self.cache = ParseCache(cache_size)
        self.stats = NLUStats()
        self._token = token
        # Connection set-up has its own budget inside the call's: a refused or unroutable
        # server fails fast, so the next pool member still has time to answer.
        self._timeout = aiohttp.ClientTimeout(
            total=timeout_seconds, sock_connect=min(1.0, timeout_seconds)
        )
        self._health_timeout = aiohttp.ClientTimeout(total=min(2.0, timeout_seconds))
        self._session: aiohttp.ClientSession | None = None
        self._health_task: asyncio.Task[None] | None = None
        self.model: str | None = None

    async def start(self) -> None:
        if self._session is None:
            # No per-host connection cap below the update concurrency: the breaker, not a
            # queue in front of the socket pool, decides when to stop calling a server.
            connector = aiohttp.TCPConnector(limit=0, limit_per_host=0)
            self._session = aiohttp.ClientSession(timeout=self._timeout, connector=connector)
        if self._health_task is None and self.health_interval_seconds > 0:
            self._health_task = asyncio.create_task(self._health_loop(), name="nlu-health")

    async def close(self) -> None:
        if self._health_task is not None:
            self._health_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._health_task
            self._health_task = None
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

    @property
    def available(self) -> bool:
        """Whether some server of the pool is believed to answer (its breaker is closed)."""
        return self.pool.any_healthy

    async def status(self, endpoint: Endpoint | None = None) -> dict[str, Any]:
        """A server's `/status` (needs the token; 409 until a model is loaded).

        Without `endpoint`, the first member of the pool that answers.
        """
        if endpoint is not None:
            return await self._status_of(endpoint.url)
        errors: list[str] = []
        for member in self.pool.endpoints:
            try:
                return await self._status_of(member.url)
            except NLUUnavailable as exc:
                errors.append(str(exc))
        raise NLUUnavailable("; ".join(errors))

    async def _status_of(self, url: str) -> dict[str, Any]:
        session = self._require_session()
        try:
            async with session.get(
                f"{url}/status", params=self._params(), timeout=self._health_timeout
            ) as response:
                if response.status != 200:
                    raise NLUUnavailable(f"NLU server at {url} answered {response.status}")
                body: dict[str, Any] = await response.json()
                return body
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise NLUUnavailable(f"NLU server at {url} unreachable: {exc!r}") from exc

    async def check_health(self) -> None:
        """Ask every member's `/status` once; close or count against its breaker."""
        for endpoint in self.pool.endpoints:
            try:
                await self.status(endpoint)
            except NLUUnavailable:
                was_open = endpoint.breaker.state is BreakerState.OPEN
                endpoint.breaker.record_failure()
                if not was_open and endpoint.breaker.state is BreakerState.OPEN:
                    log.warning("nlu server %s failed its health check: skipped", endpoint.url)
            else:
                if endpoint.breaker.state is not BreakerState.CLOSED:
                    log.info("nlu server %s answers again", endpoint.url)
                    endpoint.breaker.record_success()

    async def _health_loop(self) -> None:
        while True:
            await asyncio.sleep(self.health_interval_seconds)
            try:
                await self.check_health()
            except Exception:  # the loop must outlive any surprise
                log.exception("nlu health check failed")

    async def parse_raw(self, text: str) -> dict[str, Any]:
        """The model's own answer for `text`, without the safety net.

        Tries the pool's members in round-robin order, within one overall timeout; raises
        `NLUUnavailable` when none may be called or none answered.
        """
        cached = self.cache.get(text)
        if cached is not None:
            return cached
        errors: list[str] = []
        deadline = time.monotonic() + self.timeout_seconds
        for endpoint in self.pool.candidates():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                endpoint.breaker.release()
                break
            try:
                raw = await self._parse_at(endpoint, text, remaining)
            except NLUUnavailable as exc:
                errors.append(str(exc))
                continue
            self.cache.put(text, raw)
            return raw
        if not errors:
            self.stats.refused_by_breaker += 1
            raise NLUUnavailable("no NLU server may be called now (circuit open)", refused=True)
        raise NLUUnavailable("; ".join(errors))

    async def _parse_at(self, endpoint: Endpoint, text: str, budget: float) -> dict[str, Any]:
        endpoint.requests += 1
        try:
            body = await self._post_parse(endpoint.url, text, budget)
        except NLUUnavailable:
            self._failed(endpoint)
            raise
        except BaseException:  # cancelled: no verdict on the server
            endpoint.breaker.release()
            raise
        endpoint.breaker.record_success()
        return body

    async def _post_parse(self, url: str, text: str, budget: float) -> dict[str, Any]:
        session = self._require_session()
        timeout = aiohttp.ClientTimeout(total=budget, sock_connect=min(1.0, budget))
        try:
            async with session.post(
                f"{url}/model/parse", params=self._params(), json={"text": text}, timeout=timeout
            ) as response:
                if response.status != 200:
                    detail = (await response.text())[:200]
                    raise NLUUnavailable(
                        f"NLU server at {url} answered {response.status}: {detail}"
                    )
                body = await response.json()
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise NLUUnavailable(f"NLU server at {url} unreachable: {exc!r}") from exc
        if not isinstance(body, dict):
            raise NLUUnavailable(
                f"NLU server at {url} answered {type(body).__name__}, not an object"
            )
        return body

    def _failed(self, endpoint: Endpoint) -> None:
        endpoint.failures += 1
        was_open = endpoint.breaker.state is BreakerState.OPEN
        endpoint.breaker.record_failure()
        if not was_open and endpoint.breaker.state is BreakerState.OPEN:
            log.warning(
                "nlu server %s: circuit open after %d failures, retried in %.0f s",
                endpoint.url,
                endpoint.breaker.consecutive_failures,
                endpoint.breaker.cooldown_seconds,
            )

    async def understand(self, text: str) -> Understanding:
        """Classify `text`; never raises for a dead server: the safety net still runs."""
        net = detect_crisis(text)
        try:
            raw = await self.parse_raw(text)
        except NLUUnavailable as exc:
            self.stats.unavailable += 1
            # While the circuit is open every message lands here: the breaker logged once.
            log.log(logging.DEBUG if exc.refused else logging.WARNING, "nlu unavailable: %s", exc)
            if net is not None:
                return Understanding(text, net.intent, 1.0, source="safety_net")
            return Understanding(text, None, 0.0, source="unavailable")
        self.stats.parsed += 1
        understood = understanding_from_rasa(text, raw, model=self.model)
        if net is not None and understood.intent != net.intent:
            return replace(understood, intent=net.intent, confidence=1.0, source="safety_net")
        return apply_risk_family(
            apply_crisis_floor(understood, self.crisis_floor), self.risk_family_floor
        )

    def _require_session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError("NLUClient.start() was not called")
        return self._session


def understanding_from_rasa(text: str, raw: dict[str, Any], model: str | None) -> Understanding:
    """Turn Rasa's parse JSON into an `Understanding`, tolerating missing fields.

    A field of the wrong type (a misbehaving server or proxy) is dropped, never raised:
    the turn goes on with what could be read, and the safety net still runs.
    """
    data: dict[str, Any] = raw if isinstance(raw, dict) else {}
    intent = data.get("intent")
    if not isinstance(intent, dict):
        intent = {}
    name = intent.get("name")
    ranking = tuple(
        IntentScore(item["name"], _confidence(item.get("confidence")))
        for item in _objects(data.get("intent_ranking"))[:5]
        if isinstance(item.get("name"), str) and item["name"]
    )
    entities = tuple(
        Entity(str(item["entity"]), str(item["value"]))
        for item in _objects(data.get("entities"))
        if item.get("entity") and item.get("value") is not None
    )
    return Understanding(
        text=text,
        intent=name if isinstance(name, str) and name else None,
        confidence=_confidence(intent.get("confidence")),
        ranking=ranking,
        entities=entities,
        source="nlu",
        model=model,
    )


def _objects(value: Any) -> list[dict[str, Any]]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _confidence(value: Any) -> float:
    """A confidence from 0 to 1; anything else (text, NaN, a list) counts as 0."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0.0
    number = float(value)
    return min(max(number, 0.0), 1.0) if math.isfinite(number) else 0.0


def apply_crisis_floor(understood: Understanding, floor: float) -> Understanding:
    """Treat a message as crisis when the model gives a crisis intent at least `floor`.

    The model's top intent is not enough when a crisis is second: "i need help, i could hurt
    someone" may rank `ask_help_leaving` first. Missing a crisis costs more than a kind
    safety reply to someone who did not need it, so a crisis intent anywhere in the ranking
    at or above the floor wins. `CRISIS_CONFIDENCE_FLOOR` sets it (1.0 turns it off); the
    default was chosen on the development set for the shipped model (README, "NLU").
    """
    if understood.intent in CRISIS_INTENTS:
        return understood
    for scored in understood.ranking:
        if scored.name in CRISIS_INTENTS and scored.confidence >= floor:
            return replace(
                understood, intent=scored.name, confidence=scored.confidence, source="crisis_floor"
            )
    return understood


def apply_risk_family(understood: Understanding, floor: float) -> Understanding:
    """Keep a recruitment claim the model was sure of as a family but not as one intent.

    The FallbackClassifier looks at the top intent alone, so "they're the only ones who cared
    about us" can fall back with its confidence split between `claim_protects_muslims`,
    `claim_fights_oppressors` and `sympathy_general`: the model is sure it is a claim, not which.
    Answering it as the top risk intent serves the user better than "can you say that another
    way?". Applies only to a fallback whose best real intent is a risk intent, and only when
    the risk intents together reach `floor` (`RISK_FAMILY_FLOOR`; 1.0 turns it off).
    """
    if understood.intent != FALLBACK_INTENT:
        return understood
    scored = [s for s in understood.ranking if s.name != FALLBACK_INTENT]
    if not scored or scored[0].name not in RISK_INTENTS:
        return understood
    family = sum(s.confidence for s in scored if s.name in RISK_INTENTS)
    if family < floor:
        return understood
    return replace(
        understood, intent=scored[0].name, confidence=scored[0].confidence, source="risk_family"
    )
