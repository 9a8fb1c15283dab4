"""Deleting transcripts older than `RETENTION_DAYS`, on a schedule.

Keeping less is the strongest privacy protection these users have; the job runs at start-up
and then every `RETENTION_CHECK_SECONDS` while the bot runs.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

from bot.storage.store import Store

log = logging.getLogger(__name__)


async def purge_expired(store: Store, retention_days: int) -> int:
    cutoff = datetime.now(UTC) - timedelta(days=retention_days)
    deleted = await store.delete_expired(cutoff)
    if deleted:
        log.info("retention: deleted %d messages older than %d days", deleted, retention_days)
    return deleted


async def retention_loop(store: Store, retention_days: int, interval_seconds: float) -> None:
    """Run until cancelled; a failed run is logged and retried at the next interval."""
    while True:
        try:
            await purge_expired(store, retention_days)
        except Exception:
            log.exception("retention run failed; will retry")
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            # A cancel that arrived during the database work can be swallowed on the way
            # out (seen with VACUUM FULL on asyncpg): honour it instead of sleeping an hour.
            raise asyncio.CancelledError
        await asyncio.sleep(interval_seconds)
