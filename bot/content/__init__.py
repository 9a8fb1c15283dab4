"""The content library: testimonies, facts, help resources and the bot's own words.

Content lives in `responses/*.yml`; `load_library` reads it into a `Library` and
`check_library` reports every problem with file and line.
"""

from bot.content.loader import (
    REQUIRED_REPLIES,
    CheckReport,
    ContentError,
    check_library,
    load_library,
)
from bot.content.model import STATUSES, Country, Fact, Library, Resource, Source, Testimony

__all__ = [
    "REQUIRED_REPLIES",
    "STATUSES",
    "CheckReport",
    "ContentError",
    "Country",
    "Fact",
    "Library",
    "Resource",
    "Source",
    "Testimony",
    "check_library",
    "load_library",
]
