"""Metrics, health checks, logs and error reports: useful to operators, silent about users.

The endpoints are those of `python -m bot run` in webhook mode (`bot.run.serve_webhook`), with
the real Rasa server, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import sentry_sdk
from prometheus_client import REGISTRY
from sentry_sdk.envelope import Envelope
from sentry_sdk.transport import Transport
from sqlalchemy import text

from bot.content.database_provider import StaticLibrary
from bot.content.loader import load_library
from bot.conversation import Conversation, TextIn
from bot.listener.app import build_listener_app
from bot.listener.health import Dependencies
from bot.nlu.client import NLUClient
from bot.nlu.server import LocalNLUServer
from bot.observability.logs import setup_logging
from bot.observability.sentry import init_sentry, scrub_event
from bot.storage.database import Database
from bot.storage.store import Store
from tests.conftest import WebhookBot, free_port, make_settings, webhook_bot

pytestmark = pytest.mark.e2e

# Far from the failing frame in the Sentry test, so that they are not in its source context
# (the lines of code around it, which events carry): what the test checks is that the values
# of variables, the user and breadcrumbs are not sent.
SENTRY_TELEGRAM_ID = 5550123456
SENTRY_USER_TEXT = "I want to go to sham"
SENTRY_USERNAME = "someone_2009"


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def get(url: str) -> tuple[int, str, str]:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return response.status, response.headers["Content-Type"], await response.text()


async def test_healthz_answers_while_the_process_runs(hooked: WebhookBot) -> None:
    status, _, body = await get(hooked.base_url + "/healthz")
    assert (status, json.loads(body)) == (200, {"status": "ok"})


async def test_readyz_checks_database_nlu_and_content(hooked: WebhookBot) -> None:
    status, _, body = await get(hooked.base_url + "/readyz")
    assert status == 200
    assert json.loads(body) == {
        "status": "ready",
        "checks": {"database": "ok", "nlu": "ok", "content": "ok"},
    }


async def test_metrics_count_a_conversation_and_carry_no_user_data(hooked: WebhookBot) -> None:
    user = hooked.new_user()
    text = "the khilafah is the only place where muslims are safe"
    before = {
        "in": sample("defector_voices_messages_in_total", kind="text"),
        "out": sample("defector_voices_messages_out_total", kind="counter_message"),
        "intent": sample(
            "defector_voices_intents_total", intent="claim_protects_muslims", source="nlu"
        ),
        "latency": sample("defector_voices_reply_seconds_count"),
        "nlu": sample("defector_voices_nlu_seconds_count"),
        "webhook": sample("defector_voices_webhook_requests_total", outcome="accepted"),
        "ack": sample("defector_voices_webhook_ack_seconds_count"),
    }
    hooked.emulator.push_text(user, text, first_name="Yusuf", username="yusuf_metrics")
    await hooked.emulator.wait_for_messages(user, 1, timeout=20)
    await hooked.emulator.wait_for_quiet(quiet=0.5, timeout=20)

    status, content_type, body = await get(hooked.base_url + "/metrics")
    assert status == 200
    assert content_type.startswith("text/plain")
    after = {
        "in": sample("defector_voices_messages_in_total", kind="text"),
        "out": sample("defector_voices_messages_out_total", kind="counter_message"),
        "intent": sample(
            "defector_voices_intents_total", intent="claim_protects_muslims", source="nlu"
        ),
        "latency": sample("defector_voices_reply_seconds_count"),
        "nlu": sample("defector_voices_nlu_seconds_count"),
        "webhook": sample("defector_voices_webhook_requests_total", outcome="accepted"),
        "ack": sample("defector_voices_webhook_ack_seconds_count"),
    }
    assert {key: after[key] - before[key] for key in before} == {
        "in": 1,
        "out": 1,
        "intent": 1,
        "latency": 1,
        "nlu": 1,
        "webhook": 1,
        "ack": 1,
    }
    for queue in ("open_alerts", "acknowledged_alerts", "takeover_waiting", "takeover_active"):
        assert f'defector_voices_queue{{queue="{queue}"}}' in body
    assert not re.search(rf"(?<![\d.]){user}(?![\d.])", body)  # not as a number of its own
    for private in ("khilafah", "Yusuf", "yusuf_metrics", hooked.pseudonym(user)):
        assert private not in body


async def test_the_queue_gauges_read_open_alerts_and_waiting_users(hooked: WebhookBot) -> None:
    async with hooked.store.database.engine.begin() as connection:
        await connection.exec_driver_sql("DELETE FROM alerts")
        await connection.exec_driver_sql("UPDATE users SET handling = 'bot'")
    user = hooked.new_user()
    hooked.emulator.push_text(user, "/start")
    await hooked.emulator.wait_for_messages(user, 1, timeout=20)
    async with hooked.store.database.engine.begin() as connection:
        await connection.execute(
            text("UPDATE users SET handling = 'waiting' WHERE pseudonym = :p"),
            {"p": hooked.pseudonym(user)},
        )
    await get(hooked.base_url + "/metrics")
    assert sample("defector_voices_queue", queue="takeover_waiting") == 1
    assert sample("defector_voices_queue", queue="open_alerts") == 0


async def test_readyz_says_which_dependency_is_missing(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    never_started = Database(f"sqlite+aiosqlite:///{tmp_path / 'absent.db'}")
    async with NLUClient(f"http://127.0.0.1:{free_port()}", None, timeout_seconds=1) as dead:
        app = build_listener_app(
            Dependencies(never_started, dead, StaticLibrary(load_library(settings.content_dir)))
        )
        runner = aiohttp.web.AppRunner(app)
        await runner.setup()
        port = free_port()
        await aiohttp.web.TCPSite(runner, "127.0.0.1", port).start()
        try:
            status, _, body = await get(f"http://127.0.0.1:{port}/readyz")
            live, _, _ = await get(f"http://127.0.0.1:{port}/healthz")
        finally:
            await runner.cleanup()
    assert (status, live) == (503, 200)
    assert json.loads(body) == {
        "status": "not ready",
        "checks": {"database": "RuntimeError", "nlu": "NLUUnavailable", "content": "ok"},
    }


async def test_nlu_and_database_errors_are_counted(tmp_path: Path, store: Store) -> None:
    settings = make_settings(tmp_path)
    library = StaticLibrary(load_library(settings.content_dir))
    async with NLUClient(f"http://127.0.0.1:{free_port()}", None, timeout_seconds=1) as dead:
        conversation = Conversation(settings, store, dead, library)
        nlu_before = sample("defector_voices_nlu_errors_total")
        replies = await conversation.handle("a" * 64, TextIn("hello"))
        assert replies[0].kind == "nlu_unavailable"
        assert sample("defector_voices_nlu_errors_total") == nlu_before + 1

        database_before = sample("defector_voices_database_errors_total")
        async with store.database.engine.begin() as connection:
            await connection.exec_driver_sql("ALTER TABLE messages RENAME TO messages_gone")
        with pytest.raises(Exception, match="messages"):
            await conversation.handle("b" * 64, TextIn("hello"))
        assert sample("defector_voices_database_errors_total") == database_before + 1


@pytest.fixture
def captured_logs() -> Iterator[io.StringIO]:
    """The process's logs as `python -m bot run` writes them (JSON, DEBUG), into a buffer."""
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    stream = io.StringIO()
    setup_logging("DEBUG", "json", stream)
    try:
        yield stream
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])


