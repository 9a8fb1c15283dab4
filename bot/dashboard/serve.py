"""Running the dashboard on DASHBOARD_HOST:DASHBOARD_PORT for as long as a block lasts."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from collections.abc import AsyncIterator
from typing import TextIO

from aiohttp import web

from bot.dashboard.app import ACCOUNTS, SESSIONS, DashboardServices, create_dashboard
from bot.dashboard.audit import record_audit
from bot.settings import Settings

log = logging.getLogger(__name__)

SESSION_PURGE_SECONDS = 3600

FIRST_ADMIN_BANNER = """\
================================================================================
No dashboard admin existed, so one was created. This password is shown only once:

    name:     {name}
    password: {password}

Log in at {url} and choose your own password (the dashboard asks for it).
================================================================================
"""


class DashboardError(RuntimeError):
    """The dashboard cannot start (e.g. its port is taken); the message says what to change."""


@contextlib.asynccontextmanager
async def serving_dashboard(
    settings: Settings, services: DashboardServices, out: TextIO = sys.stdout
) -> AsyncIterator[web.Application]:
    """Serve the dashboard during the block; creates the first admin if there is none."""
    app = create_dashboard(settings, services)
    first = await app[ACCOUNTS].ensure_admin()
    if first is not None:
        name, password = first
        await record_audit(
            services.database,
            actor=None,
            action="account.create",
            target=name,
            detail={"role": "admin", "via": "first run"},
        )
        out.write(
            FIRST_ADMIN_BANNER.format(name=name, password=password, url=settings.dashboard_url)
        )
        out.flush()
    # No access log: paths name conversations (pseudonyms), and the bot's logs stay free of them.
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, settings.dashboard_host, settings.dashboard_port)
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        raise DashboardError(
            f"the dashboard cannot listen on {settings.dashboard_host}:"
            f"{settings.dashboard_port} ({exc.strerror or exc}): set DASHBOARD_PORT to a free "
            "port or DASHBOARD_HOST to an address of this machine"
        ) from exc
    log.info("dashboard at %s", settings.dashboard_url)
    purging = asyncio.create_task(_purge_sessions(app))
    try:
        yield app
    finally:
        purging.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await purging
        await runner.cleanup()


async def _purge_sessions(app: web.Application) -> None:
    while True:
        try:
            await app[SESSIONS].purge_expired()
        except Exception:
            log.exception("could not delete expired dashboard sessions")
        await asyncio.sleep(SESSION_PURGE_SECONDS)
