"""Screenshots of the dashboard taken by the browser tests.

The README shows the ones in `docs/screenshots/`; they are rewritten only by
`make screenshots` (`UPDATE_SCREENSHOTS=1`), so that `make test` leaves the checkout as it was.
Otherwise they go to a scratch folder: the pages are still rendered and captured.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from playwright.async_api import Page

from bot.settings import PROJECT_ROOT

README_SCREENSHOTS = PROJECT_ROOT / "docs" / "screenshots"


def screenshot_folder() -> Path:
    if os.environ.get("UPDATE_SCREENSHOTS") == "1":
        folder = README_SCREENSHOTS
    else:
        folder = Path(tempfile.gettempdir()) / "defector-voices-screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


async def save_screenshot(page: Page, name: str, *, full_page: bool = True) -> Path:
    path = screenshot_folder() / f"{name}.png"
    await page.screenshot(path=str(path), full_page=full_page)
    return path
