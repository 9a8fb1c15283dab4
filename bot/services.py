"""Opening and closing everything a conversation needs, in one place.

The run command, the terminal chat, `nlu parse` and the tests all use `Services`, so the
order of start-up (database, content, NLU) and the matching clean shutdown exist once.
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path
from types import TracebackType

from bot.content.provider import LibraryProvider
from bot.conversation import Conversation
from bot.nlu.client import NLUClient
from bot.nlu.server import LocalNLUServer, latest_model
from bot.settings import Settings
from bot.storage.database import Database
from bot.storage.store import Store

log = logging.getLogger(__name__)


async def open_nlu(settings: Settings, stack: contextlib.AsyncExitStack) -> NLUClient:
    """A client for `NLU_URL`, or for a local Rasa server started (and stopped) with the stack."""
    if settings.nlu_url:
        url, token = settings.nlu_url, settings.nlu_auth_token
    else:
        server = LocalNLUServer(
            python=settings.nlu_python,
            model=settings.nlu_model or latest_model(settings.nlu_model_dir),
            host=settings.nlu_host,
            port=settings.nlu_port,
            token=settings.nlu_auth_token or None,
            log_path=settings.data_dir / "nlu-server.log",
            startup_timeout=settings.nlu_startup_timeout_seconds,
        )
        await stack.enter_async_context(server)
        url, token = server.url, server.token
    client = NLUClient(url, token, settings.nlu_timeout_seconds, settings.crisis_confidence_floor)
    await stack.enter_async_context(client)
    with contextlib.suppress(Exception):
        client.model = Path(str((await client.status()).get("model_file", ""))).name or None
    return client


class Services:
    """Database, content library, NLU client and the conversation built on them."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._stack = contextlib.AsyncExitStack()

    async def __aenter__(self) -> Services:
        try:
            self.database = Database(self.settings.database_url)
            await self.database.start()
            self._stack.push_async_callback(self.database.close)
            self.store = Store(self.database)
            self.library = LibraryProvider(self.settings.content_dir)
            self.nlu = await open_nlu(self.settings, self._stack)
        except BaseException:
            await self._stack.aclose()
            raise
        self.conversation = Conversation(self.settings, self.store, self.nlu, self.library)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._stack.aclose()
