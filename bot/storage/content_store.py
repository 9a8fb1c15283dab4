"""The content library in the database: items, revisions, the review workflow, import/export.

Workflow of an item (the status is that of its newest revision):

    draft --submit--> in_review --approve (by another account)--> approved
      ^                   |                                          |
      +----return---------+          edit (a new draft revision) <---+---retire--> retired
      +------------------------------ edit ---------------------------------------------+

Users get the newest *approved* revision of each item (`live_revision_id`): editing an approved
item writes a new draft while the approved text stays live until the new one is approved;
retiring takes it out of service. Every change is checked with the loader's rules
(`bot.content.validation`) and recorded as a `ContentEvent`; every change to what users get
increments `content_state.version`, which the running bot polls.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from bot.content.documents import HAS_STATUS, ItemRecord
from bot.content.loader import REQUIRED_REPLIES
from bot.content.validation import InvalidChange, ValidationResult, validate_change
from bot.storage.content_models import (
    CONTENT_KINDS,
    ContentEvent,
    ContentItem,
    ContentRevision,
    ContentState,
)
from bot.storage.database import Database
from bot.storage.models import utcnow

log = logging.getLogger(__name__)

IMPORT_ACTOR = "system/import"
"""The author of everything `python -m bot content import` (or the first start) loads."""


class WorkflowError(ValueError):
    """The step is not allowed now (wrong status, self-approval, edited meanwhile)."""


@dataclass(frozen=True)
class Revision:
    number: int
    data: dict[str, Any]
    comment: str | None
    author: str
    created_at: datetime
    approved_by: str | None
    approved_at: datetime | None


@dataclass(frozen=True)
class Event:
    revision_number: int | None
    action: str
    from_status: str | None
    to_status: str | None
    actor: str
    at: datetime
    note: str | None


@dataclass(frozen=True)
class ItemSummary:
    """An item for lists: its newest revision's fields and what is live."""

    kind: str
    key: str
    status: str
    position: int
    latest: Revision
    live_number: int | None
    updated_at: datetime

    @property
    def pending(self) -> bool:
        """True when a newer revision than the live one waits (draft or in review)."""
        return self.live_number is not None and self.live_number != self.latest.number


@dataclass(frozen=True)
class ItemDetail(ItemSummary):
    revisions: tuple[Revision, ...] = ()
    events: tuple[Event, ...] = field(default=())

    @property
    def live(self) -> Revision | None:
        return next((r for r in self.revisions if r.number == self.live_number), None)


@dataclass(frozen=True)
class ImportSummary:
    created: int = 0
    changed: int = 0
    unchanged: int = 0


@dataclass(frozen=True)
class ContentFilter:
    """Browse filters; None means any."""

    kind: str | None = None
    status: str | None = None
    claim: str | None = None
    country: str | None = None
    language: str | None = None
    text: str | None = None


