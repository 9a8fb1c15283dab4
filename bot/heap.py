"""Keeping the garbage collector's full passes short in the long-running processes.

A full (generation 2) collection walks every container object the process holds, and most of
them are start-up's: the modules and classes of python-telegram-bot, SQLAlchemy and aiohttp,
the started application and its connection pools, the content library, the dashboard's
templates. In the benchmark the bot paused its event loop for 70-86 ms in such a
pass once per run, and every reply in flight waited: a 30-s run at 30 messages a second showed
75-89 ms replies around it (README, "Benchmarks"). Start-up's objects live as long as the
process, so they are moved out of the collector's sight once start-up is done (polling or the
webhook has started); what is created later is collected as before. A content library
replaced later stays in memory once (its cycles are never freed): a bounded cost.
"""

from __future__ import annotations

import gc
import logging

log = logging.getLogger(__name__)


def freeze_start_up_objects() -> int:
    """Collect start-up's garbage, then exempt what survives from later collections.

    Returns how many objects were frozen. Called once start-up is done: objects frozen are
    never collected, so a cycle made garbage later among them would stay (start-up's objects
    are the process's own for its lifetime, which is why that is safe here).
    """
    gc.collect()
    gc.freeze()
    frozen = gc.get_freeze_count()
    log.info("garbage collector: %d start-up objects frozen", frozen)
    return frozen
