"""`python -m bot users ...`: dashboard accounts from the command line.

For the first accounts and for emergencies (every admin locked out). Passwords are asked
with getpass on a terminal, or read from the first line of stdin otherwise (for scripts:
`printf '%s\\n' "$PASSWORD" | python -m bot users add alice --role moderator`).
"""

from __future__ import annotations

import getpass
import sys
from typing import TextIO

from bot.dashboard.accounts import AccountError, AccountInfo, Accounts, check_password
from bot.dashboard.audit import record_audit
from bot.settings import Settings
from bot.storage.database import Database


def read_password(name: str, stdin: TextIO = sys.stdin) -> str:
    if stdin.isatty():
        first = getpass.getpass(f"password for {name}: ")
        check_password(first, name)
        if getpass.getpass("again: ") != first:
            raise AccountError("the two passwords differ")
        return first
    password = stdin.readline().rstrip("\r\n")
    check_password(password, name)
    return password


async def users_command(settings: Settings, action: str, name: str, role: str) -> str:
    """Run one `users` action; returns what to print. Raises AccountError for a person."""
    database = Database(settings.database_url)
    await database.start()
    try:
        accounts = Accounts(database)
        if action == "list":
            return _table(await accounts.all())
        if action == "add":
            password = read_password(name)
            # Chosen by an admin: the person picks their own at first login.
            account = await accounts.create(name, role, password, must_change_password=True)
            detail = {"role": role, "via": "command line"}
            message = f"created {account.name} ({account.role})"
        elif action == "disable":
            account = await accounts.set_active(name, False)
            detail, message = {"via": "command line"}, f"disabled {account.name}"
        elif action == "enable":
            account = await accounts.set_active(name, True)
            detail, message = {"via": "command line"}, f"enabled {account.name}"
        elif action == "password":
            account = await accounts.set_password(
                name, read_password(name), must_change_password=True
            )
            detail, message = {"via": "command line"}, f"new password set for {account.name}"
        elif action == "unlock":
            account = await accounts.unlock(name)
            detail, message = {"via": "command line"}, f"unlocked {account.name}"
        else:
            raise AccountError(f"unknown action {action!r}")
        await record_audit(
            database, actor=None, action=f"account.{action}", target=account.name, detail=detail
        )
        return message
    finally:
        await database.close()


def _table(accounts: list[AccountInfo]) -> str:
    if not accounts:
        return "no accounts yet (the dashboard creates an admin at its first start)"
    lines = [f"{'name':<24} {'role':<15} {'status':<10} last login"]
    for a in accounts:
        status = "active" if a.active else "disabled"
        if a.locked_until is not None:
            status = "locked"
        last = a.last_login_at.strftime("%Y-%m-%d %H:%M") if a.last_login_at else "never"
        lines.append(f"{a.name:<24} {a.role:<15} {status:<10} {last}")
    return "\n".join(lines)
