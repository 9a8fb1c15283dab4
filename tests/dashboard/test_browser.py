"""The dashboard in a real browser (headless Debian chromium, through Playwright).

Also writes the screenshots shown in the README (docs/screenshots/*.png).
"""

from __future__ import annotations

import re
from pathlib import Path

from playwright.async_api import Page, expect

from bot.storage.pseudonym import pseudonymise
from tests.dashboard.conftest import LiveDashboard
from tests.dashboard.screenshots import save_screenshot as screenshot


def watch_for_script(page: Page) -> list[str]:
    """Dialogs opened and CSP violations reported by the page (both must stay empty)."""
    problems: list[str] = []
    page.on("dialog", lambda dialog: problems.append(f"dialog: {dialog.message}"))
    page.on(
        "console",
        lambda message: (
            problems.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    return problems


async def test_first_admin_logs_in_changes_the_password_and_uses_try_the_bot(
    live_dashboard: LiveDashboard,
) -> None:
    assert live_dashboard.first_admin is not None
    name, password = live_dashboard.first_admin
    page = await live_dashboard.new_page()
    problems = watch_for_script(page)

    await page.goto(live_dashboard.url)
    await expect(page).to_have_url(re.compile(r"/login\?next="))
    await screenshot(page, "login")
    await page.fill("input[name=name]", name)
    await page.fill("input[name=password]", "not the password at all")
    await page.click("button[type=submit]")
    await expect(page.locator(".error")).to_have_text("Wrong name or password.")

    await live_dashboard.log_in(page, name, password)
    # A password chosen by the machine must be replaced before anything else.
    await expect(page).to_have_url(live_dashboard.url + "account/password")
    await page.goto(live_dashboard.url + "try")
    await expect(page).to_have_url(live_dashboard.url + "account/password")
    new_password = "my own passphrase, long enough"
    await page.fill("input[name=current]", password)
    await page.fill("input[name=new]", new_password)
    await page.fill("input[name=repeat]", new_password)
    await page.click("main button[type=submit]")
    await expect(page.locator(".notice")).to_have_text("Your password was changed.")
    await screenshot(page, "home-admin")

    # Try the bot, with JavaScript: messages and buttons without reloading.
    await page.click("nav >> text=Try the bot")
    await page.fill("#chat-text", "/start")
    await page.press("#chat-text", "Enter")
    await expect(page.locator(".from-bot .bubble").last).to_contain_text("the test team")
    await page.fill("#chat-text", "the dawla protects the sunnis")
    await page.press("#chat-text", "Enter")
    await expect(page.locator(".from-bot .meta").last).to_have_text("counter_message")
    buttons = page.locator("#chat-buttons button")
    await expect(buttons).to_have_count(3)
    await buttons.nth(1).click()  # Where can I get help?
    await expect(page.locator(".from-bot .meta").last).not_to_have_text("counter_message")
    await page.reload()  # the server kept everything: history and the buttons on screen
    await expect(page.locator(".from-user .bubble")).to_have_count(3)
    await screenshot(page, "try-the-bot")

    # The old password no longer works; the new one does.
    other = await live_dashboard.new_page()
    await live_dashboard.log_in(other, name, password)
    await expect(other.locator(".error")).to_have_text("Wrong name or password.")
    await live_dashboard.log_in(other, name, new_password)
    await expect(other).to_have_url(live_dashboard.url)

    messages = await live_dashboard.parts.store.messages_for(
        pseudonymise(-1, live_dashboard.settings.pseudonym_secret)
    )
    assert len(messages) == 6
    assert all(m.is_test for m in messages)
    assert problems == []


async def test_hostile_text_stays_text_in_the_browser(live_dashboard: LiveDashboard) -> None:
    page = await live_dashboard.page("moderator")
    problems = watch_for_script(page)
    await page.goto(live_dashboard.url + "try")
    hostile = [
        "<script>alert('script')</script>",
        "<img src=x onerror=\"alert('img')\">",
        "javascript:alert('link')",
        "\u202eevil.exe",
    ]
    for number, text in enumerate(hostile, start=1):
        await page.fill("#chat-text", text)
        await page.press("#chat-text", "Enter")
        await expect(page.locator(".from-user .bubble").last).to_have_text(
            text.replace("\u202e", "[U+202E]")
        )
        await expect(page.locator(".from-bot")).to_have_count(number)  # answered
    await page.reload()  # and again when the server renders them
    bubbles = page.locator(".from-user .bubble")
    await expect(bubbles).to_have_count(4)
    assert await bubbles.nth(0).inner_text() == hostile[0]
    assert await bubbles.nth(1).inner_text() == hostile[1]
    assert await bubbles.nth(3).inner_text() == "[U+202E]evil.exe"
    assert await page.locator("main img").count() == 0
    assert await page.locator("a[href^='javascript']").count() == 0
    assert await page.evaluate("typeof window.__pwned") == "undefined"
    assert problems == []


async def test_roles_see_only_their_pages(live_dashboard: LiveDashboard) -> None:
    editor_name = "eli"
    stranger = await live_dashboard.new_page()
    await live_dashboard.log_in(stranger, editor_name, "a guess that is wrong")
    editor = await live_dashboard.page("content_editor", name=editor_name)
    links = await editor.locator("header nav a").all_inner_texts()
    assert "Audit log" not in links
    response = await editor.goto(live_dashboard.url + "admin/audit")
    assert response is not None and response.status == 403
    await expect(editor.locator("h1")).to_have_text("403 Forbidden")

    admin = await live_dashboard.page("admin", name="amira")
    await admin.click("nav >> text=Audit log")
    await expect(admin.locator("table.data tbody tr").first).to_contain_text("login.ok")
    await screenshot(admin, "audit-log")
    async with admin.expect_download() as download_info:
        await admin.click("text=Export CSV")
    download = await download_info.value
    target = Path(await download.path())
    assert target.read_text().startswith("id,created_at,actor,action,target,detail,remote_addr")
    await admin.click("nav >> text=Accounts")
    await expect(admin.locator("table.data")).to_contain_text(editor_name)
    await screenshot(admin, "accounts")
