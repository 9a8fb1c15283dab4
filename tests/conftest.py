"""Shared fixtures: real databases (SQLite and PostgreSQL), the real Rasa server, the real bot.

Nothing of ours is faked: the NLU server is Rasa serving the trained model, the database is
a real SQLite file or a real PostgreSQL database, and the bot is python-telegram-bot talking
over HTTP to the Bot API emulator in `tests/emulator/` (the only stand-in, for Telegram).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import secrets
import socket
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
import sqlalchemy
from sqlalchemy import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from bot.content.database_provider import DatabaseLibraryProvider
from bot.conversation import Conversation
from bot.escalation.service import Escalation
from bot.nlu.client import NLUClient
from bot.nlu.server import LocalNLUServer, latest_model
from bot.run import serve_webhook
from bot.services import Services, nlu_client_for, open_library, resilient_store
from bot.settings import PROJECT_ROOT, Settings
from bot.storage.content_store import ContentStore
from bot.storage.database import Database
from bot.storage.pseudonym import pseudonymise
from bot.storage.resilient import ResilientStore
from bot.storage.store import Store
from bot.telegram.app import build_application, run_polling
from bot.telegram.handlers import FrontEnd
from bot.telegram.journal import UpdateJournal
from tests.emulator import BotAPIEmulator

BACKENDS = ("sqlite", "postgresql")
TEST_TOKEN = "123456:TEST-token_for-the-emulator"
ADMIN_URL = os.environ.get(
    "TEST_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.asynccontextmanager
async def fresh_postgres_database() -> AsyncIterator[str]:
    """A new, empty PostgreSQL database on the test server for the block, dropped after it."""
    admin_url = make_url(ADMIN_URL)
    name = f"defector_voices_test_{secrets.token_hex(6)}"
    admin = create_async_engine(admin_url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    try:
        async with admin.connect() as connection:
            await connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    except (OSError, DBAPIError) as exc:
        await admin.dispose()
        masked = admin_url.render_as_string(hide_password=True)
        raise RuntimeError(
            f"no PostgreSQL server at {masked}: start one or set TEST_DATABASE_URL ({exc})"
        ) from exc
    try:
        yield admin_url.set(database=name).render_as_string(hide_password=False)
    finally:
        async with admin.connect() as connection:
            await connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.dispose()


@contextlib.asynccontextmanager
async def database_url_for(backend: str, directory: Path) -> AsyncIterator[str]:
    if backend == "sqlite":
        yield f"sqlite+aiosqlite:///{directory / 'test.db'}"
    else:
        async with fresh_postgres_database() as url:
            yield url


@dataclass(eq=False)  # hashable: SQLAlchemy keeps listeners in a set
class CommitCounter:
    commits: int = 0

    def __call__(self, *_: object) -> None:
        self.commits += 1


@contextlib.contextmanager
def counting_commits(database: Database) -> Iterator[CommitCounter]:
    """Counts the commits of the engine that runs `Database.read` and `Database.write`."""
    counter = CommitCounter()
    sqlalchemy.event.listen(database.work_engine, "commit", counter)
    try:
        yield counter
    finally:
        sqlalchemy.event.remove(database.work_engine, "commit", counter)


def thread_cores(pid: int) -> dict[int, frozenset[int]]:
    """The CPUs each thread of `pid` may run on (threads that end meanwhile left out)."""
    cores = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(ProcessLookupError):
            cores[int(task.name)] = frozenset(os.sched_getaffinity(int(task.name)))
    return cores


def make_settings(tmp: Path, **changes: object) -> Settings:
    base = Settings.from_env(
        {
            "DATA_DIR": str(tmp),
            "PSEUDONYM_SECRET": "test-secret-" + "x" * 32,
            "CONTACT_SECRET": "test-contact-secret-" + "y" * 32,
            "OPERATOR_NAME": "the test team",
        }
    )
    return replace(base, **changes)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def nlu_model() -> Path:
    configured = os.environ.get("NLU_MODEL")
    if configured:
        return Path(configured)
    return latest_model(PROJECT_ROOT / "models")


@pytest.fixture(scope="session")
async def nlu_server(
    nlu_model: Path, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[LocalNLUServer]:
    """The real Rasa server with the trained model, once per test session (about 15 s)."""
    logs = tmp_path_factory.mktemp("nlu")
    server = LocalNLUServer(
        python=PROJECT_ROOT / ".venv-nlu" / "bin" / "python",
        model=nlu_model,
        port=free_port(),
        log_path=logs / "nlu-server.log",
        startup_timeout=180,
    )
    async with server:
        yield server


@pytest.fixture(scope="session")
async def nlu_client(nlu_server: LocalNLUServer) -> AsyncIterator[NLUClient]:
    """A client with the shipped post-processing (crisis floor, risk-family rule) of `Settings`."""
    shipped = Settings()
    async with NLUClient(
        nlu_server.url,
        nlu_server.token,
        timeout_seconds=10,
        crisis_floor=shipped.crisis_confidence_floor,
        risk_family_floor=shipped.risk_family_floor,
    ) as client:
        yield client


@pytest.fixture(params=BACKENDS)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    """A started store on a fresh database, once on SQLite and once on PostgreSQL."""
    async with database_url_for(request.param, tmp_path) as url:
        database = Database(url)
        await database.start()
        try:
            yield Store(database)
        finally:
            await database.close()


@dataclass
class RunningBot:
    """The real bot polling the emulator, with handles the tests inspect."""

    backend: str
    emulator: BotAPIEmulator
    store: ResilientStore
    settings: Settings
    library: DatabaseLibraryProvider
    nlu: NLUClient
    content: ContentStore
    _ids: Iterator[int]
    conversation: Conversation

    @property
    def escalation(self) -> Escalation:
        return self.conversation.escalation

    def new_user(self) -> int:
        """A Telegram user id no other test in this session uses."""
        return next(self._ids)

    def pseudonym(self, user_id: int) -> str:
        return pseudonymise(user_id, self.settings.pseudonym_secret)


@contextlib.asynccontextmanager
async def running_bot(
    backend: str,
    tmp: Path,
    nlu_server: LocalNLUServer,
    *,
    database_url: str | None = None,
    **changes: object,
) -> AsyncIterator[RunningBot]:
    """The bot on a fresh database, or on `database_url` (to test what survives a restart)."""
    existing = contextlib.nullcontext(database_url) if database_url else None
    async with (
        BotAPIEmulator() as emulator,
        existing or database_url_for(backend, tmp) as url,
    ):
        settings = make_settings(
            tmp,
            **{
                "telegram_bot_token": TEST_TOKEN,
                "telegram_api_base_url": emulator.base_url,
                "database_url": url,
                "nlu_url": nlu_server.url,
                "nlu_auth_token": nlu_server.token,
                "nlu_timeout_seconds": 10.0,
                "nlu_cache_size": 0,
                "content_refresh_seconds": 0.2,
                **changes,
            },
        )
        nlu = nlu_client_for(settings, list(settings.nlu_urls), settings.nlu_auth_token)
        await nlu.start()
        database = Database(url)
        await database.start()
        store = resilient_store(database, settings)
        store.open_buffer()
        content = ContentStore(database)
        # The library comes from the database, imported from responses/ as on a first start.
        stack = contextlib.AsyncExitStack()
        library = await open_library(content, settings, stack)
        conversation = Conversation(settings, store, nlu, library)
        settle_turns(emulator, conversation, settings.pseudonym_secret)
        journal = UpdateJournal(settings.update_journal_path)
        front_end = FrontEnd(conversation, settings.pseudonym_secret, journal)
        application = build_application(settings, front_end)
        stop = asyncio.Event()
        polling = asyncio.create_task(run_polling(application, library.current(), stop, journal))
        unanswered = asyncio.create_task(
            conversation.escalation.unanswered_loop(settings.escalation_check_seconds)
        )
        try:
            await emulator.wait_for_call("getUpdates", timeout=15)
            yield RunningBot(
                backend,
                emulator,
                store,
                settings,
                library,
                nlu,
                content,
                itertools.count(10_000),
                conversation,
            )
        finally:
            unanswered.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await unanswered
            await conversation.escalation.drain()
            stop.set()
            await asyncio.wait_for(polling, timeout=30)
            await stack.aclose()
            await store.close()
            await nlu.close()


def settle_turns(emulator: BotAPIEmulator, conversation: Conversation, secret: str) -> None:
    """Make the emulator's waits also wait for the bot's turns to be committed.

    A reply leaves before its turn's records are committed (`Conversation.handle`), so a test
    that saw a reply and then reads the database would race the commit.
    """

    async def settle(chat: int | None) -> None:
        pseudonym = None if chat is None else pseudonymise(chat, secret)
        while conversation.busy(pseudonym):
            await asyncio.sleep(0.005)

    emulator.settle = settle


@pytest.fixture(scope="session", params=BACKENDS)
async def bot(
    request: pytest.FixtureRequest,
    nlu_server: LocalNLUServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[RunningBot]:
    """One running bot per backend for the whole session; each test uses its own users."""
    async with running_bot(
        request.param, tmp_path_factory.mktemp(f"bot-{request.param}"), nlu_server
    ) as running:
        yield running


@dataclass
class WebhookBot:
    """The real bot in webhook mode (`bot.run.serve_webhook`), with handles the tests inspect."""

    backend: str
    emulator: BotAPIEmulator
    services: Services
    settings: Settings
    _ids: Iterator[int]

    @property
    def store(self) -> Store:
        return self.services.store

    @property
    def base_url(self) -> str:
        """The bot's HTTP listener (webhook, /healthz, /readyz, /metrics)."""
        return f"http://127.0.0.1:{self.settings.listen_port}"

    def new_user(self) -> int:
        return next(self._ids)

    def pseudonym(self, user_id: int) -> str:
        return pseudonymise(user_id, self.settings.pseudonym_secret)


