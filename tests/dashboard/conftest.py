"""Dashboard fixtures, for every dashboard test (reuse them for new pages).

- `dashboard`: the real app on a fresh database (SQLite, then PostgreSQL), served by aiohttp's
  test server on a free port, with the real conversation pipeline (Rasa server) behind
  try-the-bot. `await dashboard.client("moderator")` is an HTTP client logged in with a new
  account of that role; `dashboard.anonymous()` is one that is not logged in.
- `browser` (session) and `live_dashboard`: headless Debian chromium (/usr/bin/chromium)
  driven by Playwright; `await live_dashboard.page("content_editor")` is a logged-in page.

Cookies: the session cookie is `Secure` (the production default). Browsers treat
http://127.0.0.1 as a secure origin; aiohttp's client is told to do the same.
"""

from __future__ import annotations

import contextlib
import itertools
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import CookieJar, web
from aiohttp.test_utils import TestClient, TestServer
from playwright.async_api import Browser, Page, async_playwright

from bot.content.database_provider import DatabaseLibraryProvider
from bot.conversation import Conversation
from bot.dashboard import create_dashboard
from bot.dashboard.accounts import AccountInfo, Accounts
from bot.dashboard.serve import serving_dashboard
from bot.nlu.client import NLUClient
from bot.services import open_library
from bot.settings import Settings
from bot.storage.content_store import ContentStore
from bot.storage.database import Database
from bot.storage.store import Store
from tests.conftest import BACKENDS, database_url_for, free_port, make_settings

CHROMIUM = "/usr/bin/chromium"
PASSWORD = "correct horse battery staple"
_names = itertools.count(1)


@dataclass
class DashboardParts:
    """What `create_dashboard` needs of `bot.services.Services`."""

    database: Database
    store: Store
    library: DatabaseLibraryProvider
    conversation: Conversation


def csrf_from(html: str) -> str:
    found = re.search(r'name="csrf-token" content="([^"]+)"', html)
    assert found, "no CSRF token in the page"
    return found.group(1)


@dataclass
class DashboardUnderTest:
    backend: str
    settings: Settings
    parts: DashboardParts
    app: web.Application
    server: TestServer
    _clients: list[TestClient[Any, Any]] = field(default_factory=list)

    @property
    def accounts(self) -> Accounts:
        return Accounts(self.parts.database)

    async def add_account(
        self, role: str, name: str | None = None, password: str = PASSWORD
    ) -> AccountInfo:
        return await self.accounts.create(
            name or f"{role.replace('_', '-')}-{next(_names)}", role, password
        )

    async def anonymous(self) -> TestClient[Any, Any]:
        jar = CookieJar(unsafe=True, treat_as_secure_origin=[str(self.server.make_url("/"))])
        client: TestClient[Any, Any] = TestClient(self.server, cookie_jar=jar)
        await client.start_server()
        self._clients.append(client)
        return client

    async def log_in(
        self, client: TestClient[Any, Any], name: str, password: str = PASSWORD
    ) -> Any:
        page = await client.get("/login")
        token = csrf_from(await page.text())
        return await client.post(
            "/login",
            data={"name": name, "password": password, "csrf_token": token},
            allow_redirects=False,
        )

    async def client(self, role: str) -> TestClient[Any, Any]:
        """A client logged in as a new account of `role`."""
        account = await self.add_account(role)
        client = await self.anonymous()
        response = await self.log_in(client, account.name)
        assert response.status == 302, await response.text()
        client.account = account  # type: ignore[attr-defined]
        return client

    async def csrf(self, client: TestClient[Any, Any], path: str = "/") -> str:
        return csrf_from(await (await client.get(path)).text())

    async def close(self) -> None:
        for client in self._clients:
            await client.close()


@contextlib.asynccontextmanager
async def dashboard_parts(
    backend: str, tmp: Path, nlu_client: NLUClient, **changes: object
) -> AsyncIterator[tuple[Settings, DashboardParts]]:
    async with database_url_for(backend, tmp) as url:
        settings = make_settings(tmp, database_url=url, **changes)
        database = Database(url)
        await database.start()
        store = Store(database)
        stack = contextlib.AsyncExitStack()
        # The library from the database, imported from responses/ as on a first start.
        library = await open_library(ContentStore(database), settings, stack)
        conversation = Conversation(settings, store, nlu_client, library)
        try:
            yield settings, DashboardParts(database, store, library, conversation)
        finally:
            await stack.aclose()
            await database.close()


@pytest.fixture(params=BACKENDS)
async def dashboard(
    request: pytest.FixtureRequest, tmp_path: Path, nlu_client: NLUClient
) -> AsyncIterator[DashboardUnderTest]:
    async with dashboard_parts(request.param, tmp_path, nlu_client) as (settings, parts):
        app = create_dashboard(settings, parts)
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        under_test = DashboardUnderTest(request.param, settings, parts, app, server)
        try:
            yield under_test
        finally:
            await under_test.close()
            await server.close()


# -- a real browser ---------------------------------------------------------------------------


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            yield launched
        finally:
            await launched.close()


@dataclass
class LiveDashboard:
    """The dashboard served as `python -m bot run` serves it, for a browser."""

    url: str
    settings: Settings
    parts: DashboardParts
    browser: Browser
    first_admin: tuple[str, str] | None
    _contexts: list[Any] = field(default_factory=list)

    async def add_account(
        self, role: str, password: str = PASSWORD, name: str | None = None
    ) -> AccountInfo:
        name = name or f"{role.replace('_', '-')}-{next(_names)}"
        return await Accounts(self.parts.database).create(name, role, password)

    async def new_page(self) -> Page:
        context = await self.browser.new_context(viewport={"width": 1280, "height": 860})
        self._contexts.append(context)
        return await context.new_page()

    async def log_in(self, page: Page, name: str, password: str = PASSWORD) -> None:
        await page.goto(self.url + "login")
        await page.fill("input[name=name]", name)
        await page.fill("input[name=password]", password)
        await page.click("button[type=submit]")
        await page.wait_for_load_state()

    async def page(self, role: str, name: str | None = None) -> Page:
        """A browser page logged in as a new account of `role`, on the start page."""
        account = await self.add_account(role, name=name)
        page = await self.new_page()
        await self.log_in(page, account.name)
        assert page.url == self.url, page.url
        return page

    async def close(self) -> None:
        for context in self._contexts:
            await context.close()


@pytest.fixture
async def live_dashboard(
    tmp_path: Path, nlu_client: NLUClient, browser: Browser
) -> AsyncIterator[LiveDashboard]:
    """On SQLite (the browser tests check pages, not storage; the other tests do both)."""
    async with dashboard_parts("sqlite", tmp_path, nlu_client, dashboard_port=free_port()) as (
        settings,
        parts,
    ):
        banner = _Capture()
        async with serving_dashboard(settings, parts, out=banner):  # type: ignore[arg-type]
            live = LiveDashboard(settings.dashboard_url, settings, parts, browser, banner.admin())
            try:
                yield live
            finally:
                await live.close()


class _Capture:
    def __init__(self) -> None:
        self.text = ""

    def write(self, text: str) -> int:
        self.text += text
        return len(text)

    def flush(self) -> None:
        pass

    def admin(self) -> tuple[str, str] | None:
        name = re.search(r"name:\s+(\S+)", self.text)
        password = re.search(r"password:\s+(\S+)", self.text)
        return (name.group(1), password.group(1)) if name and password else None
