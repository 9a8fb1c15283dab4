"""Dashboard accounts: argon2 passwords, roles, login throttling, the first admin.

Throttling is per account and lives in the database (so every replica counts the same
failures): after `max_failures` wrong passwords in a row the account is locked for
`lock_minutes`, whoever tries, and the login page says until when.
"""

from __future__ import annotations

import asyncio
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError

from bot.storage.database import Database
from bot.storage.models import ROLES, Account, DashboardSession, utcnow

MIN_PASSWORD_CHARS = 12
FIRST_ADMIN_NAME = "admin"
_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{1,63}$")

_hasher = PasswordHasher()
# Verified when the name is unknown, so that a wrong name takes as long as a wrong password.
_DUMMY_HASH = _hasher.hash(secrets.token_hex(16))


class AccountError(ValueError):
    """A request about accounts that cannot be done; the message says why, for a person."""


@dataclass(frozen=True)
class AccountInfo:
    """An account as the dashboard shows it (never the password hash)."""

    id: int
    name: str
    role: str
    active: bool
    must_change_password: bool
    locked_until: datetime | None
    created_at: datetime
    last_login_at: datetime | None

    @classmethod
    def from_row(cls, row: Account) -> AccountInfo:
        return cls(
            id=row.id,
            name=row.name,
            role=row.role,
            active=row.active,
            must_change_password=row.must_change_password,
            locked_until=row.locked_until,
            created_at=row.created_at,
            last_login_at=row.last_login_at,
        )


@dataclass(frozen=True)
class LoginResult:
    outcome: Literal["ok", "wrong", "locked", "disabled"]
    account: AccountInfo | None = None
    locked_until: datetime | None = None


def check_name(name: str) -> str:
    name = name.strip().lower()
    if not _NAME.match(name):
        raise AccountError(
            "a name is 2 to 64 characters: lower-case letters, digits, '.', '_' or '-'"
        )
    return name


def check_role(role: str) -> str:
    if role not in ROLES:
        raise AccountError(f"the role must be one of {', '.join(ROLES)}")
    return role


def check_password(password: str, name: str) -> None:
    if len(password) < MIN_PASSWORD_CHARS:
        raise AccountError(f"a password has at least {MIN_PASSWORD_CHARS} characters")
    if name and name.lower() in password.lower():
        raise AccountError("a password must not contain the account's name")


def random_password() -> str:
    return secrets.token_urlsafe(15)  # 20 characters, 120 bits


