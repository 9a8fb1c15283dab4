"""Accounts, for admins: create, disable, enable, change role, unlock, reset a password.

A password an admin hands out (new account, reset) is random, shown once on the page, and
must be changed at its first use. Every change is in the audit log. An admin cannot disable
or demote their own account, so the dashboard always keeps an admin who can log in.
"""

from __future__ import annotations

from typing import Any

import aiohttp_jinja2
from aiohttp import web

from bot.dashboard.accounts import AccountError, random_password
from bot.dashboard.app import ACCOUNTS, nav
from bot.dashboard.audit import audit
from bot.dashboard.security import identity, requires_role
from bot.storage.models import ROLES

routes = web.RouteTableDef()
NAV = [nav(85, "Accounts", "/admin/accounts", "admin")]
ACTIONS = ("disable", "enable", "unlock", "reset-password", "role")


async def _page(
    request: web.Request,
    *,
    error: str = "",
    handed_out: tuple[str, str] | None = None,
    status: int = 200,
) -> web.Response:
    context: dict[str, Any] = {
        "accounts": await request.app[ACCOUNTS].all(),
        "roles": ROLES,
        "error": error,
        "handed_out": handed_out,
    }
    return aiohttp_jinja2.render_template("accounts.html", request, context, status=status)


@routes.get("/admin/accounts", name="accounts")
@requires_role("admin")
async def accounts_page(request: web.Request) -> web.StreamResponse:
    return await _page(request)


@routes.post("/admin/accounts", name="accounts_create")
@requires_role("admin")
async def create_account(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    name, role = str(form.get("name", "")), str(form.get("role", ""))
    password = random_password()
    try:
        account = await request.app[ACCOUNTS].create(
            name, role, password, must_change_password=True
        )
    except AccountError as exc:
        return await _page(request, error=str(exc), status=400)
    await audit(request, "account.create", target=account.name, detail={"role": role})
    return await _page(request, handed_out=(account.name, password))


@routes.post("/admin/accounts/{name}/{action}", name="accounts_change")
@requires_role("admin")
async def change_account(request: web.Request) -> web.StreamResponse:
    name, action = request.match_info["name"], request.match_info["action"]
    if action not in ACTIONS:
        raise web.HTTPNotFound()
    accounts = request.app[ACCOUNTS]
    form = await request.post()
    detail: dict[str, Any] = {}
    handed_out = None
    try:
        if name == identity(request).name and action in ("disable", "role"):
            raise AccountError("you cannot disable or change the role of your own account")
        if action == "disable":
            await accounts.set_active(name, False)
        elif action == "enable":
            await accounts.set_active(name, True)
        elif action == "unlock":
            await accounts.unlock(name)
        elif action == "reset-password":
            password = random_password()
            account = await accounts.set_password(name, password, must_change_password=True)
            handed_out = (account.name, password)
        else:
            role = str(form.get("role", ""))
            await accounts.set_role(name, role)
            detail["role"] = role
    except AccountError as exc:
        return await _page(request, error=str(exc), status=400)
    await audit(request, f"account.{action.replace('-', '_')}", target=name, detail=detail)
    if handed_out is not None:
        return await _page(request, handed_out=handed_out)
    raise web.HTTPSeeOther("/admin/accounts")
