"""The database connection: engine, sessions, schema migrations, and what to say when it fails.

SQLite (one file, the default) and PostgreSQL (for several replicas) are both supported through
SQLAlchemy's async drivers. `Database.start` brings the schema to the newest Alembic revision,
so a fresh database and an old one both end up as the code expects. The hot paths (a
conversation turn's read and commit, raising an alert) are synchronous functions run by
`Database.read` and `Database.write`, which on SQLite hand each one to a worker thread whole.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any, TypeVar

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, create_engine, event, make_url, text
from sqlalchemy import exc as sa_exc
from sqlalchemy.exc import ArgumentError, DBAPIError
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from bot.settings import Settings

log = logging.getLogger(__name__)

T = TypeVar("T")

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

# busy_timeout first, so that switching to WAL waits for another connection's lock.
# secure_delete overwrites deleted rows with zeros instead of leaving them in free pages.
SQLITE_PRAGMAS = (
    "PRAGMA busy_timeout=5000",
    "PRAGMA journal_mode=WAL",
    "PRAGMA foreign_keys=ON",
    "PRAGMA secure_delete=ON",
)

# Any constant shared by all replicas: they take this lock so that only one migrates at a time.
_MIGRATION_LOCK_KEY = 0x44565F6D6967  # "DV_mig"

_CONNECT_TIMEOUT_SECONDS = 10

# Pooled PostgreSQL connections are replaced after this long, before the idle timeouts of
# common proxies and managed servers close them under the bot (see `_on_fresh_connection`).
_RECYCLE_SECONDS = 1800

# How hard a commit waits for the disk (`DATABASE_DURABILITY`). "full": every commit is on
# disk before it returns (SQLite synchronous=FULL, PostgreSQL synchronous_commit=on). "fast":
# a commit is in the operating system's hands when it returns (SQLite synchronous=NORMAL in
# WAL mode, PostgreSQL synchronous_commit=off): a crash or kill of the bot or of PostgreSQL
# loses nothing and nothing is ever corrupted, but a power cut or a crash of the operating
# system may lose the last commits (up to about a second). Measured (`make bench`): one fsync
# costs ~5 ms on the development machine; a turn commits once (`bot.storage.turns`), which
# "full" pays on every message and SQLite's single writer serialises.
DURABILITY = ("full", "fast")


class StorageUnavailable(RuntimeError):
    """The database cannot be reached or prepared; the message names its URL, password masked."""


class Database:
    """An async engine and its sessions for one database URL.

    >>> db = Database("sqlite+aiosqlite:///data/defector_voices.db")
    >>> await db.start()            # connects and migrates, or raises StorageUnavailable
    >>> async with db.session() as session: ...
    >>> await db.close()
    """

    def __init__(
        self, url: str, durability: str = "full", pool_size: int = Settings.database_pool_size
    ) -> None:
        if durability not in DURABILITY:
            raise ValueError(f"durability must be one of {', '.join(DURABILITY)}")
        if pool_size < 1:
            raise ValueError("the pool size must be at least 1")
        self.durability = durability
        self.pool_size = pool_size
        try:
            self._url = make_url(url)
        except ArgumentError:
            raise ValueError("the database URL is malformed") from None  # it may hold a password
        if self._url.get_backend_name() not in ("sqlite", "postgresql"):
            raise ValueError(f"{self.url}: use sqlite+aiosqlite:// or postgresql+asyncpg://")
        self._engine: AsyncEngine | None = None
        self._reader: AsyncEngine | None = None
        self._sessions: async_sessionmaker[AsyncSession] | None = None
        self._sqlite: _SQLiteLanes | None = None

    @property
    def url(self) -> str:
        """The URL with its password masked, for logs and error messages."""
        return self._url.render_as_string(hide_password=True)

    @property
    def dialect(self) -> str:
        """`sqlite` or `postgresql`."""
        return self._url.get_backend_name()

    @property
    def engine(self) -> AsyncEngine:
        if self._engine is None:
            raise RuntimeError("Database.start() has not been called")
        return self._engine

    @property
    def work_engine(self) -> Engine:
        """The engine that runs `read` and `write` (for listening to its events)."""
        if self._sqlite is not None:
            return self._sqlite.engine
        return self.engine.sync_engine

    async def read(self, work: Callable[[Connection], T]) -> T:
        """Run `work` on one connection for reading (nothing is committed); return its result.

        `work` is synchronous: see `write`.
        """
        if self._sqlite is not None:
            return await self._sqlite.read(work)
        if self._reader is None:
            raise RuntimeError("Database.start() has not been called")
        return await self._on_fresh_connection(self._reader.connect, work)

    async def write(self, work: Callable[[Connection], T]) -> T:
        """Run `work` in one transaction, committed if it returns, rolled back if it raises.

        A conversation turn's read and commit go through `read` and `write`. On SQLite the
        whole of `work` runs in one worker thread, on the standard driver:
        aiosqlite crosses to its connection's thread and back for every cursor, execute,
        fetch and close (a turn's commit made about fifteen such hops), and those hops
        (queue, thread wake-up, event-loop wake-up, the GIL passed back and forth) were the
        largest single share of the bot's CPU under load (`make bench` with py-spy). On
        PostgreSQL asyncpg has no threads, and `work` runs through SQLAlchemy's `run_sync`.
        """
        if self._sqlite is not None:
            return await self._sqlite.write(work)
        return await self._on_fresh_connection(self.engine.begin, work)

    async def _on_fresh_connection(
        self,
        open_connection: Callable[[], AbstractAsyncContextManager[AsyncConnection]],
        work: Callable[[Connection], T],
    ) -> T:
        """Run `work` on a pooled connection; once more if that one turned out to be closed.

        Pooled connections are not pinged before use: the ping was a round trip on every
        checkout (`Settings.database_pool_size` has what both cost). A connection the server
        closed meanwhile (a restart, an idle timeout) fails on a statement of `work` instead;
        SQLAlchemy then discards every connection pooled before it, nothing was committed, and
        `work` runs again on a new one. Only then: a connection lost after `work` returned,
        during the COMMIT, may have committed, and running a turn's write again would find
        its update claimed and report the turn as a duplicate (its alerts and /forget
        skipped), so that error is raised, and the write buffer's replay (which knows a
        claimed update may be its own) takes over. A database that is really gone fails the
        second attempt too, and that error is raised.
        """
        finished = False

        def tracked(connection: Connection) -> T:
            nonlocal finished
            result = work(connection)
            finished = True
            return result

        try:
            async with open_connection() as connection:
                return await connection.run_sync(tracked)
        except DBAPIError as exc:
            if finished or not exc.connection_invalidated:
                raise
            log.info("a pooled database connection had been closed by the server: reconnecting")
        async with open_connection() as connection:
            return await connection.run_sync(work)

    def session(self) -> AsyncSession:
        """A new session, to use as `async with db.session() as session:`."""
        if self._sessions is None:
            raise RuntimeError("Database.start() has not been called")
        return self._sessions()

    async def start(self) -> None:
        """Connect, check the connection and upgrade the schema to the newest revision."""
        if self._engine is not None:
            return
        engine = self._create_engine()
        try:
            async with engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
        except Exception as exc:
            # Whatever the driver raises (refused, timed out, no such database, bad password):
            # asyncpg's own errors on connect are not wrapped in SQLAlchemy's.
            await engine.dispose()
            raise StorageUnavailable(f"cannot reach the database at {self.url}: {exc}") from exc
        try:
            async with engine.begin() as connection:
                await connection.run_sync(upgrade_to_head)
        except (OSError, DBAPIError) as exc:
            await engine.dispose()
            raise StorageUnavailable(f"cannot migrate the database at {self.url}: {exc}") from exc
        self._engine = engine
        # Reads run in autocommit: one round trip per statement instead of three (BEGIN, the
        # statement, ROLLBACK), and what each statement sees is what it sees in a transaction
        # at PostgreSQL's READ COMMITTED. Every round trip wakes the server's process, which
        # on a small virtual machine costs the bot's core a quarter of a millisecond.
        self._reader = engine.execution_options(isolation_level="AUTOCOMMIT")
        self._sessions = async_sessionmaker(engine, expire_on_commit=False)
        if self.dialect == "sqlite" and self._sqlite_file() is not None:
            self._sqlite = _SQLiteLanes(self._sqlite_engine())
        log.info("storage ready at %s", self.url)

    async def close(self) -> None:
        # Detached first: whatever comes after, even a cancellation, finds the database closed.
        lanes, engine = self._sqlite, self._engine
        self._sqlite, self._engine, self._sessions = None, None, None
        self._reader = None
        try:
            if lanes is not None:
                await lanes.close()
        finally:
            if engine is not None:
                await engine.dispose()

    def _create_engine(self) -> AsyncEngine:
        if self.dialect == "sqlite":
            self._prepare_sqlite_file()
            engine = create_async_engine(self._url)
            self._configure_sqlite(engine.sync_engine)
            return engine
        connect_args: dict[str, Any] = {"timeout": _CONNECT_TIMEOUT_SECONDS}
        if self.durability == "fast":
            connect_args["server_settings"] = {"synchronous_commit": "off"}
        # A fixed pool (no overflow connections opened and closed under load), not pinged
        # before each use: see `Settings.database_pool_size`.
        # Most recently used first (a quiet bot keeps a few connections warm instead of letting
        # all of them idle out), and none older than `_RECYCLE_SECONDS`.
        return create_async_engine(
            self._url,
            pool_size=self.pool_size,
            max_overflow=0,
            pool_use_lifo=True,
            pool_recycle=_RECYCLE_SECONDS,
            connect_args=connect_args,
        )

    def _sqlite_engine(self) -> Engine:
        """The same SQLite file on the standard (synchronous) driver, for `read` and `write`."""
        engine = create_engine(self._url.set(drivername="sqlite"))
        self._configure_sqlite(engine)
        return engine

    def _configure_sqlite(self, engine: Engine) -> None:
        """Every new connection gets the pragmas and the durability's `synchronous`."""
        event.listen(engine, "connect", _set_sqlite_pragmas)
        synchronous = "NORMAL" if self.durability == "fast" else "FULL"

        def set_synchronous(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            try:
                cursor.execute(f"PRAGMA synchronous={synchronous}")
            finally:
                cursor.close()

        event.listen(engine, "connect", set_synchronous)

    def _sqlite_file(self) -> Path | None:
        """The SQLite database's file; None for an in-memory or URI-named database."""
        database = self._url.database
        if not database or database == ":memory:" or database.startswith("file:"):
            return None
        return Path(database)

    def _prepare_sqlite_file(self) -> None:
        """Create the database's folder and file readable by the bot's account only.

        SQLite gives its -wal and -shm files the database file's permissions, so they stay
        private too.
        """
        path = self._sqlite_file()
        if path is None:
            return
        try:
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            if not path.exists():
                os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
        except OSError as exc:
            raise StorageUnavailable(f"cannot create the database at {self.url}: {exc}") from exc


class _SQLiteLanes:
    """A synchronous SQLite engine used from two worker threads: one for reads, one for
    writes, so that a read never waits behind a commit's flush to disk (WAL lets readers
    and the one writer work at once)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._reader = ThreadPoolExecutor(1, thread_name_prefix="sqlite-read")
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="sqlite-write")

    async def read(self, work: Callable[[Connection], T]) -> T:
        def run() -> T:
            with self.engine.connect() as connection:
                return work(connection)

        return await asyncio.get_running_loop().run_in_executor(self._reader, run)

    async def write(self, work: Callable[[Connection], T]) -> T:
        def run() -> T:
            with self.engine.begin() as connection:
                return work(connection)

        return await asyncio.get_running_loop().run_in_executor(self._writer, run)

    async def close(self) -> None:
        """Wait for the work under way, then close the connections."""
        loop = asyncio.get_running_loop()
        for lane in (self._reader, self._writer):
            await loop.run_in_executor(None, lane.shutdown)
        self.engine.dispose()


def alembic_config(url: str | None = None) -> Config:
    """The Alembic configuration of the bot's migrations, independent of any `alembic.ini`."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("path_separator", "os")
    if url is not None:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade_to_head(connection: Connection) -> None:
    """Run `alembic upgrade head` on an open connection (for `AsyncConnection.run_sync`)."""
    if connection.dialect.name == "postgresql":
        # Held until the surrounding transaction ends: replicas starting together migrate once.
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK_KEY})
    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


def _set_sqlite_pragmas(dbapi_connection: Any, _connection_record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        for pragma in SQLITE_PRAGMAS:
            cursor.execute(pragma)
            if pragma.startswith("PRAGMA journal_mode"):
                mode = cursor.fetchone()[0]
                if mode not in ("wal", "memory"):
                    log.warning("SQLite refused WAL mode (got %r); deleted data may linger", mode)
    finally:
        cursor.close()


def database_unreachable(exc: BaseException) -> bool:
    """Whether `exc` says the database cannot be reached now (worth buffering and retrying).

    OperationalError covers SQLite's "database is locked" and lost PostgreSQL connections;
    asyncpg's connection errors reach us unwrapped as OSError when connecting.
    """
    if isinstance(exc, sa_exc.OperationalError | sa_exc.InterfaceError | sa_exc.TimeoutError):
        return True
    if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(exc, OSError | TimeoutError | ConnectionError)