class ContentStore:
    """All reads and writes of the content tables."""

    def __init__(self, database: Database) -> None:
        self.database = database

    # --- reading ---------------------------------------------------------------------------

    async def version(self) -> int:
        """Grows whenever what users get changes; the bot's provider polls it."""
        async with self.database.session() as session:
            value = await session.scalar(select(ContentState.version).where(ContentState.id == 1))
        return value or 0

    async def is_empty(self) -> bool:
        async with self.database.session() as session:
            return not await session.scalar(select(func.count()).select_from(ContentItem))

    async def live_records(self) -> list[ItemRecord]:
        """What users get: each item's approved revision, in library order."""
        async with self.database.session() as session:
            return await self._live_records(session)

    async def export_records(self) -> list[ItemRecord]:
        """The library for `content export`: the live revision of every live item, and the
        newest revision of items that are not live (drafts never approved, retired items, in
        their status) so nothing is lost. Replies and countries have no status in YAML: only
        live ones are written."""
        records = []
        for item, latest, live in await self._items_with_revisions():
            if live is not None:
                records.append(_record(item, live, "approved"))
            elif item.kind in HAS_STATUS:
                records.append(_record(item, latest, item.status))
        return records

    async def list_items(self, wanted: ContentFilter | None = None) -> list[ItemSummary]:
        """Items matching `wanted`, in library order (kind, then position).

        Filters on fields inside the revision's data run here rather than in SQL: a content
        library holds hundreds of items, not millions.
        """
        wanted = wanted or ContentFilter()
        found = []
        for item, latest, live in await self._items_with_revisions(wanted.kind, wanted.status):
            summary = _summary(item, latest, live)
            if _matches(summary, wanted):
                found.append(summary)
        return found

    async def item(self, kind: str, key: str) -> ItemDetail | None:
        async with self.database.session() as session:
            row = await self._find(session, kind, key)
            if row is None:
                return None
            revisions = (
                await session.scalars(
                    select(ContentRevision)
                    .where(ContentRevision.item_id == row.id)
                    .order_by(ContentRevision.number)
                )
            ).all()
            events = (
                await session.scalars(
                    select(ContentEvent)
                    .where(ContentEvent.item_id == row.id)
                    .order_by(ContentEvent.id)
                )
            ).all()
            live_number = next((r.number for r in revisions if r.id == row.live_revision_id), None)
            return ItemDetail(
                kind=row.kind,
                key=row.key,
                status=row.status,
                position=row.position,
                latest=_revision(revisions[-1]),
                live_number=live_number,
                updated_at=row.updated_at,
                revisions=tuple(_revision(r) for r in revisions),
                events=tuple(_event(e) for e in events),
            )

    # --- the workflow ----------------------------------------------------------------------

    async def save(
        self,
        kind: str,
        key: str,
        data: dict[str, Any],
        author: str,
        *,
        comment: str | None = None,
        base_revision: int | None = None,
    ) -> int:
        """Write a new draft revision (creating the item if new); returns its number.

        `base_revision` is the revision the editor started from: if someone saved a newer one
        meanwhile, the save is refused instead of silently overwriting their work. Raises
        `InvalidChange` if the item breaks the library's rules as a draft.
        """
        if kind not in CONTENT_KINDS:
            raise WorkflowError(f"unknown kind '{kind}'")
        async with self.database.session() as session, session.begin():
            row = await self._find(session, kind, key, lock=True)
            baseline = await self._export_view(session)
            draft = ItemRecord(kind, key, _clean(data), "draft", comment)
            _raise_if_invalid(validate_change(baseline, kind, key, draft))
            now = utcnow()
            if row is None:
                if base_revision:
                    raise WorkflowError(f"{kind} '{key}' does not exist")
                position = await session.scalar(
                    select(func.coalesce(func.max(ContentItem.position), 0)).where(
                        ContentItem.kind == kind
                    )
                )
                row = ContentItem(
                    kind=kind,
                    key=key,
                    position=(position or 0) + 1,
                    status="draft",
                    created_at=now,
                    updated_at=now,
                )
                session.add(row)
                await session.flush()
                number, action, before = 1, "created", None
            else:
                latest = await self._latest_number(session, row.id)
                if base_revision is not None and base_revision != latest:
                    raise WorkflowError(
                        f"{kind} '{key}' was changed meanwhile (now revision {latest}, you "
                        f"edited revision {base_revision}); reload it and apply your change again"
                    )
                number, action, before = latest + 1, "edited", row.status
                row.status = "draft"
                row.updated_at = now
            session.add(
                ContentRevision(
                    item_id=row.id,
                    number=number,
                    data=_clean(data),
                    comment=comment or None,
                    author=author,
                    created_at=now,
                )
            )
            self._event(session, row, number, action, before, "draft", author)
        return number

    async def submit(self, kind: str, key: str, actor: str) -> None:
        """draft -> in_review; checked as if approved, so problems show before review."""
        async with self.database.session() as session, session.begin():
            row, latest = await self._current(session, kind, key)
            self._expect(row, ("draft",), "submit for review")
            await self._check_going_live(session, row, latest)
            await self._transition(session, row, latest.number, "submitted", "in_review", actor)

    async def return_to_draft(
        self, kind: str, key: str, actor: str, note: str | None = None
    ) -> None:
        """in_review -> draft, e.g. a reviewer asks for changes."""
        async with self.database.session() as session, session.begin():
            row, latest = await self._current(session, kind, key)
            self._expect(row, ("in_review",), "return to draft")
            await self._transition(session, row, latest.number, "returned", "draft", actor, note)

    async def approve(self, kind: str, key: str, actor: str) -> None:
        """in_review -> approved: the revision goes live. Its author may not approve it."""
        async with self.database.session() as session, session.begin():
            row, latest = await self._current(session, kind, key)
            self._expect(row, ("in_review",), "approve")
            if latest.author == actor:
                raise WorkflowError(
                    f"you wrote revision {latest.number} of {kind} '{key}': another person "
                    "must approve it"
                )
            await self._check_going_live(session, row, latest)
            now = utcnow()
            latest.approved_by = actor
            latest.approved_at = now
            row.live_revision_id = latest.id
            await self._transition(session, row, latest.number, "approved", "approved", actor)
            await self._bump_version(session)

    async def retire(self, kind: str, key: str, actor: str, note: str | None = None) -> None:
        """Take the item out of service; its history stays. Editing it later starts a draft."""
        async with self.database.session() as session, session.begin():
            row, latest = await self._current(session, kind, key)
            self._expect(row, ("draft", "in_review", "approved"), "retire")
            if row.live_revision_id is not None:
                baseline = await self._live_records(session)
                _raise_if_invalid(validate_change(baseline, kind, key, None))
            was_live = row.live_revision_id is not None
            row.live_revision_id = None
            await self._transition(session, row, latest.number, "retired", "retired", actor, note)
            if was_live:
                await self._bump_version(session)

    # --- import ----------------------------------------------------------------------------

    async def import_records(
        self, records: Sequence[ItemRecord], actor: str = IMPORT_ACTOR
    ) -> ImportSummary:
        """Load items (from `documents.read_items`), keeping the status each has in the YAML.

        Idempotent: an item whose fields, comment and status already match is left alone.
        A changed item gets a new revision by `actor` in the YAML's status (approved goes
        live at once: the YAML is reviewed in git). Items missing from the YAML are kept.
        The caller validated the folder, so records are not checked again here.
        """
        created = changed = unchanged = 0
        async with self.database.session() as session, session.begin():
            now = utcnow()
            rows = await self._rows(session)
            existing = {(i.kind, i.key): (i, latest) for i, latest, _ in rows}
            # New items go after the existing ones of their kind, in the order given.
            positions: dict[str, int] = {}
            for item, _, _ in rows:
                positions[item.kind] = max(positions.get(item.kind, 0), item.position)
            new_revisions: list[tuple[ContentItem, ContentRevision, str, str | None]] = []
            for record in records:
                data = _clean(record.data)
                status = record.status if record.kind in HAS_STATUS else "approved"
                revision = ContentRevision(
                    number=1, data=data, comment=record.comment, author=actor, created_at=now
                )
                found = existing.get((record.kind, record.key))
                if found is None:
                    positions[record.kind] = positions.get(record.kind, 0) + 1
                    row = ContentItem(
                        kind=record.kind,
                        key=record.key,
                        position=positions[record.kind],
                        status=status,
                        created_at=now,
                        updated_at=now,
                    )
                    created += 1
                    new_revisions.append((row, revision, status, None))
                    continue
                row, latest = found
                same = latest.data == data and (latest.comment or None) == record.comment
                if same and row.status == status:
                    unchanged += 1
                    continue
                changed += 1
                if same:
                    revision = latest
                else:
                    revision.number = latest.number + 1
                new_revisions.append((row, revision, status, row.status))
            session.add_all([row for row, _, _, _ in new_revisions if row.id is None])
            await session.flush()
            for row, revision, _, _ in new_revisions:
                if revision.id is None:
                    revision.item_id = row.id
                    session.add(revision)
            await session.flush()
            for row, revision, status, before in new_revisions:
                row.status = status
                row.updated_at = now
                if status == "approved":
                    revision.approved_by = revision.approved_by or actor
                    revision.approved_at = revision.approved_at or now
                    row.live_revision_id = revision.id
                elif status == "retired":
                    row.live_revision_id = None
                self._event(session, row, revision.number, "imported", before, status, actor)
            if created or changed:
                await self._bump_version(session)
        return ImportSummary(created, changed, unchanged)

    async def import_if_empty(self, records: Sequence[ItemRecord]) -> bool:
        """Import on first start; False if there was content already (or another replica won)."""
        if not await self.is_empty():
            return False
        try:
            await self.import_records(records)
        except IntegrityError:
            log.info("content was imported by another process meanwhile")
            return False
        return True

    async def import_missing_replies(self, records: Sequence[ItemRecord]) -> list[str]:
        """Import the replies the code requires that the database has no item for at all."""
        async with self.database.session() as session:
            have = set(
                (
                    await session.scalars(
                        select(ContentItem.key).where(ContentItem.kind == "reply")
                    )
                ).all()
            )
        missing = [
            r
            for r in records
            if r.kind == "reply" and r.key in REQUIRED_REPLIES and r.key not in have
        ]
        if missing:
            await self.import_records(missing)
        return [r.key for r in missing]

    # --- internals -------------------------------------------------------------------------

    async def _find(
        self, session: AsyncSession, kind: str, key: str, *, lock: bool = False
    ) -> ContentItem | None:
        statement = select(ContentItem).where(ContentItem.kind == kind, ContentItem.key == key)
        if lock:
            statement = statement.with_for_update()
        return (await session.scalars(statement)).one_or_none()

    async def _current(
        self, session: AsyncSession, kind: str, key: str
    ) -> tuple[ContentItem, ContentRevision]:
        row = await self._find(session, kind, key, lock=True)
        if row is None:
            raise WorkflowError(f"there is no {kind} '{key}'")
        return row, await self._latest(session, row.id)

    async def _latest_number(self, session: AsyncSession, item_id: int) -> int:
        number = await session.scalar(
            select(func.max(ContentRevision.number)).where(ContentRevision.item_id == item_id)
        )
        return number or 0

    async def _latest(self, session: AsyncSession, item_id: int) -> ContentRevision:
        revision = await self._revision(
            session, item_id, await self._latest_number(session, item_id)
        )
        assert revision is not None, "an item always has a revision"
        return revision

    async def _revision(
        self, session: AsyncSession, item_id: int, number: int
    ) -> ContentRevision | None:
        return (
            await session.scalars(
                select(ContentRevision).where(
                    ContentRevision.item_id == item_id, ContentRevision.number == number
                )
            )
        ).one_or_none()

    @staticmethod
    def _expect(row: ContentItem, allowed: tuple[str, ...], step: str) -> None:
        if row.status not in allowed:
            raise WorkflowError(
                f"cannot {step} {row.kind} '{row.key}': it is {row.status.replace('_', ' ')}"
            )

    async def _check_going_live(
        self, session: AsyncSession, row: ContentItem, revision: ContentRevision
    ) -> None:
        baseline = await self._live_records(session)
        going_live = ItemRecord(row.kind, row.key, revision.data, "approved", revision.comment)
        _raise_if_invalid(validate_change(baseline, row.kind, row.key, going_live))

    async def _transition(
        self,
        session: AsyncSession,
        row: ContentItem,
        number: int,
        action: str,
        to_status: str,
        actor: str,
        note: str | None = None,
    ) -> None:
        before = row.status
        row.status = to_status
        row.updated_at = utcnow()
        self._event(session, row, number, action, before, to_status, actor, note)

    @staticmethod
    def _event(
        session: AsyncSession,
        row: ContentItem,
        number: int | None,
        action: str,
        before: str | None,
        after: str | None,
        actor: str,
        note: str | None = None,
    ) -> None:
        session.add(
            ContentEvent(
                item_id=row.id,
                revision_number=number,
                action=action,
                from_status=before,
                to_status=after,
                actor=actor,
                at=utcnow(),
                note=note or None,
            )
        )

    async def _bump_version(self, session: AsyncSession) -> None:
        result = await session.execute(
            update(ContentState)
            .where(ContentState.id == 1)
            .values(version=ContentState.version + 1)
        )
        if getattr(result, "rowcount", 0) == 0:
            session.add(ContentState(id=1, version=1))

    async def _items_with_revisions(
        self, kind: str | None = None, status: str | None = None
    ) -> list[tuple[ContentItem, ContentRevision, ContentRevision | None]]:
        """Each item with its newest and its live revision, in library order."""
        async with self.database.session() as session:
            return await self._rows(session, kind, status)

    async def _rows(
        self, session: AsyncSession, kind: str | None = None, status: str | None = None
    ) -> list[tuple[ContentItem, ContentRevision, ContentRevision | None]]:
        items_query = select(ContentItem)
        if kind:
            items_query = items_query.where(ContentItem.kind == kind)
        if status:
            items_query = items_query.where(ContentItem.status == status)
        items = (await session.scalars(items_query)).all()
        newest = (
            select(ContentRevision.item_id, func.max(ContentRevision.number).label("number"))
            .group_by(ContentRevision.item_id)
            .subquery()
        )
        latest_rows = (
            await session.scalars(
                select(ContentRevision).join(
                    newest,
                    (ContentRevision.item_id == newest.c.item_id)
                    & (ContentRevision.number == newest.c.number),
                )
            )
        ).all()
        latest = {r.item_id: r for r in latest_rows}
        live_ids = [i.live_revision_id for i in items if i.live_revision_id is not None]
        live = (
            {
                r.id: r
                for r in (
                    await session.scalars(
                        select(ContentRevision).where(ContentRevision.id.in_(live_ids))
                    )
                ).all()
            }
            if live_ids
            else {}
        )
        order = {k: n for n, k in enumerate(CONTENT_KINDS)}
        items = sorted(items, key=lambda i: (order[i.kind], i.position, i.id))
        return [
            (
                i,
                latest[i.id],
                live.get(i.live_revision_id) if i.live_revision_id is not None else None,
            )
            for i in items
        ]

    async def _live_records(self, session: AsyncSession) -> list[ItemRecord]:
        return [
            _record(item, live, "approved")
            for item, _latest, live in await self._rows(session)
            if live is not None
        ]

    async def _export_view(self, session: AsyncSession) -> list[ItemRecord]:
        """Every item in its newest revision and status: the baseline for checking a draft
        (so a new id may not clash with anyone's draft either)."""
        return [_record(item, latest, item.status) for item, latest, _ in await self._rows(session)]


