"""The content editor's pages: browse, create with field errors, preview, review, history.

HTTP tests run on SQLite and PostgreSQL (`dashboard` fixture). The browser test drives Debian's
chromium: an editor writes a testimony, an admin approves it, and a user of the running bot
(Telegram emulator) gets it, without a restart; it also saves the README's screenshots.
"""

from __future__ import annotations

import asyncio
import html
import re
import time
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, Page

from bot.dashboard.audit import AuditFilter, audit_records
from bot.nlu.server import LocalNLUServer
from tests.conftest import free_port, running_bot
from tests.content_helpers import CLAIM, CLAIM_MESSAGE, mark_other_stories_seen, new_testimony
from tests.dashboard.conftest import PASSWORD, DashboardParts, DashboardUnderTest, _Capture
from tests.dashboard.screenshots import save_screenshot


def form_for_testimony(key: str, token: str, **changes: Any) -> dict[str, Any]:
    data = new_testimony()
    form: dict[str, Any] = {
        "csrf_token": token,
        "kind": "testimony",
        "key": key,
        "action": "save",
        "form": data["form"],
        "text": data["text"],
        "claims": CLAIM,
        "speaker": data["speaker"],
        "source.title": data["source"]["title"],
        "source.publisher": data["source"]["publisher"],
        "source.date": data["source"]["date"],
        "source.url": data["source"]["url"],
        "language": data["language"],
        "checked": data["checked"],
        "comment": "Checked on the publisher's page.",
    }
    form.update(changes)
    return form


def field_error_after(page: str, field: str) -> str:
    """The error message shown right after the input named `field`."""
    found = re.search(
        rf'name="{re.escape(field)}"[^>]*>(?:[^<]*</textarea>)?\s*'
        r'(?:<span class="hint">[^<]*</span>)?\s*'
        r'<span class="field-error"[^>]*>([^<]+)</span>',
        page,
    )
    assert found, f"no error shown next to {field}"
    return html.unescape(found.group(1))


async def test_the_library_lists_and_filters_the_imported_content(
    dashboard: DashboardUnderTest,
) -> None:
    moderator = await dashboard.client("moderator")
    page = await (await moderator.get("/content?kind=resource&country=DE")).text()
    assert "de-bamf-beratungsstelle" in page
    assert "gb-act-early" not in page
    testimonies = await (await moderator.get(f"/content?claim={CLAIM}&status=approved")).text()
    assert "icsr-not-protecting-but-killing" in testimonies
    assert "New item" not in testimonies, "moderators may look, not edit"


async def test_an_id_from_a_transcript_leads_to_its_item(dashboard: DashboardUnderTest) -> None:
    moderator = await dashboard.client("moderator")
    found = await moderator.get("/content/de-bamf-beratungsstelle", allow_redirects=False)
    assert found.headers["Location"] == "/content/resource/de-bamf-beratungsstelle"
    assert (await moderator.get("/content/no-such-item")).status == 404
    assert (await moderator.get("/content/new")).status == 403, "moderators may not edit"


async def test_a_testimony_with_errors_is_shown_again_with_each_error_at_its_field(
    dashboard: DashboardUnderTest,
) -> None:
    editor = await dashboard.client("content_editor")
    token = await dashboard.csrf(editor, "/content/new")
    form = form_for_testimony(
        "Not Kebab", token, text='"Already quoted."', **{"source.url": "example.org"}
    )
    response = await editor.post("/content/new", data=form)
    page = await response.text()
    assert response.status == 422
    assert "must be kebab-case" in field_error_after(page, "key")
    assert "the layout adds them" in field_error_after(page, "text")
    assert "must start with https://" in field_error_after(page, "source.url")
    assert "Already quoted." in page, "what was typed is kept"
    assert (await editor.get("/content/testimony/Not Kebab")).status == 404


async def test_the_preview_button_shows_the_telegram_message_without_saving(
    dashboard: DashboardUnderTest,
) -> None:
    editor = await dashboard.client("content_editor")
    token = await dashboard.csrf(editor, "/content/new")
    response = await editor.post(
        "/content/new", data=form_for_testimony("previewed", token, action="preview")
    )
    page = html.unescape(await response.text())
    assert response.status == 200
    assert f"“{new_testimony()['text']}”" in page
    library = dashboard.parts.library.current()
    for label in ("button_another_story", "button_help", "button_human"):
        assert f">{library.reply(label)}</span>" in page
    assert (await editor.get("/content/testimony/previewed")).status == 404


