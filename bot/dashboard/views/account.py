"""The logged-in person's own account: changing the password."""

from __future__ import annotations

import aiohttp_jinja2
from aiohttp import web

from bot.dashboard.accounts import AccountError, check_password
from bot.dashboard.app import ACCOUNTS, COOKIES, SERVICES, SESSIONS
from bot.dashboard.audit import record_audit
from bot.dashboard.security import identity, remote_addr, requires_role
from bot.storage.models import ROLES

routes = web.RouteTableDef()


@routes.get("/account/password", name="password")
@requires_role(*ROLES)
async def password_page(request: web.Request) -> web.StreamResponse:
    return _form(request, "", "")


@routes.post("/account/password", name="password_submit")
@requires_role(*ROLES)
async def password_submit(request: web.Request) -> web.StreamResponse:
    ident = identity(request)
    form = await request.post()
    current = str(form.get("current", ""))
    new = str(form.get("new", ""))
    repeat = str(form.get("repeat", ""))
    accounts = request.app[ACCOUNTS]
    if not await accounts.verify_password(ident.account_id, current):
        return _form(request, "The current password is wrong.", "", status=400)
    if new != repeat:
        return _form(request, "The two new passwords differ.", "", status=400)
    if new == current:
        return _form(request, "The new password must differ from the current one.", "", 400)
    try:
        check_password(new, ident.name)
        await accounts.set_password(ident.name, new)  # ends every session of the account
    except AccountError as exc:
        return _form(request, str(exc), "", status=400)
    await record_audit(
        request.app[SERVICES].database,
        actor=ident.name,
        action="account.password_change",
        target=ident.name,
        remote_addr=remote_addr(request),
    )
    # A fresh session for this browser; others (maybe an intruder's) stay logged out.
    cookies = request.app[COOKIES]
    token = await request.app[SESSIONS].create(ident.account_id)
    response = web.HTTPFound("/?password=changed")
    cookies.set(response, cookies.session, token, session=True)
    raise response


def _form(request: web.Request, error: str, notice: str, status: int = 200) -> web.Response:
    return aiohttp_jinja2.render_template(
        "password.html", request, {"error": error, "notice": notice}, status=status
    )
