"""Building the dashboard application: keys, middlewares, templates, static files, pages."""

from __future__ import annotations

import importlib
import logging
import pkgutil
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol
from urllib.parse import urlsplit

import aiohttp_jinja2
import jinja2
from aiohttp import web
from aiohttp.typedefs import Handler
from markupsafe import Markup, escape

from bot.content.database_provider import LibrarySource
from bot.conversation import Conversation
from bot.dashboard.accounts import Accounts
from bot.dashboard.security import (
    CSRF_FIELD,
    CSRF_TOKEN,
    IDENTITY,
    PUBLIC,
    CookiePolicy,
    add_security_headers,
    build_guard,
    roles_of,
)
from bot.dashboard.sessions import Sessions
from bot.settings import Settings
from bot.storage.database import Database
from bot.storage.store import Store

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"
VIEWS_PACKAGE = "bot.dashboard.views"


class DashboardServices(Protocol):
    """What the dashboard uses of `bot.services.Services` (tests may pass their own)."""

    database: Database
    store: Store
    conversation: Conversation

    @property
    def library(self) -> LibrarySource: ...


@dataclass(frozen=True, order=True)
class NavItem:
    """A link in the navigation bar, shown to the given roles, sorted by `order`."""

    order: int
    label: str
    path: str
    roles: frozenset[str]


def nav(order: int, label: str, path: str, *roles: str) -> NavItem:
    return NavItem(order, label, path, frozenset(roles))


SETTINGS = web.AppKey("settings", Settings)
SERVICES: web.AppKey[DashboardServices] = web.AppKey("services")
ACCOUNTS = web.AppKey("accounts", Accounts)
SESSIONS = web.AppKey("sessions", Sessions)
COOKIES = web.AppKey("cookies", CookiePolicy)
NAVIGATION: web.AppKey[tuple[NavItem, ...]] = web.AppKey("navigation")


def view_modules() -> list[ModuleType]:
    """Every module of `bot/dashboard/views/`, by name: adding a file adds its pages."""
    package = importlib.import_module(VIEWS_PACKAGE)
    names = sorted(m.name for m in pkgutil.iter_modules(package.__path__))
    return [importlib.import_module(f"{VIEWS_PACKAGE}.{name}") for name in names]


def create_dashboard(settings: Settings, services: DashboardServices) -> web.Application:
    """The dashboard's aiohttp application, with every page of `bot/dashboard/views/`."""
    sessions = Sessions(services.database, timedelta(hours=settings.dashboard_session_hours))
    cookies = CookiePolicy(
        settings.dashboard_secure_cookies, int(settings.dashboard_session_hours * 3600)
    )
    app = web.Application(
        middlewares=[_error_pages, build_guard(sessions, cookies)],
        client_max_size=1024 * 1024,
    )
    app[SETTINGS] = settings
    app[SERVICES] = services
    app[ACCOUNTS] = Accounts(
        services.database,
        settings.dashboard_login_max_failures,
        settings.dashboard_login_lock_minutes,
    )
    app[SESSIONS] = sessions
    app[COOKIES] = cookies
    env = aiohttp_jinja2.setup(
        app,
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        context_processors=[_page_context],
    )
    env.filters["user_text"] = user_text
    env.filters["safe_href"] = safe_href
    env.filters["when"] = when
    items: list[NavItem] = []
    for module in view_modules():
        routes = getattr(module, "routes", None)
        if isinstance(routes, web.RouteTableDef):
            app.router.add_routes(routes)
        items.extend(getattr(module, "NAV", ()))
        setup: Callable[[web.Application], None] | None = getattr(module, "setup", None)
        if setup is not None:
            setup(app)
    app[NAVIGATION] = tuple(sorted(items))
    app.router.add_static("/static/", STATIC, name="static", append_version=True)
    unguarded = unguarded_routes(app)
    if unguarded:
        raise RuntimeError(f"dashboard routes without @requires_role or @public: {unguarded}")
    app.on_response_prepare.append(add_security_headers)
    return app


def unguarded_routes(app: web.Application) -> list[str]:
    return [
        f"{route.method} {route.resource.canonical}"
        for route in app.router.routes()
        if route.resource is not None
        and not isinstance(route.resource, web.StaticResource)
        and roles_of(route.handler) is None
    ]


def public_routes(app: web.Application) -> list[web.AbstractRoute]:
    return [r for r in app.router.routes() if roles_of(r.handler) is PUBLIC]


async def _page_context(request: web.Request) -> dict[str, Any]:
    ident = request.get(IDENTITY)
    token = request.get(CSRF_TOKEN, "")
    items = request.app[NAVIGATION]
    return {
        "identity": ident,
        "csrf_token": token,
        "csrf_field": lambda: Markup('<input type="hidden" name="{}" value="{}">').format(
            CSRF_FIELD, token
        ),
        "navigation": [n for n in items if ident is not None and ident.role in n.roles],
        "current_path": request.path,
        # /static/name?v=<hash>: a changed file is fetched again despite caching.
        "static": lambda name: str(request.app.router["static"].url_for(filename=name)),
    }


@web.middleware
async def _error_pages(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Errors as pages in the layout (for people) or plain text (for fetch and tools)."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400 or "text/html" not in request.headers.get("Accept", ""):
            raise
        return await _error_page(request, exc.status, exc.reason, exc.text or "")
    except Exception:
        log.exception("dashboard error on %s %s", request.method, request.path)
        return await _error_page(request, 500, "Internal Server Error", "Something went wrong.")


async def _error_page(request: web.Request, status: int, reason: str, text: str) -> web.Response:
    message = text if text and not text.startswith(f"{status}:") else ""
    # The guard may have refused the request before aiohttp_jinja2's context middleware
    # ran, so the layout's variables are added here.
    context = await _page_context(request)
    context.update({"status": status, "reason": reason, "message": message})
    return aiohttp_jinja2.render_template("error.html", request, context, status=status)


# -- template filters: how text from outside is shown -----------------------------------------

# Bidirectional controls can make text read differently from what it is (U+202E reverses
# what follows); in what bot users wrote they are shown as visible codes instead.
BIDI_CONTROLS = frozenset(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)


def user_text(value: object) -> Markup:
    """Text a bot user (or anyone outside the team) wrote: escaped, bidi controls made
    visible, invisible format characters shown, isolated from the page's direction."""
    text = "" if value is None else str(value)
    shown = "".join(
        f"[U+{ord(ch):04X}]"
        if ch in BIDI_CONTROLS or (unicodedata.category(ch) == "Cf" and ch != "\u200d")
        else ch
        for ch in text
    )
    return Markup('<bdi class="user-text">') + escape(shown) + Markup("</bdi>")


def safe_href(value: object) -> str:
    """A link target that cannot run script: http(s), mailto, tel or a local path, else '#'."""
    url = "" if value is None else str(value).strip()
    scheme = urlsplit(url).scheme.lower()
    if scheme in ("http", "https", "mailto", "tel"):
        return url
    if not scheme and url.startswith("/") and not url.startswith("//"):
        return url
    return "#"


def when(value: datetime | None) -> str:
    return "" if value is None else value.strftime("%Y-%m-%d %H:%M UTC")


def role_label(role: str) -> str:
    return role.replace("_", " ")


def all_routes(app: web.Application) -> Sequence[web.AbstractRoute]:
    return list(app.router.routes())
