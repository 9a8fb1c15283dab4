"""Keeping the local NLU servers alive: a dead one is started again, a hung one too.

`make run` starts the Rasa server(s) as child processes; if one dies (out of memory, a crash,
`kill -9`), nobody else will restart it. The supervisor watches the processes, opens the
client's circuit for a dead server at once (so no message waits on it) and starts it again
on the same port with the same token, waiting longer after each failed attempt. Once it is
ready the client's health check closes the circuit and the pool uses it again.

A server whose process lives but that has not answered (its circuit open) for
`hung_after_seconds` is hung (deadlocked, stopped, swapping): it is killed and restarted the
same way, since the client alone would skip it forever.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from types import TracebackType

from bot.nlu.client import NLUClient
from bot.nlu.pool import Endpoint
from bot.nlu.server import LocalNLUServer, NLUServerError

log = logging.getLogger(__name__)

MAX_BACKOFF_SECONDS = 60.0


class NLUSupervisor:
    """Restarts the local servers that die, while it runs (`async with`)."""

    def __init__(
        self,
        servers: Sequence[LocalNLUServer],
        client: NLUClient | None = None,
        check_seconds: float = 1.0,
        hung_after_seconds: float = 0.0,
    ) -> None:
        self.servers = list(servers)
        self.client = client
        self.check_seconds = check_seconds
        self.hung_after_seconds = hung_after_seconds
        self.restarts = 0
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> NLUSupervisor:
        self._task = asyncio.create_task(self.run(), name="nlu-supervisor")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def run(self) -> None:
        """Watch every server on its own, so one slow restart does not delay another."""
        await asyncio.gather(*(self._watch(server) for server in self.servers))

    async def _watch(self, server: LocalNLUServer) -> None:
        backoff = 1.0
        unanswered_since: float | None = None
        while True:
            await asyncio.sleep(self.check_seconds)
            if not server.exited:
                unanswered_since = self._hung_since(server, unanswered_since)
                if unanswered_since is None or (
                    time.monotonic() - unanswered_since < self.hung_after_seconds
                ):
                    continue
                log.error(
                    "the NLU server on %s has not answered for %.0f s: killing it",
                    server.url,
                    time.monotonic() - unanswered_since,
                )
                server.kill()
            unanswered_since = None
            self._trip(server)
            log.error("the NLU server on %s died: restarting it", server.url)
            while True:
                try:
                    await server.start()
                    break
                except NLUServerError as exc:
                    log.error(
                        "restarting the NLU server failed (%s); next try in %.0f s", exc, backoff
                    )
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)
            backoff = 1.0
            self.restarts += 1
            log.info("the NLU server on %s is back", server.url)
            if self.client is not None:
                # Use it again now rather than at the next health check.
                await self.client.check_health()

    def _endpoints(self, server: LocalNLUServer) -> list[Endpoint]:
        if self.client is None:
            return []
        return [e for e in self.client.pool.endpoints if e.url == server.url]

    def _hung_since(self, server: LocalNLUServer, since: float | None) -> float | None:
        """When the living server stopped answering (its circuit opened), or None."""
        if self.hung_after_seconds <= 0:
            return None
        if all(endpoint.healthy for endpoint in self._endpoints(server)):
            return None
        return since if since is not None else time.monotonic()

    def _trip(self, server: LocalNLUServer) -> None:
        for endpoint in self._endpoints(server):
            endpoint.breaker.trip()
