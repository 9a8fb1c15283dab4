"""The bot's HTTP listener: Telegram's webhook, health checks and metrics, on one aiohttp app.

It is separate from the moderators' dashboard (`bot/dashboard/`, its own app and port): this
listener is the one a load balancer or reverse proxy exposes (the webhook path only), the
dashboard stays private. See docs/operations.md.
"""
