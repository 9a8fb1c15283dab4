"""The audit log: who did what to what, and when.

Every page that shows or changes something sensitive records it here: logins (and failed
ones), account changes, transcript views, annotations, takeovers, content changes. Call

    await record_audit(database, actor="alice", action="transcript.view", target="<pseudonym>")

or, inside a request handler, `await audit(request, "transcript.view", target=...)` which
fills in the logged-in account and its address. `detail` is a small JSON object of ids and
settings: never the text a bot user wrote, never a password.

Action names are `area.verb` (`login.failed`, `account.create`, `content.approve`, ...).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from aiohttp import web
from sqlalchemy import Select, func, select

from bot.storage.database import Database
from bot.storage.models import AuditEntry, utcnow

PAGE_SIZE = 50
CSV_COLUMNS = ("id", "created_at", "actor", "action", "target", "detail", "remote_addr")


@dataclass(frozen=True)
class AuditRecord:
    id: int
    created_at: datetime
    actor: str | None
    action: str
    target: str | None
    detail: dict[str, Any]
    remote_addr: str | None


@dataclass(frozen=True)
class AuditFilter:
    """What the admin page filters on; empty values mean "any"."""

    actor: str = ""
    action: str = ""
    target: str = ""
    since: datetime | None = None
    until: datetime | None = None

    def apply(self, statement: Select[Any]) -> Select[Any]:
        if self.actor:
            statement = statement.where(AuditEntry.actor == self.actor)
        if self.action:
            # "login" matches login.ok, login.failed, ...
            statement = statement.where(
                (AuditEntry.action == self.action) | AuditEntry.action.startswith(self.action + ".")
            )
        if self.target:
            statement = statement.where(AuditEntry.target == self.target)
        if self.since is not None:
            statement = statement.where(AuditEntry.created_at >= self.since)
        if self.until is not None:
            statement = statement.where(AuditEntry.created_at < self.until)
        return statement


@dataclass(frozen=True)
class AuditPage:
    records: list[AuditRecord]
    page: int
    total: int
    page_size: int = PAGE_SIZE
    actions: list[str] = field(default_factory=list)

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.page_size))


async def record_audit(
    database: Database,
    *,
    actor: str | None,
    action: str,
    target: str | None = None,
    detail: dict[str, Any] | None = None,
    remote_addr: str | None = None,
) -> None:
    """Append one entry, in its own transaction (so it stays even if the caller's fails)."""
    async with database.session() as session, session.begin():
        session.add(
            AuditEntry(
                created_at=utcnow(),
                actor=actor,
                action=action[:64],
                target=target[:255] if target else None,
                detail=dict(detail or {}),
                remote_addr=remote_addr[:64] if remote_addr else None,
            )
        )


async def audit_page(database: Database, where: AuditFilter, page: int = 1) -> AuditPage:
    """One page of entries, newest first, with the total count and the known actions."""
    page = max(1, page)
    async with database.session() as session:
        total = await session.scalar(where.apply(select(func.count()).select_from(AuditEntry)))
        rows = (
            await session.scalars(
                where.apply(select(AuditEntry))
                .order_by(AuditEntry.created_at.desc(), AuditEntry.id.desc())
                .limit(PAGE_SIZE)
                .offset((page - 1) * PAGE_SIZE)
            )
        ).all()
        actions = (
            await session.scalars(select(AuditEntry.action).distinct().order_by(AuditEntry.action))
        ).all()
    return AuditPage([_record(r) for r in rows], page, int(total or 0), actions=list(actions))


async def audit_records(database: Database, where: AuditFilter) -> list[AuditRecord]:
    """Every matching entry, oldest first (for the CSV export)."""
    async with database.session() as session:
        rows = (
            await session.scalars(
                where.apply(select(AuditEntry)).order_by(AuditEntry.created_at, AuditEntry.id)
            )
        ).all()
    return [_record(r) for r in rows]


def audit_csv(records: Sequence[AuditRecord]) -> str:
    """CSV text; cells that a spreadsheet would run as a formula are made inert."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for r in records:
        detail = ";".join(f"{k}={v}" for k, v in sorted(r.detail.items()))
        writer.writerow(
            [
                str(r.id),
                r.created_at.isoformat(),
                _cell(r.actor or ""),
                _cell(r.action),
                _cell(r.target or ""),
                _cell(detail),
                _cell(r.remote_addr or ""),
            ]
        )
    return out.getvalue()


def _cell(value: str) -> str:
    if value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def _record(row: AuditEntry) -> AuditRecord:
    return AuditRecord(
        id=row.id,
        created_at=row.created_at,
        actor=row.actor,
        action=row.action,
        target=row.target,
        detail=dict(row.detail or {}),
        remote_addr=row.remote_addr,
    )


async def audit(
    request: web.Request,
    action: str,
    *,
    target: str | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    """`record_audit` for a request handler: the logged-in account is the actor."""
    from bot.dashboard.app import SERVICES
    from bot.dashboard.security import IDENTITY

    ident = request.get(IDENTITY)
    await record_audit(
        request.app[SERVICES].database,
        actor=getattr(ident, "name", None),
        action=action,
        target=target,
        detail=detail,
        remote_addr=request.remote,
    )
