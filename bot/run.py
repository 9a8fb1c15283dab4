"""`python -m bot run`: the bot and the dashboard, stopped cleanly by Ctrl-C or SIGTERM.

`run_dashboard` is `python -m bot dashboard`: the dashboard alone (with its NLU server, for
try-the-bot), e.g. as its own replica next to bot replicas.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import AsyncIterator, Callable

from bot.dashboard.serve import serving_dashboard
from bot.heap import freeze_start_up_objects
from bot.listener.app import Listener, build_listener_app
from bot.listener.health import Dependencies
from bot.listener.webhook import WebhookReceiver
from bot.nlu.reclassify import reclassify_loop
from bot.retention import retention_loop
from bot.services import Services
from bot.settings import Settings
from bot.storage.user_lock import UserLocks
from bot.telegram.app import build_application, register_webhook, run_polling
from bot.telegram.handlers import FrontEnd
from bot.telegram.journal import UpdateJournal

log = logging.getLogger(__name__)

NOT_CONNECTED_INTRO = """\
TELEGRAM_BOT_TOKEN is not set, so the bot is not connected to Telegram.
To connect it: open Telegram, talk to @BotFather, send /newbot, and put the token it gives
you in .env as TELEGRAM_BOT_TOKEN=... (see README, "Configuration").

Meanwhile the NLU server and the dashboard are running. Open {url} in a browser, log in
and use "Try the bot": the same bot, as test traffic. For a chat in this terminal instead,
run `python -m bot chat` (or `make chat`) in another one. Ctrl-C stops everything.
"""

DRAIN_SECONDS = 20.0
"""At shutdown, how long turns already acknowledged to Telegram may take to finish."""
WEBHOOK_INTRO = (
    "The bot takes Telegram's webhook on port {port}; the dashboard runs separately "
    "(`python -m bot dashboard`). SIGTERM stops it.\n"
)
INTRO_WITH_TELEGRAM = "The bot is connected to Telegram. Dashboard: {url} (Ctrl-C stops both)\n"


def install_stop_signals(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)


async def run(settings: Settings) -> int:
    stop = asyncio.Event()
    install_stop_signals(stop)
    async with (
        Services(settings) as services,
        dashboard_unless_webhook(settings, services),
    ):
        retention = asyncio.create_task(
            retention_loop(
                services.store, settings.retention_days, settings.retention_check_seconds
            )
        )
        reclassify = asyncio.create_task(
            reclassify_loop(services.store, services.nlu, settings.nlu_reclassify_seconds)
        )
        # Requests for a person nobody answered in time: resources to the user, escalated.
        unanswered = asyncio.create_task(
            services.conversation.escalation.unanswered_loop(settings.escalation_check_seconds)
        )
        try:
            if settings.telegram_bot_token and settings.bot_mode == "webhook":
                sys.stdout.write(WEBHOOK_INTRO.format(port=settings.effective_listen_port))
                sys.stdout.flush()
                await serve_webhook(settings, services, stop, freeze_start_up_objects)
            elif settings.telegram_bot_token:
                journal = UpdateJournal(settings.update_journal_path)
                front_end = FrontEnd(services.conversation, settings.pseudonym_secret, journal)
                application = build_application(settings, front_end)
                sys.stdout.write(INTRO_WITH_TELEGRAM.format(url=settings.dashboard_url))
                sys.stdout.flush()
                async with listening(settings, services):
                    await run_polling(
                        application,
                        services.library.current(),
                        stop,
                        journal,
                        on_started=freeze_start_up_objects,
                    )
            else:
                sys.stdout.write(NOT_CONNECTED_INTRO.format(url=settings.dashboard_url))
                sys.stdout.flush()
                freeze_start_up_objects()
                await stop.wait()
        finally:
            for job in (retention, reclassify, unanswered):
                job.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await job
            await services.conversation.escalation.drain()
    log.info("stopped")
    return 0


@contextlib.asynccontextmanager
async def dashboard_unless_webhook(settings: Settings, services: Services) -> AsyncIterator[None]:
    """The dashboard with the bot, except in webhook mode.

    A webhook replica faces the internet (through a proxy) and runs as one of several; the
    moderators' dashboard is private and runs once, as `python -m bot dashboard`.
    """
    if settings.bot_mode == "webhook":
        yield
        return
    async with serving_dashboard(settings, services):
        yield


def dependencies(services: Services) -> Dependencies:
    return Dependencies(services.database, services.nlu, services.library)


@contextlib.asynccontextmanager
async def listening(
    settings: Settings, services: Services, webhook: WebhookReceiver | None = None
) -> AsyncIterator[Listener | None]:
    """The HTTP listener for the block, when the mode or `LISTEN_PORT` asks for one."""
    port = settings.effective_listen_port
    if port is None:
        yield None
        return
    app = build_listener_app(dependencies(services), webhook, settings.webhook_path)
    listener = Listener(app, settings.listen_host, port)
    await listener.start()
    try:
        yield listener
    finally:
        await listener.stop()


async def serve_webhook(
    settings: Settings,
    services: Services,
    stop: asyncio.Event,
    on_started: Callable[[], object] | None = None,
) -> None:
    """Listen for Telegram's posts until `stop`, then finish the turns already acknowledged.

    `on_started` is called once the webhook is registered (`python -m bot run` freezes
    start-up's objects there, `bot.heap`; the tests, which run it in their own process, do not).

    The webhook stays registered at shutdown: other replicas keep serving it, and Telegram
    keeps updates for a replica that restarts.
    """
    front_end = FrontEnd(services.conversation, settings.pseudonym_secret)
    application = build_application(settings, front_end)
    locks = UserLocks(settings.database_url, pool_size=min(settings.concurrent_updates, 20))
    await locks.start()
    receiver = WebhookReceiver(
        application, settings.webhook_secret, settings.pseudonym_secret, locks
    )
    try:
        async with application:
            await application.start()
            async with listening(settings, services, receiver):
                await register_webhook(application, services.library.current(), settings)
                if on_started is not None:
                    on_started()
                await stop.wait()
            await receiver.drain(DRAIN_SECONDS)
            await application.stop()
    finally:
        await locks.close()


DASHBOARD_ONLY_INTRO = "Dashboard: {url} (Ctrl-C stops it)\n"


async def run_dashboard(settings: Settings) -> int:
    stop = asyncio.Event()
    install_stop_signals(stop)
    async with (
        Services(settings) as services,
        serving_dashboard(settings, services),
    ):
        freeze_start_up_objects()
        sys.stdout.write(DASHBOARD_ONLY_INTRO.format(url=settings.dashboard_url))
        sys.stdout.flush()
        await stop.wait()
    log.info("stopped")
    return 0