async def test_logs_hold_no_user_text_or_telegram_id_even_at_debug(
    nlu_server: LocalNLUServer, tmp_path: Path, captured_logs: io.StringIO
) -> None:
    secret_words = "my cousin Abu Hafs in Raqqa says the dawla pays 800 dollars"
    async with webhook_bot("sqlite", tmp_path, nlu_server) as bot:
        user = bot.new_user()
        bot.emulator.push_text(user, secret_words, first_name="Hafsa", username="hafsa_2008")
        bot.emulator.push_text(user, "I want to hurt myself")
        bot.emulator.push_text(user, "/forget")
        await bot.emulator.wait_for_messages(user, 3, timeout=30)
    logs = captured_logs.getvalue()
    records = [json.loads(line) for line in logs.splitlines()]
    assert any(r["logger"] == "bot.listener.app" for r in records)  # the capture works
    for private in (
        str(user),
        "Abu Hafs",
        "Raqqa",
        "800 dollars",
        "hurt myself",
        "Hafsa",
        "hafsa_2008",
        bot.settings.telegram_bot_token or "",
        bot.settings.webhook_secret,
    ):
        assert private not in logs, private


class CapturingTransport(Transport):
    def __init__(self, options: dict[str, Any] | None = None) -> None:
        super().__init__(options)
        self.envelopes: list[Envelope] = []

    def capture_envelope(self, envelope: Envelope) -> None:
        self.envelopes.append(envelope)


def test_sentry_events_leave_without_request_user_locals_or_ids() -> None:
    transport = CapturingTransport()
    assert init_sentry("https://public@sentry.example.org/1", transport=transport)
    try:
        telegram_id, user_text = SENTRY_TELEGRAM_ID, SENTRY_USER_TEXT

        def fail() -> None:
            raise ValueError(f"no chat {telegram_id} for {len(user_text)} chars")

        sentry_sdk.set_user({"id": str(telegram_id), "username": SENTRY_USERNAME})
        sentry_sdk.add_breadcrumb(message=user_text)
        try:
            fail()
        except ValueError:
            sentry_sdk.capture_exception()
        sentry_sdk.flush()
    finally:
        sentry_sdk.get_client().close(timeout=0)
        sentry_sdk.init()  # no DSN: the SDK is off again
    events = [
        item.payload.json for e in transport.envelopes for item in e.items if item.type == "event"
    ]
    assert len(events) == 1
    sent = json.dumps(events[0])
    assert "ValueError" in sent
    assert str(SENTRY_TELEGRAM_ID) not in sent
    assert "sham" not in sent
    assert SENTRY_USERNAME not in sent
    assert '"vars"' not in sent


def test_the_scrubber_removes_request_bodies_and_users() -> None:
    event: dict[str, Any] = {
        "request": {"data": '{"message": {"text": "secret words"}}', "headers": {}},
        "user": {"id": "5550123456"},
        "breadcrumbs": {"values": [{"message": "secret words"}]},
        "extra": {"text": "secret words"},
        "message": "update 5550123456 failed",
        "exception": {
            "values": [
                {
                    "type": "KeyError",
                    "value": "chat 5550123456",
                    "stacktrace": {"frames": [{"function": "f", "vars": {"t": "secret"}}]},
                }
            ]
        },
    }
    scrubbed = scrub_event(event)
    assert set(scrubbed) == {"message", "exception"}
    assert scrubbed["message"] == "update [number] failed"
    frame = scrubbed["exception"]["values"][0]["stacktrace"]["frames"][0]
    assert frame == {"function": "f"}
    assert scrubbed["exception"]["values"][0]["value"] == "chat [number]"
