"""What every request goes through: who is asking, may they, is the form theirs, and headers.

Deny by default: a handler without `@requires_role(...)` or `@public` makes
`create_dashboard` fail at start-up, so a page cannot be exposed by forgetting a decorator.

- Authentication: the session cookie names a row of `dashboard_sessions` (see `sessions.py`).
  Unauthenticated GET/HEAD requests are redirected to the login page; other methods get 401.
- Roles: `@requires_role("admin", "moderator")` lists who may use a handler; others get 403.
  An account whose password must be changed reaches only the password page and logout.
- CSRF: every unsafe method (POST, PUT, PATCH, DELETE) needs the session's token, as the
  `csrf_token` form field (`{{ csrf_field() }}` in a template) or the `X-CSRF-Token` header
  (fetch, `static/dashboard.js` does it), else 403. Before login, the token lives in its own
  cookie. A cross-site `Origin` header is refused as well.
- Headers: a strict Content-Security-Policy (no inline script or style), nosniff, no referrer,
  no framing, and `Cache-Control: no-store` on everything but static files.
"""

from __future__ import annotations

import hmac
import logging
import secrets
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar
from urllib.parse import quote, urlsplit

from aiohttp import web
from aiohttp.typedefs import Handler

from bot.dashboard.sessions import Identity, Sessions
from bot.storage.models import ROLES

log = logging.getLogger(__name__)

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()",
}
IDENTITY: web.RequestKey[Identity | None] = web.RequestKey("identity")
CSRF_TOKEN = web.RequestKey("csrf_token", str)
STATIC_PREFIX = "/static/"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
PUBLIC: frozenset[str] = frozenset({"*public*"})
ROLES_ATTRIBUTE = "__dashboard_roles__"
# Reachable while the password must be changed (route names).
PASSWORD_CHANGE_ROUTES = frozenset({"password", "password_submit", "logout"})

F = TypeVar("F", bound=Callable[..., Awaitable[web.StreamResponse]])


def requires_role(*roles: str) -> Callable[[F], F]:
    """Allow the handler to the given roles only (and to no one who is not logged in)."""
    unknown = set(roles) - set(ROLES)
    if not roles or unknown:
        raise ValueError(f"requires_role needs roles among {ROLES}, got {roles}")

    def mark(handler: F) -> F:
        setattr(handler, ROLES_ATTRIBUTE, frozenset(roles))
        return handler

    return mark


def public(handler: F) -> F:
    """Allow the handler without logging in (the login page only, in practice)."""
    setattr(handler, ROLES_ATTRIBUTE, PUBLIC)
    return handler


def roles_of(handler: Any) -> frozenset[str] | None:
    roles = getattr(handler, ROLES_ATTRIBUTE, None)
    return roles if isinstance(roles, frozenset) else None


def identity(request: web.Request) -> Identity:
    """The logged-in account of a request to a `@requires_role` handler."""
    found = request.get(IDENTITY)
    if not isinstance(found, Identity):
        raise web.HTTPUnauthorized()
    return found


def remote_addr(request: web.Request) -> str | None:
    return request.remote


class CookiePolicy:
    """Names and attributes of the dashboard's cookies."""

    def __init__(self, secure: bool, max_age_seconds: int) -> None:
        self.secure = secure
        self.max_age = max_age_seconds
        # __Host- cookies must be Secure, for path / and without Domain: no subdomain or
        # plain-http page can set or shadow them.
        prefix = "__Host-" if secure else ""
        self.session = f"{prefix}dv_session"
        self.csrf = f"{prefix}dv_csrf"

    def set(self, response: web.StreamResponse, name: str, value: str, *, session: bool) -> None:
        response.set_cookie(
            name,
            value,
            path="/",
            secure=self.secure,
            httponly=True,
            samesite="Strict",
            max_age=self.max_age if session else None,
        )

    def clear(self, response: web.StreamResponse, name: str) -> None:
        response.del_cookie(name, path="/", secure=self.secure, httponly=True, samesite="Strict")


def login_redirect(request: web.Request) -> web.HTTPFound:
    return web.HTTPFound(f"/login?next={quote(request.path_qs, safe='')}")


def build_guard(sessions: Sessions, cookies: CookiePolicy) -> Callable[..., Any]:
    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith(STATIC_PREFIX):  # public, and no database query
            request[IDENTITY] = None
            return await handler(request)
        token = request.cookies.get(cookies.session, "")
        ident = await sessions.identify(token) if token else None
        request[IDENTITY] = ident
        match = request.match_info
        if match.http_exception is not None:
            return await handler(request)
        roles = roles_of(match.handler)
        if roles is None:  # create_dashboard refuses such routes; belt and braces
            log.error("no @requires_role on %s", request.path)
            raise web.HTTPForbidden()
        new_csrf: str | None = None
        if ident is None:
            csrf = request.cookies.get(cookies.csrf, "")
            if len(csrf) < 32:
                csrf = new_csrf = secrets.token_urlsafe(32)
            request[CSRF_TOKEN] = csrf
        else:
            request[CSRF_TOKEN] = ident.csrf_token
        if roles is not PUBLIC:
            if ident is None:
                if request.method in ("GET", "HEAD"):
                    raise login_redirect(request)
                raise web.HTTPUnauthorized(text="Your session has ended: log in again.")
            if ident.must_change_password and match.route.name not in PASSWORD_CHANGE_ROUTES:
                if request.method in ("GET", "HEAD"):
                    raise web.HTTPFound("/account/password")
                raise web.HTTPForbidden(text="Change your password first.")
            if ident.role not in roles:
                raise web.HTTPForbidden()
        if request.method in UNSAFE_METHODS:
            await _check_csrf(request, request[CSRF_TOKEN] if new_csrf is None else "")
        response = await handler(request)
        if new_csrf is not None:
            cookies.set(response, cookies.csrf, new_csrf, session=False)
        return response

    return guard


async def _check_csrf(request: web.Request, expected: str) -> None:
    # Only the host is compared: behind a TLS proxy the scheme seen here is http. A proxy
    # must pass the Host header on (nginx: `proxy_set_header Host $host;`). With
    # `Referrer-Policy: no-referrer` browsers send `Origin: null` even for the site's own
    # forms, so "null" proves nothing either way: the token decides.
    origin = request.headers.get("Origin")
    if origin not in (None, "null") and urlsplit(origin).netloc != request.host:
        raise web.HTTPForbidden(text="Cross-site request refused.")
    supplied = request.headers.get(CSRF_HEADER, "")
    if not supplied and request.content_type in (
        "application/x-www-form-urlencoded",
        "multipart/form-data",
    ):
        form = await request.post()
        value = form.get(CSRF_FIELD, "")
        supplied = value if isinstance(value, str) else ""
    if not expected or not hmac.compare_digest(supplied.encode(), expected.encode()):
        raise web.HTTPForbidden(
            text="The form has expired or did not come from this site: reload it and try again."
        )


async def add_security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """`on_response_prepare`: runs for every response, errors and static files included."""
    for name, value in SECURITY_HEADERS.items():
        response.headers[name] = value
    if request.path.startswith(STATIC_PREFIX) and response.status < 400:
        response.headers["Cache-Control"] = "no-cache"
    else:
        response.headers["Cache-Control"] = "no-store"