class Accounts:
    """Account queries and changes on a started `Database`."""

    def __init__(
        self, database: Database, max_failures: int = 5, lock_minutes: float = 15.0
    ) -> None:
        self.database = database
        self.max_failures = max_failures
        self.lock_duration = timedelta(minutes=lock_minutes)

    async def create(
        self, name: str, role: str, password: str, *, must_change_password: bool = False
    ) -> AccountInfo:
        name = check_name(name)
        check_role(role)
        check_password(password, name)
        row = Account(
            name=name,
            role=role,
            password_hash=await _hash(password),
            active=True,
            must_change_password=must_change_password,
            failed_logins=0,
            created_at=utcnow(),
        )
        try:
            async with self.database.session() as session, session.begin():
                session.add(row)
        except IntegrityError:
            raise AccountError(f"an account named {name!r} exists already") from None
        return AccountInfo.from_row(row)

    async def get(self, account_id: int) -> AccountInfo | None:
        async with self.database.session() as session:
            row = await session.get(Account, account_id)
            return AccountInfo.from_row(row) if row else None

    async def by_name(self, name: str) -> AccountInfo | None:
        async with self.database.session() as session:
            row = await session.scalar(select(Account).where(Account.name == name.lower()))
            return AccountInfo.from_row(row) if row else None

    async def all(self) -> list[AccountInfo]:
        async with self.database.session() as session:
            rows = (await session.scalars(select(Account).order_by(Account.name))).all()
            return [AccountInfo.from_row(r) for r in rows]

    async def authenticate(self, name: str, password: str) -> LoginResult:
        """Check a name and password, counting failures and locking after too many."""
        now = utcnow()
        async with self.database.session() as session, session.begin():
            row = await session.scalar(
                select(Account).where(Account.name == name.strip().lower()).with_for_update()
            )
            if row is None:
                await _verify(_DUMMY_HASH, password)
                return LoginResult("wrong")
            if row.locked_until is not None and row.locked_until > now:
                return LoginResult("locked", locked_until=row.locked_until)
            if not await _verify(row.password_hash, password):
                row.failed_logins += 1
                if row.failed_logins >= self.max_failures:
                    row.failed_logins = 0
                    row.locked_until = now + self.lock_duration
                    return LoginResult("locked", locked_until=row.locked_until)
                return LoginResult("wrong")
            if not row.active:
                return LoginResult("disabled")
            row.failed_logins = 0
            row.locked_until = None
            row.last_login_at = now
            if _hasher.check_needs_rehash(row.password_hash):
                row.password_hash = await _hash(password)
            return LoginResult("ok", AccountInfo.from_row(row))

    async def verify_password(self, account_id: int, password: str) -> bool:
        async with self.database.session() as session:
            row = await session.get(Account, account_id)
            return row is not None and await _verify(row.password_hash, password)

    async def set_password(
        self, name: str, password: str, *, must_change_password: bool = False
    ) -> AccountInfo:
        """Set a new password, end every session of the account and lift a lock."""
        name = check_name(name)
        check_password(password, name)
        return await self._change(
            name,
            password_hash=await _hash(password),
            must_change_password=must_change_password,
            failed_logins=0,
            locked_until=None,
            end_sessions=True,
        )

    async def set_active(self, name: str, active: bool) -> AccountInfo:
        """Disable (ending its sessions) or enable an account."""
        return await self._change(check_name(name), active=active, end_sessions=not active)

    async def set_role(self, name: str, role: str) -> AccountInfo:
        return await self._change(check_name(name), role=check_role(role), end_sessions=True)

    async def unlock(self, name: str) -> AccountInfo:
        return await self._change(check_name(name), failed_logins=0, locked_until=None)

    async def active_admin_exists(self) -> bool:
        async with self.database.session() as session:
            count = await session.scalar(
                select(func.count())
                .select_from(Account)
                .where(Account.role == "admin", Account.active.is_(True))
            )
            return bool(count)

    async def ensure_admin(self) -> tuple[str, str] | None:
        """Create an admin with a random password when no active admin exists.

        Returns (name, password) to show once, or None when an admin exists. The password
        must be changed at the first login.
        """
        if await self.active_admin_exists():
            return None
        password = random_password()
        for suffix in ("", *(f"-{n}" for n in range(2, 10))):
            try:
                account = await self.create(
                    FIRST_ADMIN_NAME + suffix, "admin", password, must_change_password=True
                )
            except AccountError:
                if await self.active_admin_exists():  # another replica was first
                    return None
                continue
            return account.name, password
        raise AccountError("could not create a first admin: names admin to admin-9 are taken")

    async def _change(
        self, name: str, *, end_sessions: bool = False, **values: object
    ) -> AccountInfo:
        async with self.database.session() as session, session.begin():
            row = await session.scalar(select(Account).where(Account.name == name))
            if row is None:
                raise AccountError(f"no account named {name!r}")
            for key, value in values.items():
                setattr(row, key, value)
            if end_sessions:
                await session.execute(
                    delete(DashboardSession).where(DashboardSession.account_id == row.id)
                )
            return AccountInfo.from_row(row)


async def _hash(password: str) -> str:
    # argon2 takes tens of milliseconds of CPU on purpose: off the event loop.
    return await asyncio.to_thread(_hasher.hash, password)


async def _verify(password_hash: str, password: str) -> bool:
    def verify() -> bool:
        try:
            return bool(_hasher.verify(password_hash, password))
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    return await asyncio.to_thread(verify)
