"""One user's turns in order across replicas: a PostgreSQL advisory lock per user.

Telegram sends a chat's next update only after the webhook answered the previous one (the
Bot API server keeps one queue per chat, tdlib/telegram-bot-api WebhookActor). A replica
therefore takes the user's lock *before* it answers 200, and holds it until the turn is done:
the next update, wherever the load balancer sends it, waits for the lock, so turns run in
the order Telegram sent them. SQLite serves one process, where `PerUserOrderedProcessor`
already orders turns, so the lock is a no-op there.

The locks use their own small connection pool: a waiting lock holds a connection, and waiters
must never take the connections that the lock holders need to finish their turns.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

log = logging.getLogger(__name__)

# The two-key form of advisory locks (namespace, key) never collides with the one-key form
# that the migration lock uses.
LOCK_NAMESPACE = 0x4456  # "DV"


class UserLockTimeout(RuntimeError):
    """The user's lock was not granted in time (another turn of theirs is stuck)."""


def lock_key(pseudonym: str) -> int:
    """A signed 32-bit key from the pseudonym (hex HMAC); collisions only serialise two users."""
    value = int(pseudonym[:8], 16)
    return value - (1 << 32) if value >= 1 << 31 else value


class UserLocks:
    """`async with locks.hold(pseudonym):` serialises that user's turns across processes."""

    def __init__(self, database_url: str, pool_size: int = 10, timeout_seconds: float = 30.0):
        self._url = make_url(database_url)
        self._pool_size = pool_size
        self._timeout_ms = int(timeout_seconds * 1000)
        self._engine: AsyncEngine | None = None

    @property
    def distributed(self) -> bool:
        return self._url.get_backend_name() == "postgresql"

    async def start(self) -> None:
        if self.distributed and self._engine is None:
            self._engine = create_async_engine(
                self._url, pool_size=self._pool_size, max_overflow=0, pool_pre_ping=True
            )

    async def close(self) -> None:
        if self._engine is not None:
            await self._engine.dispose()
            self._engine = None

    @contextlib.asynccontextmanager
    async def hold(self, pseudonym: str) -> AsyncIterator[None]:
        """Wait for the user's lock (at most the timeout), hold it for the block."""
        if self._engine is None:
            yield
            return
        key = lock_key(pseudonym)
        async with self._engine.connect() as connection:
            await connection.execute(text(f"SET lock_timeout = {self._timeout_ms}"))
            try:
                await connection.execute(
                    text("SELECT pg_advisory_lock(:namespace, :key)"),
                    {"namespace": LOCK_NAMESPACE, "key": key},
                )
            except Exception as exc:
                if "lock timeout" in str(exc):
                    raise UserLockTimeout("a user's lock was not granted in time") from exc
                raise
            # Autobegun by SQLAlchemy: commit so the connection is idle while the lock is held.
            await connection.commit()
            try:
                yield
            finally:
                try:
                    await connection.execute(
                        text("SELECT pg_advisory_unlock(:namespace, :key)"),
                        {"namespace": LOCK_NAMESPACE, "key": key},
                    )
                    await connection.commit()
                except BaseException:
                    # A session lock lives as long as its connection: never pool a connection
                    # that may still hold one.
                    await connection.invalidate()
                    raise
