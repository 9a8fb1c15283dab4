"""The write buffer and the store around it, without the bot: bounds, crash replay, /forget."""

from __future__ import annotations

import asyncio
import json
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.nlu.understanding import IntentScore, Understanding
from bot.policy.state import UserState
from bot.storage.buffer import WriteBuffer
from bot.storage.database import Database
from bot.storage.resilient import ResilientStore
from bot.storage.turns import MessageRecord, TurnRecord
from tests.conftest import BACKENDS, database_url_for
from tests.outage import database_with_outage


def test_entries_survive_a_reopen_and_a_torn_last_line_is_skipped(tmp_path: Path) -> None:
    path = tmp_path / "buffer" / "write-buffer.jsonl"
    buffer = WriteBuffer(path, max_bytes=10_000)
    buffer.open()
    assert buffer.append({"op": "claim", "update_id": 1})
    assert buffer.append({"op": "forget", "pseudonym": "p\x00\u202e\ud800"})
    buffer.close()
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert oct(path.parent.stat().st_mode & 0o777) == "0o700"
    with path.open("ab") as handle:
        handle.write(b'{"op":"claim","upd')  # a power cut in the middle of an append

    again = WriteBuffer(path, max_bytes=10_000)
    again.open()
    assert again.entries == [
        {"op": "claim", "update_id": 1},
        {"op": "forget", "pseudonym": "p\x00\u202e\ud800"},
    ]
    again.discard(again.entries[:1])
    again.close()
    assert path.read_bytes().count(b"\n") == 1


def test_a_full_buffer_refuses_the_write_and_keeps_the_rest(tmp_path: Path) -> None:
    buffer = WriteBuffer(tmp_path / "b.jsonl", max_bytes=100)
    buffer.open()
    assert buffer.append({"op": "claim", "update_id": 1})
    assert not buffer.append({"op": "forget", "pseudonym": "x" * 100})
    assert len(buffer) == 1
    assert buffer.size_bytes == os.path.getsize(tmp_path / "b.jsonl") == 29


def message_entry(key: str, pseudonym: str, text: str) -> dict[str, object]:
    understanding = Understanding(text, "greet", 0.9, (IntentScore("greet", 0.9),))
    return {
        "op": "message",
        "pseudonym": pseudonym,
        "direction": "in",
        "kind": "text",
        "text": text,
        "understanding": {
            "text": text,
            "intent": understanding.intent,
            "confidence": understanding.confidence,
            "ranking": [{"name": "greet", "confidence": 0.9}],
            "entities": [],
            "source": "nlu",
            "model": None,
        },
        "content_ids": [],
        "flags": [],
        "update_id": 7,
        "is_test": False,
        "write_key": key,
        "created_at": "2025-11-25T10:00:00+00:00",
    }


@pytest.mark.parametrize("backend", BACKENDS)
async def test_writes_left_by_a_crashed_run_are_stored_once_even_if_replayed_twice(
    backend: str, tmp_path: Path
) -> None:
    path = tmp_path / "write-buffer.jsonl"
    entries = [
        {"op": "claim", "update_id": 900_001},
        message_entry("k1", "p-crash", "first"),
        message_entry("k2", "p-crash", "second"),
        {"op": "user", "state": {**UserState("p-crash").__dict__, "country": "SY"}},
    ]
    lines = "".join(json.dumps(entry) + "\n" for entry in entries)
    async with database_url_for(backend, tmp_path) as url:
        for _run in range(2):  # the second run replays what the first already wrote
            path.write_text(lines)
            store = ResilientStore(Database(url), WriteBuffer(path, 10_000), retry_seconds=0.1)
            await store.start()
            try:
                async with asyncio.timeout(10):
                    await store.wait_until_flushed()
                stored = await store.messages_for("p-crash")
                assert [(m.text, m.intent, m.update_id) for m in stored] == [
                    ("first", "greet", 7),
                    ("second", "greet", 7),
                ]
                assert stored[0].created_at.isoformat() == "2025-11-25T10:00:00+00:00"
                assert (await store.load_user("p-crash")).country == "SY"
                assert not await store.claim_update(900_001)
                assert path.read_bytes() == b""
            finally:
                await store.close()


