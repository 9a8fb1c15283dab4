"""Classifying, once the NLU is back, the messages stored while it was unavailable.

A message that arrived while no NLU server answered got the safe reply and was stored with
`intent_source = "unavailable"`. Its meaning still matters to the moderators (was it a risk
or a crisis?), so this job runs it through the model later and stores the result with
`intent_source = "deferred"`. The text is kept as it was; a message the crisis safety net
caught at the time is not touched (it was never stored as unavailable).
"""

from __future__ import annotations

import asyncio
import logging

from bot.conversation import flags_for
from bot.nlu.client import NLUClient
from bot.storage.store import Store

log = logging.getLogger(__name__)


async def reclassify_pending(store: Store, nlu: NLUClient, batch: int = 100) -> int:
    """Classify stored unavailable messages while the NLU answers; returns how many."""
    done = 0
    while nlu.available:
        pending = await store.unclassified_messages(batch)
        if not pending:
            break
        for message_id, text in pending:
            understanding = await nlu.understand(text)
            if understanding.source == "unavailable":
                log.info("nlu unavailable again: %d messages classified for now", done)
                return done
            if await store.reclassify_message(message_id, understanding, flags_for(understanding)):
                done += 1
    if done:
        log.info("classified %d messages stored while the nlu was unavailable", done)
    return done


async def reclassify_loop(store: Store, nlu: NLUClient, interval_seconds: float) -> None:
    """Run `reclassify_pending` every `interval_seconds` until cancelled."""
    while True:
        try:
            await reclassify_pending(store, nlu)
        except Exception:  # a database hiccup must not end the job for good
            log.exception("reclassifying stored messages failed; retried later")
        await asyncio.sleep(interval_seconds)