@contextlib.asynccontextmanager
async def webhook_bot(
    backend: str, tmp: Path, nlu_server: LocalNLUServer, **changes: object
) -> AsyncIterator[WebhookBot]:
    """`python -m bot run` with BOT_MODE=webhook, in this process, against the emulator."""
    async with (
        BotAPIEmulator() as emulator,
        database_url_for(backend, tmp) as url,
    ):
        port = free_port()
        settings = make_settings(
            tmp,
            **{
                "telegram_bot_token": TEST_TOKEN,
                "telegram_api_base_url": emulator.base_url,
                "database_url": url,
                "nlu_url": nlu_server.url,
                "nlu_auth_token": nlu_server.token,
                "bot_mode": "webhook",
                "webhook_url": f"http://127.0.0.1:{port}/telegram/webhook",
                "webhook_secret": "webhook-secret-" + "w" * 24,
                "listen_port": port,
                **changes,
            },
        )
        stop = asyncio.Event()
        async with Services(settings) as services:
            settle_turns(emulator, services.conversation, settings.pseudonym_secret)
            serving = asyncio.create_task(serve_webhook(settings, services, stop))
            try:
                await emulator.wait_for_call("setWebhook", timeout=15)
                yield WebhookBot(
                    backend, emulator, services, settings, itertools.count(5_550_100_000)
                )
            finally:
                stop.set()
                await asyncio.wait_for(serving, timeout=30)


@pytest.fixture(scope="module", params=BACKENDS)
async def hooked(
    request: pytest.FixtureRequest,
    nlu_server: LocalNLUServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[WebhookBot]:
    """A bot in webhook mode, once per test module and backend."""
    async with webhook_bot(
        request.param, tmp_path_factory.mktemp(f"webhook-{request.param}"), nlu_server
    ) as running:
        yield running
