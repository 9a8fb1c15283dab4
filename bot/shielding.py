"""Work that must run to its end even when the task awaiting it is cancelled (a shutdown).

Cancelling a task that awaits a database write does not stop the write: a commit handed to a
worker thread, or already sent to the server, may still happen. Work whose effects others
depend on (a group commit settling every turn in it; an alert that, once stored, must also be
posted to the moderators) is therefore awaited to its end, and the cancellation is raised
after.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


async def finish_even_if_cancelled(work: Coroutine[Any, Any, T]) -> T:
    """Await `work` to its end; if the caller was cancelled meanwhile, raise that then."""
    task = asyncio.ensure_future(work)
    cancelled = False
    while not task.done():
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            cancelled = True
    if cancelled:
        raise asyncio.CancelledError
    return task.result()