def _record(item: ContentItem, revision: ContentRevision, status: str) -> ItemRecord:
    return ItemRecord(item.kind, item.key, dict(revision.data), status, revision.comment)


def _revision(row: ContentRevision) -> Revision:
    return Revision(
        number=row.number,
        data=dict(row.data),
        comment=row.comment,
        author=row.author,
        created_at=row.created_at,
        approved_by=row.approved_by,
        approved_at=row.approved_at,
    )


def _event(row: ContentEvent) -> Event:
    return Event(
        revision_number=row.revision_number,
        action=row.action,
        from_status=row.from_status,
        to_status=row.to_status,
        actor=row.actor,
        at=row.at,
        note=row.note,
    )


def _summary(
    item: ContentItem, latest: ContentRevision, live: ContentRevision | None
) -> ItemSummary:
    return ItemSummary(
        kind=item.kind,
        key=item.key,
        status=item.status,
        position=item.position,
        latest=_revision(latest),
        live_number=live.number if live is not None else None,
        updated_at=item.updated_at,
    )


def _matches(summary: ItemSummary, wanted: ContentFilter) -> bool:
    data = summary.latest.data
    if wanted.claim and wanted.claim not in (data.get("claims") or []):
        return False
    if wanted.country and data.get("country") != wanted.country and summary.key != wanted.country:
        return False
    if wanted.language and data.get("language") != wanted.language:
        return False
    if wanted.text:
        needle = wanted.text.casefold()
        haystack = f"{summary.key} {_flatten(data)}".casefold()
        if needle not in haystack:
            return False
    return True


def _flatten(value: Any) -> str:
    if isinstance(value, dict):
        return " ".join(_flatten(v) for v in value.values())
    if isinstance(value, list):
        return " ".join(_flatten(v) for v in value)
    return str(value) if value is not None else ""


def _clean(data: dict[str, Any]) -> dict[str, Any]:
    """Fields without empty values, so an emptied optional field is simply absent."""
    cleaned: dict[str, Any] = {}
    for name, value in data.items():
        if isinstance(value, dict):
            value = _clean(value)
        if value is None or value == "" or value == {}:
            continue
        cleaned[name] = value
    return cleaned


def _raise_if_invalid(result: ValidationResult) -> None:
    if not result.ok:
        raise InvalidChange(result)