async def test_review_by_another_person_with_history_diff_and_audit(
    dashboard: DashboardUnderTest,
) -> None:
    author = await dashboard.client("content_editor")
    reviewer = await dashboard.client("content_editor")
    token = await dashboard.csrf(author, "/content/new")
    created = await author.post(
        "/content/new", data=form_for_testimony("reviewed-story", token), allow_redirects=False
    )
    assert created.status == 303
    url = "/content/testimony/reviewed-story"
    assert created.headers["Location"].startswith(url)

    submitted = await author.post(f"{url}/submit", data={"csrf_token": token})
    assert submitted.status == 200  # followed the redirect to the item's page
    refused = await author.post(f"{url}/approve", data={"csrf_token": token})
    assert refused.status == 409
    assert "another person must approve it" in html.unescape(await refused.text())

    other = await dashboard.csrf(reviewer, url)
    approved = await reviewer.post(f"{url}/approve", data={"csrf_token": other})
    assert "Approved: users get it within seconds." in await approved.text()

    edited = form_for_testimony("reviewed-story", token, text="They said they protected us. Lies.")
    edited["base_revision"] = "1"
    assert (await author.post(f"{url}/edit", data=edited)).status == 200
    page = await (await reviewer.get(url)).text()
    assert "Users get revision 1; revision 2 is draft." in page
    assert "<del>They did not.</del>" in page and "<ins>Lies.</ins>" in page

    entries = await audit_records(
        dashboard.parts.database, AuditFilter(target="testimony/reviewed-story")
    )
    assert [(e.action, e.actor) for e in entries] == [
        ("content.create", author.account.name),  # type: ignore[attr-defined]
        ("content.submit", author.account.name),  # type: ignore[attr-defined]
        ("content.approve", reviewer.account.name),  # type: ignore[attr-defined]
        ("content.edit", author.account.name),  # type: ignore[attr-defined]
    ]


async def test_retiring_a_reply_the_bot_needs_is_refused_on_the_page(
    dashboard: DashboardUnderTest,
) -> None:
    admin = await dashboard.client("admin")
    token = await dashboard.csrf(admin, "/content/reply/welcome")
    response = await admin.post("/content/reply/welcome/retire", data={"csrf_token": token})
    assert response.status == 409
    assert "missing required reply &#39;welcome&#39;" in await response.text()


# --- in a real browser, with the real bot ---------------------------------------------------


@pytest.mark.e2e
async def test_an_editor_writes_a_testimony_an_admin_approves_it_and_a_user_gets_it(
    tmp_path: Path, nlu_server: LocalNLUServer, browser: Browser
) -> None:
    async with running_bot("sqlite", tmp_path, nlu_server, dashboard_port=free_port()) as bot:
        from bot.dashboard.accounts import Accounts
        from bot.dashboard.serve import serving_dashboard

        parts = DashboardParts(bot.store.database, bot.store, bot.library, bot.conversation)
        async with serving_dashboard(bot.settings, parts, out=_Capture()):
            base = bot.settings.dashboard_url
            accounts = Accounts(bot.store.database)
            editor = await accounts.create("editor-amal", "content_editor", PASSWORD)
            admin = await accounts.create("admin-jonas", "admin", PASSWORD)
            user = bot.new_user()
            await mark_other_stories_seen(bot, user)
            quote = "Nobody there was protected. We were only used."

            page = await _logged_in(browser, base, editor.name)
            await page.goto(base + "content?kind=testimony")
            await save_screenshot(page, "content-library", full_page=False)
            await page.click("text=New item")
            await page.fill("input[name=key]", "browser-only-used")
            await page.select_option("select[name=form]", "quote")
            await page.fill("textarea[name=text]", quote)
            await page.check(f"input[name=claims][value={CLAIM}]")
            data = new_testimony()
            await page.fill("textarea[name=speaker]", data["speaker"])
            for name in ("title", "publisher", "date", "url"):
                await page.fill(f"input[name='source.{name}']", data["source"][name])
            await page.fill("input[name=language]", "en")
            await page.click("button[value=preview]")
            assert f"“{quote}”" in await page.inner_text(".tg-bubble")
            await save_screenshot(page, "content-editor", full_page=True)
            await page.click("button[value=save]")
            assert "/content/testimony/browser-only-used" in page.url
            await page.click("text=Submit for review")
            assert "Approve revision" not in await page.content(), "the author cannot approve"

            reviewer = await _logged_in(browser, base, admin.name)
            await reviewer.goto(base + "content/testimony/browser-only-used")
            await reviewer.click("text=Approve revision 1")
            assert "Approved: users get it within seconds." in await reviewer.inner_text("main")

            started = time.monotonic()
            while "browser-only-used" not in {t.id for t in bot.library.current().testimonies}:
                assert time.monotonic() - started < 2.0, "not served within 2 s of approval"
                await asyncio.sleep(0.05)
            bot.emulator.push_text(user, CLAIM_MESSAGE)
            messages = await bot.emulator.wait_for_messages(user, 1, timeout=20)
            assert f"“{quote}”" in messages[0]["text"]

            # An edit waits for review; the page shows what changed, word by word.
            await page.goto(base + "content/testimony/browser-only-used/edit")
            await page.fill("textarea[name=text]", "Nobody there was protected. We were used.")
            await page.click("button[value=save]")
            assert "revision 2 is draft" in await page.inner_text("main")
            await save_screenshot(page, "content-history", full_page=True)


async def _logged_in(browser: Browser, base: str, name: str) -> Page:
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    await page.goto(base + "login")
    await page.fill("input[name=name]", name)
    await page.fill("input[name=password]", PASSWORD)
    await page.click("button[type=submit]")
    await page.wait_for_load_state()
    return page
