"""Building and serving the listener: every route in one place."""

from __future__ import annotations

import logging

from aiohttp import web

from bot.listener.health import Dependencies, healthz, metrics_view, readyz
from bot.listener.webhook import WebhookReceiver

log = logging.getLogger(__name__)

MAX_UPDATE_BYTES = 1 << 20  # an update is a few kilobytes; refuse anything absurd


def build_listener_app(
    dependencies: Dependencies,
    webhook: WebhookReceiver | None = None,
    webhook_path: str = "/telegram/webhook",
) -> web.Application:
    app = web.Application(client_max_size=MAX_UPDATE_BYTES)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz(dependencies))
    app.router.add_get("/metrics", metrics_view(dependencies))
    if webhook is not None:
        app.router.add_post(webhook_path, webhook.handle)
    return app


class Listener:
    """The app on `host:port`, started and stopped with the bot."""

    def __init__(self, app: web.Application, host: str, port: int) -> None:
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=5.0)
        self.host = host
        self.port = port

    async def start(self) -> None:
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = self._runner.addresses[0][1]
        log.info("listening on %s:%d", self.host, self.port)

    async def stop(self) -> None:
        await self._runner.cleanup()
