"""Prometheus metrics of the bot, exposed at `/metrics` on the bot's HTTP listener.

Labels are bounded sets chosen by the code (message kinds, intents from the model's domain,
reply kinds from the policy), never user text, pseudonyms or Telegram ids, so a scrape shows
how the bot is doing and nothing about who talks to it.

The metrics live in the process-wide default registry, as prometheus-client intends; several
bots in one test process share them, so tests compare values before and after.
"""

from __future__ import annotations

import logging

from prometheus_client import Counter, Gauge, Histogram
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError

from bot.storage.database import Database
from bot.storage.models import Alert, User

log = logging.getLogger(__name__)

_LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

MESSAGES_IN = Counter(
    "defector_voices_messages_in_total",
    "Messages and button presses received, by kind (text, command, callback, non_text).",
    ["kind"],
)
MESSAGES_OUT = Counter(
    "defector_voices_messages_out_total",
    "Replies sent, by reply kind (counter_message, safety_self_harm, fallback, ...).",
    ["kind"],
)
INTENTS = Counter(
    "defector_voices_intents_total",
    "Text messages by the intent they were understood as, and by whom (nlu, safety_net, "
    "unavailable).",
    ["intent", "source"],
)
REPLY_LATENCY = Histogram(
    "defector_voices_reply_seconds",
    "Time from an incoming event to its reply being composed and recorded (one turn).",
    buckets=_LATENCY_BUCKETS,
)
NLU_LATENCY = Histogram(
    "defector_voices_nlu_seconds",
    "Time the NLU step took (model and safety net), including failed requests.",
    buckets=_LATENCY_BUCKETS,
)
NLU_ERRORS = Counter(
    "defector_voices_nlu_errors_total",
    "Text messages answered with the safe reply because the NLU server failed or timed out.",
)
DATABASE_ERRORS = Counter(
    "defector_voices_database_errors_total",
    "Conversation turns that failed on a database error.",
)
WEBHOOK_REQUESTS = Counter(
    "defector_voices_webhook_requests_total",
    "Requests to the webhook by outcome (accepted, forbidden, malformed, unavailable).",
    ["outcome"],
)
WEBHOOK_ACK_LATENCY = Histogram(
    "defector_voices_webhook_ack_seconds",
    "Time from a webhook post's arrival to the bot's 200: mostly the wait for the user's "
    "previous turn to finish (one user's turns run one at a time, across replicas).",
    buckets=_LATENCY_BUCKETS,
)
QUEUE = Gauge(
    "defector_voices_queue",
    "What waits for the team, read from the database at scrape time: open_alerts, "
    "acknowledged_alerts, takeover_waiting (users waiting for a person), takeover_active "
    "(users a moderator has taken over).",
    ["queue"],
)


def observe_understanding(intent: str | None, source: str) -> None:
    INTENTS.labels(intent=intent or "none", source=source).inc()
    if source == "unavailable":
        NLU_ERRORS.inc()


def observe_turn(incoming_kind: str, reply_kinds: list[str], seconds: float) -> None:
    MESSAGES_IN.labels(kind=incoming_kind).inc()
    for kind in reply_kinds:
        MESSAGES_OUT.labels(kind=kind).inc()
    REPLY_LATENCY.observe(seconds)


async def refresh_queue_gauges(database: Database) -> None:
    """Read the team's queues from the database into `QUEUE` (called before each scrape)."""
    alerts = select(Alert.status, func.count()).group_by(Alert.status)
    handling = select(User.handling, func.count()).group_by(User.handling)
    try:
        async with database.session() as session:
            by_status = dict((await session.execute(alerts)).tuples().all())
            by_handling = dict((await session.execute(handling)).tuples().all())
    except SQLAlchemyError as exc:
        DATABASE_ERRORS.inc()
        log.warning("queue gauges not refreshed: %s", type(exc).__name__)
        return
    QUEUE.labels(queue="open_alerts").set(by_status.get("open", 0))
    QUEUE.labels(queue="acknowledged_alerts").set(by_status.get("acknowledged", 0))
    QUEUE.labels(queue="takeover_waiting").set(by_handling.get("waiting", 0))
    QUEUE.labels(queue="takeover_active").set(by_handling.get("person", 0))