@pytest.mark.parametrize("backend", BACKENDS)
async def test_forget_during_an_outage_deletes_the_users_buffered_writes_at_once(
    backend: str, tmp_path: Path
) -> None:
    async with database_with_outage(backend, tmp_path) as outage:
        path = tmp_path / "write-buffer.jsonl"
        store = ResilientStore(Database(outage.url), WriteBuffer(path, 2_000), retry_seconds=0.1)
        await store.start()
        try:
            await store.record_message("p-keep", direction="in", kind="text", text="before")
            outage.begin()
            assert await store.claim_update(1)  # to the buffer
            assert not await store.claim_update(1)  # remembered
            for pseudonym in ("p-forget", "p-keep"):
                state = await store.load_user(pseudonym)
                assert state == UserState(pseudonym)
                state.country = "IQ"
                text = f"secret-of-{pseudonym}"
                written = await store.record_message(
                    pseudonym, direction="in", kind="text", text=text
                )
                assert written == 0  # buffered
                await store.save_user(state)
            assert (await store.load_user("p-forget")).country == "IQ"  # from memory
            assert b"secret-of-p-forget" in path.read_bytes()

            await store.forget_user("p-forget")
            assert b"secret-of-p-forget" not in path.read_bytes()
            assert (await store.load_user("p-forget")).country is None

            big = "x" * 2_000
            await store.record_message("p-keep", direction="in", kind="text", text=big)
            assert store.lost_writes == 1

            outage.end()
            async with asyncio.timeout(30):
                await store.wait_until_flushed()
            assert await store.messages_for("p-forget") == []
            assert [m.text for m in await store.messages_for("p-keep")] == [
                "before",
                "secret-of-p-keep",
            ]
            assert (await store.load_user("p-keep")).country == "IQ"
            assert not await store.claim_update(1)
            assert path.read_bytes() == b""
        finally:
            await store.close()


@pytest.mark.parametrize("backend", BACKENDS)
async def test_a_turn_during_an_outage_is_one_entry_written_whole_when_the_database_returns(
    backend: str, tmp_path: Path
) -> None:
    async with database_with_outage(backend, tmp_path) as outage:
        path = tmp_path / "write-buffer.jsonl"
        store = ResilientStore(Database(outage.url), WriteBuffer(path, 20_000), retry_seconds=0.1)
        await store.start()
        try:
            outage.begin()
            start = await store.begin_turn("p-out", flood_window_seconds=60)
            assert start.state == UserState("p-out")
            state = start.state
            state.country, state.in_crisis = "IQ", True
            now = datetime.now(UTC)
            understanding = Understanding("help", "crisis_self_harm", 0.95, ())
            turn = TurnRecord(
                "p-out",
                messages=(
                    MessageRecord(
                        "in",
                        "text",
                        "help",
                        now,
                        understanding,
                        flags=("crisis",),
                        update_id=42,
                        write_key="update:42:in",
                    ),
                    MessageRecord(
                        "out", "safety_self_harm", "you matter", now, write_key="update:42:out"
                    ),
                ),
                state=state,
                update_id=42,
            )
            assert not (await store.finish_turn(turn)).duplicate
            assert state.risk_level == "crisis", "derived as the database would"
            assert len(store.buffer) == 1
            assert (await store.finish_turn(turn)).duplicate, "a redelivery, remembered"
            assert (await store.begin_turn("p-out", flood_window_seconds=60)).state.country == "IQ"

            outage.end()
            async with asyncio.timeout(30):
                await store.wait_until_flushed()
            stored = await store.messages_for("p-out")
            assert [(m.kind, m.intent, m.flags) for m in stored] == [
                ("text", "crisis_self_harm", ("crisis",)),
                ("safety_self_harm", None, ()),
            ]
            found = await store.find_user("p-out")
            assert found is not None
            assert (found.country, found.in_crisis, found.risk_level) == ("IQ", True, "crisis")
            assert not await store.claim_update(42)
            assert path.read_bytes() == b""
        finally:
            await store.close()
