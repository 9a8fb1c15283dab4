"""Opening and closing everything a conversation needs, in one place.

The run command, the terminal chat, `nlu parse` and the tests all use `Services`, so the
order of start-up (database, content, NLU) and the matching clean shutdown exist once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
from pathlib import Path
from types import TracebackType

from bot.content.database_provider import DatabaseLibraryProvider
from bot.content.documents import read_items
from bot.content.loader import ContentError
from bot.conversation import Conversation
from bot.cpus import CorePlan, available_cores, device_interrupts, pin_process, plan_cores
from bot.nlu.client import NLUClient
from bot.nlu.server import LocalNLUServer, latest_model
from bot.nlu.supervisor import NLUSupervisor
from bot.settings import Settings
from bot.storage.buffer import WriteBuffer
from bot.storage.content_store import ContentStore
from bot.storage.database import Database
from bot.storage.resilient import ResilientStore
from bot.storage.store import Store

log = logging.getLogger(__name__)


async def open_nlu(settings: Settings, stack: contextlib.AsyncExitStack) -> NLUClient:
    """A client for the servers of `NLU_URL`, or for local Rasa servers run with the stack.

    Without `NLU_URL`, `NLU_WORKERS` servers are started on consecutive ports from `NLU_PORT`
    (sharing one token), pinned to cores of their own under `CPU_PINNING=auto`, and a
    supervisor restarts any that dies, until the stack closes.
    """
    servers: list[LocalNLUServer] = []
    if settings.nlu_urls:
        urls, token = list(settings.nlu_urls), settings.nlu_auth_token
    else:
        model = settings.nlu_model or latest_model(settings.nlu_model_dir)
        token = settings.nlu_auth_token or secrets.token_hex(24)
        cores = share_cores(settings, stack)
        for index, port in enumerate(settings.local_nlu_ports):
            log_name = "nlu-server.log" if index == 0 else f"nlu-server-{index + 1}.log"
            server = LocalNLUServer(
                python=settings.nlu_python,
                model=model,
                host=settings.nlu_host,
                port=port,
                token=token,
                log_path=settings.data_dir / log_name,
                startup_timeout=settings.nlu_startup_timeout_seconds,
                cores=cores.nlu[index] if cores is not None else None,
            )
            stack.callback(server.stop)
            servers.append(server)
        started = await asyncio.gather(
            *(server.start() for server in servers), return_exceptions=True
        )
        for outcome in started:
            if isinstance(outcome, BaseException):
                raise outcome
        urls = [server.url for server in servers]
    client = nlu_client_for(settings, urls, token)
    await stack.enter_async_context(client)
    if servers:
        await stack.enter_async_context(
            NLUSupervisor(servers, client, hung_after_seconds=settings.nlu_hang_restart_seconds)
        )
    with contextlib.suppress(Exception):
        client.model = Path(str((await client.status()).get("model_file", ""))).name or None
    return client


def share_cores(settings: Settings, stack: contextlib.AsyncExitStack) -> CorePlan | None:
    """Pin this process to the bot's cores for as long as the stack is open (`bot.cpus`)."""
    if settings.cpu_pinning != "auto":
        return None
    everything = available_cores()
    interrupts = device_interrupts()
    plan = plan_cores(everything, settings.nlu_workers, interrupts)
    if plan is None:
        log.info(
            "CPU pinning: none (%d NLU server(s) on %d core(s) leave no core for the bot)",
            settings.nlu_workers,
            len(everything),
        )
        return None
    if not pin_process(os.getpid(), plan.bot):
        return None  # refused here (logged): the servers are left unpinned too
    stack.callback(pin_process, os.getpid(), everything)
    log.info(
        "CPU pinning: the bot on core(s) %s, NLU server(s) on %s (%s; CPU_PINNING=off to stop)",
        ",".join(map(str, sorted(plan.bot))),
        ", ".join(",".join(map(str, sorted(cores))) for cores in plan.nlu),
        "the CPUs serving the fewest device interrupts"
        if interrupts
        else "the last CPUs: /proc/interrupts could not be read",
    )
    return plan


def nlu_client_for(settings: Settings, urls: list[str], token: str) -> NLUClient:
    """An NLU client for `urls` with the timeout, breaker, health check and cache settings."""
    return NLUClient(
        urls,
        token,
        settings.nlu_timeout_seconds,
        settings.crisis_confidence_floor,
        risk_family_floor=settings.risk_family_floor,
        failure_threshold=settings.nlu_breaker_failures,
        cooldown_seconds=settings.nlu_breaker_cooldown_seconds,
        health_interval_seconds=settings.nlu_health_interval_seconds,
        cache_size=settings.nlu_cache_size,
    )


async def open_library(
    content: ContentStore, settings: Settings, stack: contextlib.AsyncExitStack
) -> DatabaseLibraryProvider:
    """The live library from the database, importing `CONTENT_DIR` first if it has none.

    A new version of the code may need a reply text the database does not have yet (a new
    required key in `bot.content.loader.REQUIRED_REPLIES`): those come from `CONTENT_DIR`
    too, and nothing else that is already in the database is touched.
    """
    if await content.is_empty():
        if await content.import_if_empty(read_items(settings.content_dir)):
            log.info("content library imported from %s into the database", settings.content_dir)
    else:
        try:
            added = await content.import_missing_replies(read_items(settings.content_dir))
        except ContentError as exc:
            # The library is in the database; a broken YAML folder must not stop the bot.
            log.warning("%s not read for missing replies: %s", settings.content_dir, exc)
            added = []
        if added:
            log.info("replies the code needs imported from %s: %s", settings.content_dir, added)
    library = DatabaseLibraryProvider(content, settings.content_refresh_seconds)
    await library.start()
    stack.push_async_callback(library.close)
    return library


def resilient_store(database: Database, settings: Settings) -> ResilientStore:
    """The store the bot uses: it buffers writes on disk while the database is unavailable."""
    buffer = WriteBuffer(settings.write_buffer_path, settings.write_buffer_max_bytes)
    return ResilientStore(database, buffer, settings.write_buffer_retry_seconds)


class Services:
    """Database, content library, NLU client and the conversation built on them."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._stack = contextlib.AsyncExitStack()

    async def __aenter__(self) -> Services:
        try:
            self.database = Database(
                self.settings.database_url,
                self.settings.database_durability,
                self.settings.database_pool_size,
            )
            await self.database.start()
            self._stack.push_async_callback(self.database.close)
            store = resilient_store(self.database, self.settings)
            store.open_buffer()
            self._stack.push_async_callback(store.close)
            self.store: Store = store
            self.content = ContentStore(self.database)
            self.library = await open_library(self.content, self.settings, self._stack)
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
