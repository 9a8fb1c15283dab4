"""The content library: testimonies, facts, help resources and the bot's own words.

The running bot reads the library from the database (`database_provider`, with the workflow
in `bot.storage.content_store`); `responses/*.yml` is its import/export format
(`documents`). `load_library` reads a folder into a `Library` and `check_library` reports
every problem with file and line; the same rules check every database revision
(`validation`).
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
