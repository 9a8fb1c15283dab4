"""The content library in the database: workflow rules, import/export, the live provider.

Every test runs on SQLite and on PostgreSQL. The end-to-end test at the bottom approves a new
testimony while the real bot runs against the Telegram emulator and checks a user gets it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.__main__ import main as cli
from bot.content.database_provider import DatabaseLibraryProvider
from bot.content.documents import read_items, write_items
from bot.content.loader import load_library
from bot.content.validation import InvalidChange
from bot.nlu.server import LocalNLUServer
from bot.services import open_library
from bot.settings import PROJECT_ROOT
from bot.storage.content_models import ContentItem
from bot.storage.content_store import IMPORT_ACTOR, ContentFilter, ContentStore, WorkflowError
from bot.storage.database import Database
from tests.conftest import BACKENDS, database_url_for, make_settings, running_bot
from tests.content_helpers import (
    CLAIM,
    CLAIM_MESSAGE,
    mark_other_stories_seen,
    new_testimony,
)

RESPONSES = PROJECT_ROOT / "responses"
RECORDS = read_items(RESPONSES)


@pytest.fixture(params=BACKENDS)
async def content(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[ContentStore]:
    """A content store holding the shipped responses/, imported as on a first start."""
    async with database_url_for(request.param, tmp_path) as url:
        database = Database(url)
        await database.start()
        try:
            store = ContentStore(database)
            await store.import_records(RECORDS)
            yield store
        finally:
            await database.close()


async def live_library(content: ContentStore) -> DatabaseLibraryProvider:
    provider = DatabaseLibraryProvider(content, check_interval=3600)
    await provider.start()
    await provider.close()
    return provider


async def write_and_approve(content: ContentStore, key: str, text: str) -> None:
    await content.save("testimony", key, new_testimony(text), "alice")
    await content.submit("testimony", key, "alice")
    await content.approve("testimony", key, "bob")


# --- import and export ---------------------------------------------------------------------


async def test_import_then_export_gives_an_equal_library(
    content: ContentStore, tmp_path: Path
) -> None:
    exported = tmp_path / "exported"
    write_items(exported, await content.export_records())
    assert load_library(exported) == load_library(RESPONSES)
    # Notes on where a quote was checked travel with the item.
    text = (exported / "testimonies.yml").read_text(encoding="utf-8")
    assert "# Wording checked in Christian Today's report on the ICSR study" in text


async def test_import_is_idempotent(content: ContentStore) -> None:
    again = await content.import_records(read_items(RESPONSES))
    assert (again.created, again.changed, again.unchanged) == (0, 0, len(RECORDS))
    detail = await content.item("testimony", "icsr-not-protecting-but-killing")
    assert detail is not None
    assert [r.author for r in detail.revisions] == [IMPORT_ACTOR]
    assert [(e.action, e.to_status) for e in detail.events] == [("imported", "approved")]


async def test_imported_items_keep_their_yaml_status(content: ContentStore) -> None:
    files = load_library(RESPONSES)
    drafts = {t.id for t in files.testimonies if t.status != "approved"}
    assert drafts
    listed = await content.list_items(ContentFilter(kind="testimony"))
    assert {i.key for i in listed if i.status != "approved"} == drafts
    live = (await live_library(content)).current()
    assert live.approved_testimonies() == files.approved_testimonies()
    assert live.replies == files.replies
    assert not {t.id for t in live.testimonies} & drafts, "a draft must not be served"


async def test_an_export_of_an_edited_library_imports_back_unchanged(
    content: ContentStore, tmp_path: Path
) -> None:
    await write_and_approve(content, "new-story", "We were promised safety. There was none.")
    write_items(tmp_path, await content.export_records())
    summary = await content.import_records(read_items(tmp_path))
    assert (summary.created, summary.changed) == (0, 0)


def test_content_commands_import_and_export(tmp_path: Path) -> None:
    env = {"DATA_DIR": str(tmp_path), "PSEUDONYM_SECRET": "s" * 40, "CONTENT_DIR": str(RESPONSES)}
    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        assert cli(["content", "import"]) == 0
        assert cli(["content", "export", str(tmp_path / "out")]) == 0
    assert load_library(tmp_path / "out") == load_library(RESPONSES)


# --- workflow ------------------------------------------------------------------------------


async def test_a_new_testimony_is_served_only_after_review_by_another_person(
    content: ContentStore,
) -> None:
    await content.save("testimony", "mosul-no-protection", new_testimony(), "alice")
    assert "mosul-no-protection" not in _served(await live_library(content))
    await content.submit("testimony", "mosul-no-protection", "alice")
    assert "mosul-no-protection" not in _served(await live_library(content))
    with pytest.raises(WorkflowError, match="another person must approve"):
        await content.approve("testimony", "mosul-no-protection", "alice")
    await content.approve("testimony", "mosul-no-protection", "bob")
    assert "mosul-no-protection" in _served(await live_library(content))
    detail = await content.item("testimony", "mosul-no-protection")
    assert detail is not None
    assert [(e.action, e.actor, e.to_status) for e in detail.events] == [
        ("created", "alice", "draft"),
        ("submitted", "alice", "in_review"),
        ("approved", "bob", "approved"),
    ]
    assert (detail.latest.author, detail.latest.approved_by) == ("alice", "bob")


async def test_an_approved_item_stays_live_until_its_edit_is_approved(
    content: ContentStore,
) -> None:
    await write_and_approve(content, "edited-story", "The first wording.")
    await content.save("testimony", "edited-story", new_testimony("The second wording."), "carol")
    detail = await content.item("testimony", "edited-story")
    assert detail is not None and detail.pending and detail.status == "draft"
    assert _text_of(await live_library(content), "edited-story") == "The first wording."
    await content.submit("testimony", "edited-story", "carol")
    assert _text_of(await live_library(content), "edited-story") == "The first wording."
    await content.approve("testimony", "edited-story", "alice")  # alice did not write r2
    assert _text_of(await live_library(content), "edited-story") == "The second wording."


async def test_a_retired_item_is_not_served_and_can_come_back_as_a_draft(
    content: ContentStore,
) -> None:
    key = "icsr-not-protecting-but-killing"
    await content.retire("testimony", key, "alice")
    assert key not in _served(await live_library(content))
    with pytest.raises(WorkflowError, match="it is retired"):
        await content.approve("testimony", key, "bob")
    detail = await content.item("testimony", key)
    assert detail is not None
    data = detail.latest.data
    await content.save("testimony", key, data, "alice", base_revision=detail.latest.number)
    assert (await content.item("testimony", key)).status == "draft"  # type: ignore[union-attr]
    assert key not in _served(await live_library(content))


async def test_a_reviewer_can_return_an_item_to_draft(content: ContentStore) -> None:
    await content.save("testimony", "returned", new_testimony(), "alice")
    await content.submit("testimony", "returned", "alice")
    await content.return_to_draft("testimony", "returned", "bob", note="source is a reprint")
    detail = await content.item("testimony", "returned")
    assert detail is not None and detail.status == "draft"
    assert detail.events[-1].note == "source is a reprint"
    with pytest.raises(WorkflowError, match=r"cannot approve .* it is draft"):
        await content.approve("testimony", "returned", "bob")


async def test_invalid_fields_are_refused_naming_the_field(content: ContentStore) -> None:
    broken = new_testimony('"In quotation marks already."')
    broken["source"]["url"] = "example.org/no-scheme"
    with pytest.raises(InvalidChange) as caught:
        await content.save("testimony", "Bad Id", broken, "alice")
    errors = caught.value.result.field_errors
    assert set(errors) == {"id", "text", "source.url"}
    assert "must be kebab-case" in errors["id"][0]
    assert "the layout adds them" in errors["text"][0]
    assert "must start with https://" in errors["source.url"][0]
    assert await content.item("testimony", "Bad Id") is None


async def test_an_id_used_by_another_item_is_refused(content: ContentStore) -> None:
    with pytest.raises(InvalidChange) as caught:
        await content.save("fact", "icsr-not-protecting-but-killing", {"text": "x"}, "alice")
    assert any("duplicate id" in m for m in caught.value.result.field_errors["id"])


async def test_retiring_a_required_reply_is_refused(content: ContentStore) -> None:
    with pytest.raises(InvalidChange, match="missing required reply 'welcome'"):
        await content.retire("reply", "welcome", "alice")
    assert "welcome" in (await live_library(content)).current().replies


async def test_an_approved_resource_needs_its_verification_date(content: ContentStore) -> None:
    resource = {
        "name": "Test line",
        "kind": "crisis",
        "country": "DE",
        "description": "A line for testing.",
        "phone": "0800 000",
    }
    await content.save("resource", "de-test-line", resource, "alice")  # a draft may lack it
    with pytest.raises(InvalidChange, match="needs 'last_verified'"):
        await content.submit("resource", "de-test-line", "alice")


async def test_an_edit_of_an_outdated_revision_is_refused(content: ContentStore) -> None:
    await content.save("testimony", "contested", new_testimony("One."), "alice")
    await content.save("testimony", "contested", new_testimony("Two."), "bob", base_revision=1)
    with pytest.raises(WorkflowError, match="changed meanwhile"):
        await content.save(
            "testimony", "contested", new_testimony("Three."), "alice", base_revision=1
        )


async def test_browse_filters_by_kind_status_claim_country_and_language(
    content: ContentStore,
) -> None:
    claim = await content.list_items(ContentFilter(kind="testimony", claim=CLAIM))
    assert claim and all(CLAIM in i.latest.data["claims"] for i in claim)
    german = await content.list_items(ContentFilter(kind="resource", country="DE"))
    assert german and {i.latest.data["country"] for i in german} == {"DE"}
    drafts = await content.list_items(ContentFilter(status="draft"))
    assert drafts and {i.status for i in drafts} == {"draft"}
    assert await content.list_items(ContentFilter(language="xx")) == []
    found = await content.list_items(ContentFilter(text="power, money and women"))
    assert [i.key for i in found] == ["jp-power-money-women"]


# --- the provider --------------------------------------------------------------------------


async def test_the_provider_serves_an_approved_change_within_two_seconds(
    content: ContentStore,
) -> None:
    provider = DatabaseLibraryProvider(content, check_interval=0.5)
    await provider.start()
    try:
        await write_and_approve(content, "quick-story", "Approved a moment ago.")
        started = time.monotonic()
        while "quick-story" not in _served(provider):
            assert time.monotonic() - started < 2.0, "not served within 2 s"
            await asyncio.sleep(0.05)
    finally:
        await provider.close()


async def test_the_provider_keeps_the_last_good_library_when_the_database_fails(
    content: ContentStore,
) -> None:
    provider = DatabaseLibraryProvider(content, check_interval=3600)
    await provider.start()
    try:
        before = provider.current()
        await content.database.close()
        assert await provider.refresh() is False
        assert provider.current() is before
        assert provider.last_error is not None
    finally:
        await provider.close()


# --- end to end ----------------------------------------------------------------------------


@pytest.mark.e2e
@pytest.mark.parametrize("backend", BACKENDS)
async def test_an_approved_testimony_reaches_a_user_without_a_restart(
    backend: str, tmp_path: Path, nlu_server: LocalNLUServer
) -> None:
    async with running_bot(backend, tmp_path, nlu_server) as bot:
        user = bot.new_user()
        await mark_other_stories_seen(bot, user)
        quote = "They told us the state would protect us. It protected no one."
        await write_and_approve(bot.content, "e2e-protected-no-one", quote)
        started = time.monotonic()
        while "e2e-protected-no-one" not in _served(bot.library):
            assert time.monotonic() - started < 2.0, "not served within 2 s"
            await asyncio.sleep(0.05)
        bot.emulator.push_text(user, CLAIM_MESSAGE)
        messages = await bot.emulator.wait_for_messages(user, 1, timeout=20)
        assert f"“{quote}”" in messages[0]["text"]
        stored = await bot.store.messages_for(bot.pseudonym(user))
        assert stored[-1].content_ids == ("e2e-protected-no-one",)


def _served(provider: DatabaseLibraryProvider) -> set[str]:
    return {t.id for t in provider.current().approved_testimonies()}


def _text_of(provider: DatabaseLibraryProvider, key: str) -> str:
    return next(t.text for t in provider.current().testimonies if t.id == key)


async def test_a_reply_the_code_needs_is_imported_at_start_when_missing(
    content: ContentStore, tmp_path: Path
) -> None:
    async with content.database.session() as session, session.begin():
        item = await session.scalar(
            select(ContentItem).where(ContentItem.kind == "reply", ContentItem.key == "thanks")
        )
        await session.delete(item)
    settings = make_settings(tmp_path, content_dir=RESPONSES)
    async with contextlib.AsyncExitStack() as stack:
        provider = await open_library(content, settings, stack)
        assert provider.current().replies["thanks"] == load_library(RESPONSES).replies["thanks"]
    detail = await content.item("reply", "thanks")
    assert detail is not None and detail.latest.author == IMPORT_ACTOR


async def test_a_broken_yaml_folder_does_not_stop_a_bot_whose_library_is_in_the_database(
    content: ContentStore, tmp_path: Path
) -> None:
    (tmp_path / "responses").mkdir()
    (tmp_path / "responses" / "replies.yml").write_text("replies: [broken\n", encoding="utf-8")
    settings = make_settings(tmp_path, content_dir=tmp_path / "responses")
    async with contextlib.AsyncExitStack() as stack:
        provider = await open_library(content, settings, stack)
        assert provider.current().replies == load_library(RESPONSES).replies
