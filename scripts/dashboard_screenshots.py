"""Screenshots of the moderators' review pages for the README, on invented demo data.

    .venv/bin/python scripts/dashboard_screenshots.py [docs/screenshots]

Seeds a temporary SQLite database with `bot.review.demo` (nothing real), serves the dashboard
on a free port, logs in as a moderator in headless chromium (/usr/bin/chromium) and saves
inbox.png, transcript.png, unsure-messages.png, nlu-models.png and statistics.png.
With `--serve` it only serves the demo and prints the URL and a moderator's password.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from playwright.async_api import async_playwright

from bot.content.database_provider import DatabaseLibraryProvider
from bot.content.loader import load_library
from bot.conversation import Conversation
from bot.dashboard.accounts import Accounts
from bot.dashboard.serve import serving_dashboard
from bot.nlu.client import NLUClient
from bot.nlu.evaluation import Scores
from bot.review.demo import seed_demo
from bot.review.evaluations import record_scores
from bot.review.transcript import add_note, annotate
from bot.services import open_library
from bot.settings import Settings
from bot.storage.content_store import ContentStore
from bot.storage.database import Database
from bot.storage.store import Store

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
PASSWORD = "demo password for screenshots"  # noqa: S105 - a throwaway demo database


@dataclass
class Parts:
    database: Database
    store: Store
    library: DatabaseLibraryProvider
    conversation: Conversation


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def scores(macro_f1: float, risk: float, crisis: float, alarms: float) -> Scores:
    return Scores(299, 0.93, macro_f1, risk, crisis, alarms, 0.85)


async def fill(database: Database, settings: Settings) -> None:
    library = load_library(settings.content_dir)
    testimonies: dict[str, list[str]] = {}
    for testimony in library.approved_testimonies():
        for claim in testimony.claims:
            testimonies.setdefault(claim, []).append(testimony.id)
    await seed_demo(database, 3000, testimonies, days=30)
    heldout = "tests/data/nlu_heldout.yml"
    await record_scores(
        database, "nlu-5d1c0e2a9b11.tar.gz", heldout, scores(0.909, 0.943, 0.85, 0.007)
    )
    await record_scores(
        database, "nlu-82fd02156b0f.tar.gz", heldout, scores(0.929, 0.895, 0.95, 0.013)
    )
    await record_scores(
        database, "nlu-3a7e44c0d2f5.tar.gz", heldout, scores(0.936, 0.924, 0.95, 0.013)
    )
    await record_scores(
        database, "nlu-b61f90e13c08.tar.gz", heldout, scores(0.921, 0.905, 0.925, 0.02)
    )
    async with database.session() as session:
        from sqlalchemy import select

        from bot.storage.models import Message

        ids = (
            await session.scalars(
                select(Message.id).where(Message.intent == "nlu_fallback").limit(12)
            )
        ).all()
    for message_id in ids[:6]:
        await annotate(database, message_id, "sympathy_general", by="moderator-ana")


async def main(out: Path, serve_only: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings.from_env(
            {
                "DATA_DIR": tmp,
                "PSEUDONYM_SECRET": "screenshots-" + "x" * 40,
                "DASHBOARD_PORT": str(free_port()),
            }
        )
        database = Database(settings.database_url)
        await database.start()
        await fill(database, settings)
        store = Store(database)
        stack = contextlib.AsyncExitStack()
        library = await open_library(ContentStore(database), settings, stack)
        nlu = NLUClient("http://127.0.0.1:9", "", 1.0)  # not used by these pages
        parts = Parts(database, store, library, Conversation(settings, store, nlu, library))
        await Accounts(database).create("moderator-ana", "moderator", PASSWORD)
        async with stack, serving_dashboard(settings, parts, out=sys.stderr):  # type: ignore[arg-type]
            url = settings.dashboard_url
            if serve_only:
                print(f"{url}  moderator-ana / {PASSWORD}", flush=True)
                await asyncio.Event().wait()
            await shoot(url, out, database)
        await database.close()


async def shoot(url: str, out: Path, database: Database) -> None:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        page = await browser.new_page(viewport={"width": 1280, "height": 900})
        await page.goto(url + "login")
        await page.fill("input[name=name]", "moderator-ana")
        await page.fill("input[name=password]", PASSWORD)
        async with page.expect_navigation():
            await page.click("button[type=submit]")
        if page.url != url:
            raise RuntimeError(f"login failed: {page.url}")
        await page.goto(url + "conversations")
        await page.screenshot(path=out / "inbox.png")
        await page.click("table.inbox tbody tr:first-child a")
        await page.wait_for_load_state()
        pseudonym = page.url.rsplit("/", 1)[1]
        user_id = await _user_id(database, pseudonym)
        await add_note(
            database, user_id, "Said he is safe now; check again tomorrow.", "moderator-ana"
        )
        await page.reload()
        await page.screenshot(path=out / "transcript.png", full_page=True)
        await page.goto(url + "annotations")
        await page.screenshot(path=out / "unsure-messages.png")
        await page.goto(url + "nlu/models")
        await page.screenshot(path=out / "nlu-models.png")
        await page.goto(url + "statistics")
        await page.screenshot(path=out / "statistics.png", full_page=True)
        await browser.close()


async def _user_id(database: Database, pseudonym: str) -> int:
    from bot.review.transcript import user_id_of

    return await user_id_of(database, pseudonym)


if __name__ == "__main__":
    import logging

    logging.basicConfig(level=logging.ERROR)
    args = [a for a in sys.argv[1:] if a != "--serve"]
    target = Path(args[0]) if args else ROOT / "docs" / "screenshots"
    target.mkdir(parents=True, exist_ok=True)
    asyncio.run(main(target, "--serve" in sys.argv))
