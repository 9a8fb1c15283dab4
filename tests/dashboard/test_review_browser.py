"""The moderators' review in a real browser (headless chromium through Playwright): open a
flagged conversation, correct an intent, find the correction in the training-data export.

Also writes the README's screenshots of the inbox, a transcript and the statistics
(docs/screenshots/), on invented demo conversations.
"""

from __future__ import annotations

import re
from pathlib import Path

from playwright.async_api import expect

from bot.content.loader import load_library
from bot.review.demo import seed_demo
from tests.dashboard.conftest import LiveDashboard
from tests.dashboard.screenshots import save_screenshot as screenshot
from tests.dashboard.test_browser import watch_for_script
from tests.review_data import press, say
from tests.test_commands import run_bot_command

SAID = "my cousin says over there everyone gets respect and a salary"


async def test_a_moderator_corrects_an_intent_and_the_export_has_it(
    live_dashboard: LiveDashboard, tmp_path: Path
) -> None:
    settings = live_dashboard.settings
    testimonies: dict[str, list[str]] = {}
    for testimony in load_library(settings.content_dir).approved_testimonies():
        for claim in testimony.claims:
            testimonies.setdefault(claim, []).append(testimony.id)
    await seed_demo(live_dashboard.parts.database, 400, testimonies, days=14)
    store = live_dashboard.parts.store
    await say(store, "flagged-cousin", "salam, who is this", "greet", 0.91)
    await say(store, "flagged-cousin", SAID, "claim_good_life", 0.58, reply_content=("t-1",))
    await press(store, "flagged-cousin", "another_story")

    page = await live_dashboard.page("moderator")
    problems = watch_for_script(page)
    await page.click("nav >> text=Inbox")
    await expect(page.locator("table.inbox tbody tr")).to_have_count(50)
    await expect(page.locator("table.inbox tbody tr").first).to_contain_text("crisis")
    await screenshot(page, "inbox")

    await page.fill("input[name=q]", "respect and a salary")
    await page.click("form.filters button[type=submit]")
    rows = page.locator("table.inbox tbody tr")
    await expect(rows).to_have_count(1)
    await expect(rows.first).to_contain_text("low")  # the risk level of one claim
    await rows.first.locator("a").first.click()
    await expect(page).to_have_url(re.compile(r"/conversations/flagged-cousin$"))

    said = page.locator("li.by-user").nth(1)
    await expect(said.locator(".meta")).to_contain_text("claim_good_life (0.58)")
    await said.locator("select[name=intent]").select_option("sympathy_general")
    await said.locator("form.annotate button").click()
    await expect(page.locator(".notice")).to_have_text("Saved: intent recorded.")
    await expect(page.locator("li.by-user").nth(1)).to_contain_text("corrected to sympathy_general")
    await page.fill("textarea[name=text]", "Asked about his cousin; follow up if he writes again.")
    await page.click("text=Add note")
    await expect(page.locator("ul.notes li")).to_contain_text("follow up if he writes again")
    await page.click("text=Mark reviewed")
    await expect(page.locator(".notice")).to_have_text("Saved: marked as reviewed.")
    await screenshot(page, "transcript")

    await page.click("nav >> text=Statistics")
    await expect(page.locator("svg.chart")).to_have_count(3)
    await screenshot(page, "statistics")
    assert problems == []

    out = tmp_path / "annotations.yml"
    env = {"DATA_DIR": str(tmp_path), "DATABASE_URL": settings.database_url, "PATH": "/usr/bin"}
    code, stdout, stderr = await run_bot_command(
        ["nlu", "export-annotations", "--out", str(out)], env
    )
    assert code == 0, stderr
    assert "sympathy_general 1" in stdout
    assert f"- intent: sympathy_general\n  examples: |\n    - {SAID}\n" in out.read_text()
