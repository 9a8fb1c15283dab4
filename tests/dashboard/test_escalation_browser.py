"""The moderators' alert queue in chromium: it updates without a reload; screenshots."""

from __future__ import annotations

from bot.conversation import TextIn
from tests.dashboard.conftest import LiveDashboard
from tests.dashboard.screenshots import save_screenshot
from tests.dashboard.test_escalation_views import USER_CHAT, user_in_crisis


async def test_the_queue_updates_in_the_browser_without_a_reload(
    live_dashboard: LiveDashboard,
) -> None:
    page = await live_dashboard.page("moderator")
    await page.goto(live_dashboard.url + "escalation")
    assert await page.locator("#alert-queue tbody tr.empty").count() == 1
    marker = await page.evaluate("window.__marker = 'still the same page'")
    assert marker == "still the same page"

    conversation = live_dashboard.parts.conversation
    pseudonym = await user_in_crisis(conversation.escalation, conversation, USER_CHAT + 2)
    row = page.locator(f'#alert-queue a[href="/escalation/{pseudonym}"]')
    await row.wait_for(timeout=15_000)
    assert await page.evaluate("window.__marker") == "still the same page", "no reload"
    assert "(1)" in await page.title()
    await save_screenshot(page, "escalation_queue", full_page=True)

    await page.click("#alert-queue button:has-text('Acknowledge')")
    await page.wait_for_load_state()
    assert "acknowledged by" in await page.locator("#alert-queue tbody").inner_text()

    await row.click()
    await page.wait_for_load_state()
    assert await page.locator("#risk-level").inner_text() == "crisis"
    # A new message from the user shows up on the open page, as text.
    await conversation.handle(pseudonym, TextIn("<b>still</b> here"))
    await page.locator("#conversation-live li.fresh", has_text="<b>still</b> here").wait_for(
        timeout=15_000
    )
    assert await page.evaluate("document.querySelectorAll('#conversation-live b').length") == 0
    await save_screenshot(page, "escalation_conversation", full_page=True)
