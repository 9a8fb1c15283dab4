"""The start page: what this person can do here."""

from __future__ import annotations

from typing import Any

import aiohttp_jinja2
from aiohttp import web

from bot.dashboard.app import NAVIGATION, nav
from bot.dashboard.security import identity, requires_role
from bot.storage.models import ROLES

routes = web.RouteTableDef()
NAV = [nav(0, "Home", "/", *ROLES)]


@routes.get("/", name="home")
@requires_role(*ROLES)
@aiohttp_jinja2.template("home.html")
async def home(request: web.Request) -> dict[str, Any]:
    ident = identity(request)
    pages = [n for n in request.app[NAVIGATION] if ident.role in n.roles and n.path != "/"]
    return {"pages": pages, "password_changed": request.query.get("password") == "changed"}
