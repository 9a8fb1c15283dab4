"""`/healthz` (the process answers) and `/readyz` (it can serve users), and `/metrics`.

A load balancer sends traffic only to ready replicas; an orchestrator restarts one that is not
healthy. Readiness checks what a turn needs: the database, the NLU server, a loaded content
library. The NLU being down is survivable (the bot answers safely), but a replica without it
should not take traffic while others have it.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
from sqlalchemy import text

from bot.content.database_provider import LibrarySource
from bot.nlu.client import NLUClient
from bot.observability import metrics
from bot.storage.database import Database

log = logging.getLogger(__name__)

CHECK_TIMEOUT_SECONDS = 3.0

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class Dependencies:
    """What readiness and metrics look at."""

    database: Database
    nlu: NLUClient
    library: LibrarySource


async def healthz(_: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def _check_database(database: Database) -> None:
    async with database.engine.connect() as connection:
        await connection.execute(text("SELECT 1"))


async def _check_nlu(nlu: NLUClient) -> None:
    await nlu.status()


async def _check_content(library: LibrarySource) -> None:
    library.current()


async def readiness(dependencies: Dependencies) -> dict[str, str]:
    """`{"database": "ok" | "<error type>", "nlu": ..., "content": ...}`."""
    checks = {
        "database": _check_database(dependencies.database),
        "nlu": _check_nlu(dependencies.nlu),
        "content": _check_content(dependencies.library),
    }
    results: dict[str, str] = {}
    for name, check in checks.items():
        try:
            await asyncio.wait_for(check, CHECK_TIMEOUT_SECONDS)
            results[name] = "ok"
        except Exception as exc:  # the type is enough to act on; messages may hold URLs
            results[name] = type(exc).__name__
    return results


def readyz(dependencies: Dependencies) -> Handler:
    async def handler(_: web.Request) -> web.Response:
        results = await readiness(dependencies)
        ready = all(value == "ok" for value in results.values())
        if not ready:
            log.warning("not ready: %s", json.dumps(results))
        return web.json_response(
            {"status": "ready" if ready else "not ready", "checks": results},
            status=200 if ready else 503,
        )

    return handler


def metrics_view(dependencies: Dependencies) -> Handler:
    async def handler(_: web.Request) -> web.Response:
        await metrics.refresh_queue_gauges(dependencies.database)
        return web.Response(
            body=generate_latest(REGISTRY), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )

    return handler
