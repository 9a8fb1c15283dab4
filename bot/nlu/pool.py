"""Several NLU servers behind one client: round robin, each member behind its own breaker.

One Rasa server uses about one core; a pool of them (`NLU_URL` as a comma-separated list, or
`NLU_WORKERS` local servers) lets the whole machine serve the load. A member whose breaker is
open (failed calls, failed health checks) is skipped until a health check or a half-open
probe finds it answering again.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from bot.nlu.breaker import BreakerState, CircuitBreaker


@dataclass
class Endpoint:
    """One NLU server of the pool and what the client has seen of it."""

    url: str
    breaker: CircuitBreaker
    requests: int = 0
    failures: int = 0

    @property
    def healthy(self) -> bool:
        return self.breaker.state is BreakerState.CLOSED


@dataclass
class NLUPool:
    """Picks the member for the next call: round robin over the members that are allowed."""

    endpoints: list[Endpoint]
    _next: int = field(default=0, repr=False)

    @classmethod
    def of(
        cls, urls: Sequence[str], *, failure_threshold: int = 5, cooldown_seconds: float = 10.0
    ) -> NLUPool:
        cleaned = [url.strip().rstrip("/") for url in urls if url.strip()]
        if not cleaned:
            raise ValueError("an NLU pool needs at least one URL")
        if len(set(cleaned)) != len(cleaned):
            raise ValueError("the NLU pool lists a URL twice")
        return cls(
            [Endpoint(url, CircuitBreaker(failure_threshold, cooldown_seconds)) for url in cleaned]
        )

    def candidates(self) -> Iterator[Endpoint]:
        """Members to try for one call, in round-robin order, skipping those refused.

        Lazy on purpose: asking a breaker may make its caller the half-open probe, so a
        breaker is asked only when the members before it have failed.
        """
        count = len(self.endpoints)
        start = self._next
        self._next = (start + 1) % count
        for offset in range(count):
            endpoint = self.endpoints[(start + offset) % count]
            if endpoint.breaker.allow():
                yield endpoint

    @property
    def any_healthy(self) -> bool:
        return any(endpoint.healthy for endpoint in self.endpoints)
