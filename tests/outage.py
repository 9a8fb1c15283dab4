"""Real database outages for tests: PostgreSQL cut off the network, SQLite locked.

"PostgreSQL stopped" without stopping the machine's shared server: the bot connects through
a TCP proxy; `cut()` drops every open connection and refuses new ones (the driver sees real
resets), `restore()` lets connections through again. "SQLite locked": another connection
holds `BEGIN EXCLUSIVE` on the real file.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Self

from sqlalchemy import make_url

from tests.conftest import fresh_postgres_database


class TCPProxy:
    def __init__(self, target_host: str, target_port: int) -> None:
        self.target_host = target_host
        self.target_port = target_port
        self.port = 0
        self.connections = 0
        self._open = True
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def __aenter__(self) -> Self:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.cut()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def cut(self) -> None:
        """Reset every connection through the proxy and refuse new ones until `restore()`."""
        self._open = False
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    def restore(self) -> None:
        self._open = True

    async def _accept(
        self, client_reader: asyncio.StreamReader, client: asyncio.StreamWriter
    ) -> None:
        if not self._open:
            client.transport.abort()
            return
        try:
            server_reader, server = await asyncio.open_connection(
                self.target_host, self.target_port
            )
        except OSError:
            client.transport.abort()
            return
        self.connections += 1
        self._writers |= {client, server}
        await asyncio.gather(self._pipe(client_reader, server), self._pipe(server_reader, client))

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            self._writers.discard(writer)
            with contextlib.suppress(Exception):
                writer.transport.abort()


@dataclass
class Outage:
    """A database URL for the bot and the switch that makes its database unavailable."""

    url: str
    begin: Callable[[], None]
    end: Callable[[], None]


@contextlib.asynccontextmanager
async def database_with_outage(backend: str, tmp: Path) -> AsyncIterator[Outage]:
    if backend == "sqlite":
        path = tmp / "outage.db"
        holder: list[sqlite3.Connection] = []

        def lock() -> None:
            connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            connection.execute("BEGIN EXCLUSIVE")
            holder.append(connection)

        def unlock() -> None:
            connection = holder.pop()
            connection.execute("ROLLBACK")
            connection.close()

        yield Outage(f"sqlite+aiosqlite:///{path}", lock, unlock)
        return
    async with fresh_postgres_database() as direct:
        url = make_url(direct)
        async with TCPProxy(url.host or "127.0.0.1", url.port or 5432) as proxy:
            proxied = url.set(port=proxy.port).render_as_string(hide_password=False)
            yield Outage(proxied, proxy.cut, proxy.restore)
