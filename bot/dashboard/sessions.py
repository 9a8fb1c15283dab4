"""Dashboard sessions in the database, so that several replicas behind a balancer share them.

The cookie carries a random token; the table keeps only its SHA-256, so reading the database
is not enough to take over a session. A new token is issued at every login (no fixation),
and each session has its own CSRF token.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, update

from bot.storage.database import Database
from bot.storage.models import Account, DashboardSession, utcnow


@dataclass(frozen=True)
class Identity:
    """Who is asking: the logged-in account and its session, as the request handlers see it."""

    account_id: int
    name: str
    role: str
    must_change_password: bool
    session_id: str
    csrf_token: str
    expires_at: datetime
    data: dict[str, Any]


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Sessions:
    def __init__(self, database: Database, lifetime: timedelta) -> None:
        self.database = database
        self.lifetime = lifetime

    async def create(self, account_id: int) -> str:
        """Start a session; returns the token for the cookie (shown nowhere else)."""
        token = secrets.token_urlsafe(32)
        now = utcnow()
        async with self.database.session() as session, session.begin():
            session.add(
                DashboardSession(
                    id=_digest(token),
                    account_id=account_id,
                    csrf_token=secrets.token_urlsafe(32),
                    created_at=now,
                    expires_at=now + self.lifetime,
                    data={},
                )
            )
        return token

    async def identify(self, token: str) -> Identity | None:
        """The session's identity, or None when unknown, expired or its account disabled."""
        if not token or len(token) > 128:
            return None
        now = utcnow()
        statement = (
            select(DashboardSession, Account)
            .join(Account, Account.id == DashboardSession.account_id)
            .where(DashboardSession.id == _digest(token))
        )
        async with self.database.session() as session:
            found = (await session.execute(statement)).one_or_none()
        if found is None:
            return None
        row, account = found
        if row.expires_at <= now or not account.active:
            return None
        return Identity(
            account_id=account.id,
            name=account.name,
            role=account.role,
            must_change_password=account.must_change_password,
            session_id=row.id,
            csrf_token=row.csrf_token,
            expires_at=row.expires_at,
            data=dict(row.data or {}),
        )

    async def end(self, token: str) -> None:
        async with self.database.session() as session, session.begin():
            await session.execute(
                delete(DashboardSession).where(DashboardSession.id == _digest(token))
            )

    async def end_others(self, account_id: int, keep_session_id: str) -> None:
        """End every other session of the account (after a password change)."""
        async with self.database.session() as session, session.begin():
            await session.execute(
                delete(DashboardSession).where(
                    DashboardSession.account_id == account_id,
                    DashboardSession.id != keep_session_id,
                )
            )

    async def save_data(self, session_id: str, data: dict[str, Any]) -> None:
        async with self.database.session() as session, session.begin():
            await session.execute(
                update(DashboardSession).where(DashboardSession.id == session_id).values(data=data)
            )

    async def purge_expired(self) -> int:
        async with self.database.session() as session, session.begin():
            result = await session.execute(
                delete(DashboardSession).where(DashboardSession.expires_at <= utcnow())
            )
        return int(getattr(result, "rowcount", 0) or 0)
