"""Logging in and out. A new session token at every login (no session fixation)."""

from __future__ import annotations

import re
import unicodedata
from typing import Any

import aiohttp_jinja2
from aiohttp import web

from bot.dashboard.app import ACCOUNTS, COOKIES, SERVICES, SESSIONS
from bot.dashboard.audit import record_audit
from bot.dashboard.security import IDENTITY, identity, public, remote_addr, requires_role
from bot.storage.models import ROLES

routes = web.RouteTableDef()


# A local path of plain URL characters: no "//host", no backslash, no whitespace or control
# characters (browsers drop tabs and newlines, turning "/\t/evil.example" into "//evil.example").
_LOCAL_PATH = re.compile(r"/(?![/\\])[A-Za-z0-9/_.~%?=&+:;,@!$'()*-]*")


def _next_path(raw: str) -> str:
    """Only a local path: an open redirect to another site would help phishing."""
    return raw if len(raw) <= 2000 and _LOCAL_PATH.fullmatch(raw) else "/"


@routes.get("/login", name="login")
@public
async def login_page(request: web.Request) -> web.StreamResponse:
    if request.get(IDENTITY) is not None:
        raise web.HTTPFound("/")
    return _form(request, {"next": _next_path(request.query.get("next", "/"))})


@routes.post("/login", name="login_submit")
@public
async def login_submit(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    # No account name holds a control character; PostgreSQL refuses a NUL in any query.
    # Format characters (an RTL override) stay, so the audit log shows what was tried.
    raw_name = str(form.get("name", ""))
    name = "".join(c for c in raw_name if unicodedata.category(c) != "Cc").strip().lower()[:64]
    password = str(form.get("password", ""))
    next_path = _next_path(str(form.get("next", "/")))
    database = request.app[SERVICES].database
    result = await request.app[ACCOUNTS].authenticate(name, password)
    if result.outcome != "ok" or result.account is None:
        await record_audit(
            database,
            actor=None,
            action=f"login.{result.outcome}" if result.outcome != "wrong" else "login.failed",
            target=name or None,
            remote_addr=remote_addr(request),
        )
        if result.outcome == "locked" and result.locked_until is not None:
            error = (
                "Too many failed attempts: this account is locked until "
                f"{result.locked_until:%H:%M} UTC. Try again later or ask an admin to unlock it."
            )
        elif result.outcome == "disabled":
            error = "This account is disabled. Ask an admin."
        else:
            error = "Wrong name or password."
        return _form(request, {"next": next_path, "name": name, "error": error}, status=401)
    cookies = request.app[COOKIES]
    sessions = request.app[SESSIONS]
    old = request.cookies.get(cookies.session)
    if old:
        await sessions.end(old)
    token = await sessions.create(result.account.id)
    await record_audit(
        database,
        actor=result.account.name,
        action="login.ok",
        target=result.account.name,
        remote_addr=remote_addr(request),
    )
    destination = "/account/password" if result.account.must_change_password else next_path
    response = web.HTTPFound(destination)
    cookies.set(response, cookies.session, token, session=True)
    cookies.clear(response, cookies.csrf)
    raise response


@routes.post("/logout", name="logout")
@requires_role(*ROLES)
async def logout(request: web.Request) -> web.StreamResponse:
    cookies = request.app[COOKIES]
    token = request.cookies.get(cookies.session, "")
    await request.app[SESSIONS].end(token)
    ident = identity(request)
    await record_audit(
        request.app[SERVICES].database,
        actor=ident.name,
        action="logout",
        target=ident.name,
        remote_addr=remote_addr(request),
    )
    response = web.HTTPFound("/login")
    cookies.clear(response, cookies.session)
    raise response


def _form(request: web.Request, context: dict[str, Any], status: int = 200) -> web.Response:
    context.setdefault("name", "")
    context.setdefault("error", "")
    return aiohttp_jinja2.render_template("login.html", request, context, status=status)
