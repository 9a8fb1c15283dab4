"""How fast the moderators' inbox is with many conversations (README, "Dashboard").

    .venv/bin/python scripts/bench_inbox.py URL [--users 100000]

URL is a database URL (sqlite+aiosqlite:///... or postgresql+asyncpg://...) of an EMPTY
database: it is filled with invented conversations (`bot.review.demo`), then each inbox query
is timed (best and median of 7 runs), and the whole page through the dashboard's HTTP stack
(logged in as a moderator: session, audit entry, template).
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import CookieJar
from aiohttp.test_utils import TestClient, TestServer

from bot.content.database_provider import DatabaseLibraryProvider
from bot.conversation import Conversation
from bot.dashboard import create_dashboard
from bot.dashboard.accounts import Accounts
from bot.nlu.client import NLUClient
from bot.review.demo import seed_demo
from bot.review.inbox import InboxFilter, inbox_page
from bot.services import open_library
from bot.settings import Settings
from bot.storage.content_store import ContentStore
from bot.storage.database import Database
from bot.storage.store import Store

RUNS = 7


@dataclass
class Parts:
    database: Database
    store: Store
    library: DatabaseLibraryProvider
    conversation: Conversation


async def timed(label: str, run: Callable[[], Awaitable[Any]]) -> None:
    times = []
    for _ in range(RUNS):
        started = time.perf_counter()
        await run()
        times.append((time.perf_counter() - started) * 1000)
    print(f"| {label} | {min(times):.1f} | {statistics.median(times):.1f} |", flush=True)


async def main(url: str, users: int) -> None:
    database = Database(url)
    await database.start()
    started = time.perf_counter()
    written = await seed_demo(database, users, {"claim_good_life": ["demo"]}, days=90)
    print(
        f"seeded {users} conversations, {written} messages in {time.perf_counter() - started:.0f} s"
    )
    deep = None
    page = await inbox_page(database)
    for _ in range(199):  # page 200, the way a moderator would get there
        page = await inbox_page(database, cursor=page.next_cursor)
    deep = page.next_cursor
    print("| query | best ms | median ms |\n|---|---|---|")
    await timed("first page", lambda: inbox_page(database))
    await timed("page 201 (keyset)", lambda: inbox_page(database, cursor=deep))
    for label, where in [
        ("level = crisis", InboxFilter(level="crisis")),
        ("status = new", InboxFilter(status="new")),
        ("intent = claim_good_life", InboxFilter(intent="claim_good_life")),
        ("campaign = school_talk", InboxFilter(campaign="school_talk")),
        ("search, common words", InboxFilter(search="want to go")),
        ("search, no match (reads every message)", InboxFilter(search="zzz no such words")),
    ]:
        await timed(label, lambda where=where: inbox_page(database, where))

    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings.from_env({"DATA_DIR": tmp, "PSEUDONYM_SECRET": "b" * 40})
        stack = contextlib.AsyncExitStack()
        async with stack:
            store = Store(database)
            library = await open_library(ContentStore(database), settings, stack)
            nlu = NLUClient("http://127.0.0.1:9", "", 1.0)
            parts = Parts(database, store, library, Conversation(settings, store, nlu, library))
            app = create_dashboard(settings, parts)  # type: ignore[arg-type]
            server = TestServer(app, host="127.0.0.1")
            await server.start_server()
            jar = CookieJar(unsafe=True, treat_as_secure_origin=[str(server.make_url("/"))])
            client: TestClient[Any, Any] = TestClient(server, cookie_jar=jar)
            await client.start_server()
            await Accounts(database).create("bench-moderator", "moderator", "bench password 123")
            html = await (await client.get("/login")).text()
            token = html.split('name="csrf-token" content="')[1].split('"')[0]
            await client.post(
                "/login",
                data={
                    "name": "bench-moderator",
                    "password": "bench password 123",
                    "csrf_token": token,
                },
            )

            async def get(path: str) -> None:
                response = await client.get(path)
                assert response.status == 200, response.status
                await response.read()

            await timed("HTTP: /conversations", lambda: get("/conversations"))
            await timed("HTTP: page 201", lambda: get(f"/conversations?after={deep}"))
            await timed(
                "HTTP: /conversations?level=crisis", lambda: get("/conversations?level=crisis")
            )
            await client.close()
            await server.close()
    await database.close()


if __name__ == "__main__":
    count = int(sys.argv[sys.argv.index("--users") + 1]) if "--users" in sys.argv else 100_000
    asyncio.run(main(sys.argv[1], count))
