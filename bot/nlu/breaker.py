"""A circuit breaker for one NLU server: stop calling a server that keeps failing.

Without it, a dead or hung NLU server makes every incoming message wait the full timeout
while more messages pile up behind it. After `failure_threshold` consecutive failures
(errors or timeouts) the breaker opens: callers get "not allowed" at once and answer with
the safe `unavailable` reply. After `cooldown_seconds` it lets exactly one call through
(half-open); that call's success closes the breaker, its failure opens it again. A health
check that finds the server answering closes it too (`record_success`), so recovery does not
have to wait for a user's message.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from enum import Enum


class BreakerState(Enum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreaker:
    """Counts consecutive failures; decides whether the next call may go to the server."""

    def __init__(
        self,
        failure_threshold: int = 5,
        cooldown_seconds: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if failure_threshold < 1:
            raise ValueError("failure_threshold must be at least 1")
        self.failure_threshold = failure_threshold
        self.cooldown_seconds = cooldown_seconds
        self._clock = clock
        self._state = BreakerState.CLOSED
        self._failures = 0
        self._opened_at = 0.0
        self.times_opened = 0

    @property
    def state(self) -> BreakerState:
        return self._state

    @property
    def consecutive_failures(self) -> int:
        return self._failures

    def allow(self) -> bool:
        """Whether a call may go out now; the call must end in `record_*` or `release`.

        In the open state, the first caller after the cool-down becomes the half-open probe;
        everyone else is refused until the probe has answered.
        """
        if self._state is BreakerState.CLOSED:
            return True
        if self._state is BreakerState.OPEN and self._clock() - self._opened_at >= (
            self.cooldown_seconds
        ):
            self._state = BreakerState.HALF_OPEN
            return True
        return False

    def record_success(self) -> None:
        self._state = BreakerState.CLOSED
        self._failures = 0

    def record_failure(self) -> None:
        self._failures += 1
        if self._state is BreakerState.HALF_OPEN or self._failures >= self.failure_threshold:
            self.trip()

    def trip(self) -> None:
        """Open now (e.g. the server's process is known to be gone)."""
        if self._state is not BreakerState.OPEN:
            self.times_opened += 1
        self._state = BreakerState.OPEN
        self._opened_at = self._clock()
        self._failures = max(self._failures, self.failure_threshold)

    def release(self) -> None:
        """A call ended without a verdict (cancelled): a half-open probe may be retried at once."""
        if self._state is BreakerState.HALF_OPEN:
            self._state = BreakerState.OPEN
            self._opened_at = self._clock() - self.cooldown_seconds
