"""Storage: users by pseudonym, their messages, processed updates; SQLite or PostgreSQL."""

from bot.storage import content_models as _content_models  # noqa: F401 - registers its tables
from bot.storage import review_models as _review_models  # noqa: F401 - registers its tables
from bot.storage.database import Database, StorageUnavailable
from bot.storage.pseudonym import pseudonymise
from bot.storage.store import Store, StoredMessage

__all__ = ["Database", "StorageUnavailable", "Store", "StoredMessage", "pseudonymise"]
