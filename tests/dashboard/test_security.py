"""Security of the dashboard: every route guarded, CSRF, headers, cookies, sessions, throttling,
and hostile text rendered inert.

The route tests walk `app.router`, so a page added later is covered without a new test.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from sqlalchemy import update

from bot.dashboard.app import public_routes
from bot.dashboard.audit import AuditFilter, audit_records
from bot.dashboard.security import CSP, roles_of
from bot.dashboard.views.login import _next_path
from bot.storage.models import ROLES, DashboardSession
from tests.dashboard.conftest import PASSWORD, DashboardUnderTest

UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}


def guarded_routes(app: web.Application) -> list[tuple[str, str, frozenset[str]]]:
    """(method, concrete path, roles) of every route except static files and HEAD twins."""
    found = []
    for route in app.router.routes():
        if isinstance(route.resource, web.StaticResource) or route.method == "HEAD":
            continue
        roles = roles_of(route.handler)
        assert roles is not None
        if route.resource is None or route in public_routes(app):
            continue
        path = re.sub(r"\{[^}]+\}", "1", route.resource.canonical)
        found.append((route.method, path, roles))
    assert found
    return found


async def request(client: TestClient[Any, Any], method: str, path: str, **kwargs: Any) -> Any:
    return await client.request(method, path, allow_redirects=False, **kwargs)


async def test_only_the_login_page_is_public(dashboard: DashboardUnderTest) -> None:
    public = {(r.method, r.resource.canonical) for r in public_routes(dashboard.app) if r.resource}
    assert public == {("GET", "/login"), ("POST", "/login"), ("HEAD", "/login")}


async def test_every_route_sends_a_visitor_who_is_not_logged_in_to_the_login_page(
    dashboard: DashboardUnderTest,
) -> None:
    client = await dashboard.anonymous()
    for method, path, _roles in guarded_routes(dashboard.app):
        response = await request(client, method, path)
        if method in UNSAFE:
            assert response.status == 401, (method, path)
        else:
            assert response.status == 302, (method, path)
            assert response.headers["Location"].startswith("/login?next="), (method, path)


async def test_every_route_refuses_the_roles_it_does_not_list(
    dashboard: DashboardUnderTest,
) -> None:
    for role in ROLES:
        client = await dashboard.client(role)
        token = await dashboard.csrf(client)
        for method, path, roles in guarded_routes(dashboard.app):
            if role in roles:
                continue
            response = await request(client, method, path, headers={"X-CSRF-Token": token})
            assert response.status == 403, (role, method, path)


async def test_every_unsafe_route_refuses_a_request_without_the_csrf_token(
    dashboard: DashboardUnderTest,
) -> None:
    clients = {role: await dashboard.client(role) for role in ROLES}
    for method, path, roles in guarded_routes(dashboard.app):
        if method not in UNSAFE:
            continue
        client = clients[sorted(roles)[0]]
        missing = await request(client, method, path, data={"text": "hello"})
        assert missing.status == 403, (method, path)
        wrong = await request(client, method, path, data={"text": "hello", "csrf_token": "x" * 43})
        assert wrong.status == 403, (method, path)


async def test_a_cross_site_origin_is_refused_even_with_the_token(
    dashboard: DashboardUnderTest,
) -> None:
    client = await dashboard.client("admin")
    token = await dashboard.csrf(client)
    response = await request(
        client,
        "POST",
        "/try/reset",
        data={"csrf_token": token},
        headers={"Origin": "https://evil.example"},
    )
    assert response.status == 403


async def test_the_login_form_needs_its_csrf_token(dashboard: DashboardUnderTest) -> None:
    account = await dashboard.add_account("moderator")
    client = await dashboard.anonymous()
    await client.get("/login")
    response = await request(
        client, "POST", "/login", data={"name": account.name, "password": PASSWORD}
    )
    assert response.status == 403


async def test_every_response_carries_the_security_headers(
    dashboard: DashboardUnderTest,
) -> None:
    client = await dashboard.client("admin")
    for path in ("/", "/login", "/try", "/admin/audit", "/no-such-page", "/static/dashboard.css"):
        response = await request(client, "GET", path)
        headers = response.headers
        assert headers["Content-Security-Policy"] == CSP, path
        assert "unsafe-inline" not in CSP and "unsafe-eval" not in CSP
        assert "script-src 'self'" in CSP and "frame-ancestors 'none'" in CSP
        assert headers["X-Content-Type-Options"] == "nosniff", path
        assert headers["Referrer-Policy"] == "no-referrer", path
        assert headers["X-Frame-Options"] == "DENY", path
        expected = "no-cache" if path.startswith("/static/") else "no-store"
        assert headers["Cache-Control"] == expected, path


async def test_pages_load_no_inline_script_or_style(dashboard: DashboardUnderTest) -> None:
    client = await dashboard.client("admin")
    for path in ("/", "/login", "/try", "/admin/audit", "/account/password"):
        html = await (await client.get(path)).text()
        assert not re.search(r"<script(?![^>]*\bsrc=)", html), path
        assert "<style" not in html and " style=" not in html, path
        assert not re.search(r"\son[a-z]+=", html), path


async def test_the_session_cookie_is_secure_httponly_strict_and_expires(
    dashboard: DashboardUnderTest,
) -> None:
    account = await dashboard.add_account("moderator")
    client = await dashboard.anonymous()
    response = await dashboard.log_in(client, account.name)
    cookie = response.cookies["__Host-dv_session"]
    assert cookie["secure"] is True
    assert cookie["httponly"] is True
    assert cookie["samesite"] == "Strict"
    assert cookie["path"] == "/"
    assert int(cookie["max-age"]) == int(dashboard.settings.dashboard_session_hours * 3600)


async def test_logging_in_issues_a_new_session_id_and_ends_the_old_one(
    dashboard: DashboardUnderTest,
) -> None:
    account = await dashboard.add_account("moderator")
    client = await dashboard.anonymous()
    # A session id planted by an attacker before login is not kept.
    client.session.cookie_jar.update_cookies(
        {"__Host-dv_session": "planted-by-an-attacker"}, client.make_url("/")
    )
    first = (await dashboard.log_in(client, account.name)).cookies["__Host-dv_session"].value
    assert first != "planted-by-an-attacker"
    assert (await request(client, "GET", "/")).status == 200
    second = (await dashboard.log_in(client, account.name)).cookies["__Host-dv_session"].value
    assert second != first
    stale = await dashboard.anonymous()
    stale.session.cookie_jar.update_cookies({"__Host-dv_session": first}, stale.make_url("/"))
    assert (await request(stale, "GET", "/")).status == 302
    fresh = await dashboard.anonymous()
    fresh.session.cookie_jar.update_cookies({"__Host-dv_session": second}, fresh.make_url("/"))
    assert (await request(fresh, "GET", "/")).status == 200


async def test_logout_ends_the_session_on_the_server(dashboard: DashboardUnderTest) -> None:
    client = await dashboard.client("moderator")
    token = await dashboard.csrf(client)
    cookie = client.session.cookie_jar.filter_cookies(client.make_url("/"))["__Host-dv_session"]
    response = await request(client, "POST", "/logout", data={"csrf_token": token})
    assert response.status == 302
    replay = await dashboard.anonymous()
    replay.session.cookie_jar.update_cookies(
        {"__Host-dv_session": cookie.value}, replay.make_url("/")
    )
    assert (await request(replay, "GET", "/")).status == 302


async def test_repeated_wrong_passwords_lock_the_account_and_the_page_says_so(
    dashboard: DashboardUnderTest,
) -> None:
    account = await dashboard.add_account("moderator")
    client = await dashboard.anonymous()
    for _ in range(dashboard.settings.dashboard_login_max_failures - 1):
        response = await dashboard.log_in(client, account.name, "wrong password!!")
        assert response.status == 401
        assert "Wrong name or password" in await response.text()
    response = await dashboard.log_in(client, account.name, "wrong password!!")
    assert "this account is locked until" in await response.text()
    # Even the right password is refused while the lock lasts.
    response = await dashboard.log_in(client, account.name, PASSWORD)
    assert response.status == 401
    assert "this account is locked until" in await response.text()
    await dashboard.accounts.unlock(account.name)
    assert (await dashboard.log_in(client, account.name, PASSWORD)).status == 302
    actions = [
        r.action
        for r in await audit_records(dashboard.parts.database, AuditFilter(target=account.name))
    ]
    assert actions == ["login.failed"] * 4 + ["login.locked", "login.locked", "login.ok"]


async def test_a_disabled_account_cannot_log_in_and_loses_its_sessions(
    dashboard: DashboardUnderTest,
) -> None:
    client = await dashboard.client("moderator")
    name = client.account.name  # type: ignore[attr-defined]
    await dashboard.accounts.set_active(name, False)
    assert (await request(client, "GET", "/")).status == 302
    response = await dashboard.log_in(client, name)
    assert response.status == 401
    assert "disabled" in await response.text()


@pytest.mark.parametrize(
    ("raw", "kept"),
    [
        ("/conversations?flag=crisis&page=2", True),
        ("/escalation/abc-123#latest", False),  # a fragment never reaches the server anyway
        ("//evil.example/", False),
        ("/\\evil.example", False),
        ("/\t/evil.example", False),
        ("/\n/evil.example", False),
        ("https://evil.example/", False),
        ("javascript:alert(1)", False),
        ("", False),
    ],
)
def test_only_local_paths_are_kept_after_login(raw: str, kept: bool) -> None:
    assert _next_path(raw) == (raw if kept else "/")


async def test_login_redirects_only_to_local_paths(dashboard: DashboardUnderTest) -> None:
    account = await dashboard.add_account("moderator")
    client = await dashboard.anonymous()
    page = await client.get("/login?next=//evil.example/")
    html = await page.text()
    assert 'name="next" value="/"' in html
    token = re.search(r'name="csrf-token" content="([^"]+)"', html)
    assert token
    response = await request(
        client,
        "POST",
        "/login",
        data={
            "name": account.name,
            "password": PASSWORD,
            "next": "https://evil.example/",
            "csrf_token": token.group(1),
        },
    )
    assert response.headers["Location"] == "/"


HOSTILE = [
    "<script>window.__pwned=1</script>",
    '<img src=x onerror="window.__pwned=1">',
    "javascript:window.__pwned=1",
    "\u202eevil.exe\u202c and \u2066isolated\u2069",
]


async def test_hostile_text_from_a_user_renders_inert(dashboard: DashboardUnderTest) -> None:
    client = await dashboard.client("moderator")
    token = await dashboard.csrf(client, "/try")
    for text in HOSTILE:
        response = await request(client, "POST", "/try", data={"text": text, "csrf_token": token})
        assert response.status == 303
    html = await (await client.get("/try")).text()
    assert "<script>window" not in html
    assert "<img src=x" not in html
    assert "&lt;script&gt;window.__pwned=1&lt;/script&gt;" in html
    assert "&lt;img src=x onerror=&#34;window.__pwned=1&#34;&gt;" in html
    assert 'href="javascript:' not in html
    assert "\u202e" not in html and "\u2066" not in html
    assert "[U+202E]evil.exe[U+202C]" in html
    assert '<bdi class="user-text">' in html


async def test_hostile_text_in_the_audit_log_renders_inert(
    dashboard: DashboardUnderTest,
) -> None:
    hostile_name = '<img src=x onerror="alert(1)">\u202e'
    anonymous = await dashboard.anonymous()
    await dashboard.log_in(anonymous, hostile_name, "whatever password")
    admin = await dashboard.client("admin")
    html = await (await admin.get("/admin/audit?action=login")).text()
    assert "login.failed" in html
    assert "<img src=x" not in html
    assert "&lt;img src=x onerror=&#34;alert(1)&#34;&gt;[U+202E]" in html


async def test_an_expired_session_is_refused(dashboard: DashboardUnderTest) -> None:
    client = await dashboard.client("moderator")
    assert (await request(client, "GET", "/")).status == 200
    async with dashboard.parts.database.session() as session, session.begin():
        await session.execute(
            update(DashboardSession).values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    response = await request(client, "GET", "/")
    assert response.status == 302
    assert response.headers["Location"].startswith("/login")


async def test_a_password_change_checks_the_old_one_and_ends_other_sessions(
    dashboard: DashboardUnderTest,
) -> None:
    here = await dashboard.client("content_editor")
    name = here.account.name  # type: ignore[attr-defined]
    elsewhere = await dashboard.anonymous()
    assert (await dashboard.log_in(elsewhere, name)).status == 302
    token = await dashboard.csrf(here)

    async def change(current: str, new: str, repeat: str) -> Any:
        return await request(
            here,
            "POST",
            "/account/password",
            data={"current": current, "new": new, "repeat": repeat, "csrf_token": token},
        )

    wrong = await change("not my password", "a new long password", "a new long password")
    assert wrong.status == 400 and "current password is wrong" in await wrong.text()
    differ = await change(PASSWORD, "a new long password", "another long password")
    assert differ.status == 400 and "differ" in await differ.text()
    short = await change(PASSWORD, "short", "short")
    assert short.status == 400 and "at least 12 characters" in await short.text()
    assert (await request(elsewhere, "GET", "/")).status == 200  # nothing changed yet

    done = await change(PASSWORD, "a new long password", "a new long password")
    assert done.status == 302
    assert (await request(here, "GET", "/")).status == 200  # this browser stays logged in
    assert (await request(elsewhere, "GET", "/")).status == 302  # the other one is out
    assert (await dashboard.log_in(elsewhere, name, PASSWORD)).status == 401
    assert (await dashboard.log_in(elsewhere, name, "a new long password")).status == 302


# Pages that show what users wrote (transcripts, messages, conversations): never for editors.
TRANSCRIPT_PREFIXES = ("/conversations", "/escalation", "/annotations")


async def test_content_editors_reach_no_page_that_shows_what_users_wrote(
    dashboard: DashboardUnderTest,
) -> None:
    routes = [
        (method, path, roles)
        for method, path, roles in guarded_routes(dashboard.app)
        if path.startswith(TRANSCRIPT_PREFIXES)
    ]
    assert routes  # the prefixes still name real pages
    assert [r for r in routes if "content_editor" in r[2]] == []
    editor = await dashboard.client("content_editor")
    for method, path, _roles in routes:
        if method == "GET":
            assert (await request(editor, method, path)).status == 403, path
