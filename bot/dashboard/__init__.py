"""The moderators' and content team's web dashboard (aiohttp, server-rendered Jinja2).

`create_dashboard(settings, services)` builds the application; `bot.dashboard.serve` runs it
(beside the bot in `python -m bot run`, alone in `python -m bot dashboard`).

Layout:
    app.py        create_dashboard, app keys (SETTINGS, SERVICES, ACCOUNTS, SESSIONS), NavItem,
                  template filters (user_text, safe_href, when)
    security.py   @requires_role / @public, the guard middleware (login, roles, CSRF),
                  security headers
    accounts.py   accounts, argon2 passwords, login throttling, the first admin
    sessions.py   sessions in the database (shared by replicas)
    audit.py      record_audit(...) and the queries behind the audit log page
    serve.py      running the app on DASHBOARD_HOST:DASHBOARD_PORT
    views/        one module per area; every module there is loaded automatically
    templates/    Jinja2 templates (autoescape on); base.html is the layout
    static/       dashboard.css, dashboard.js (the CSP forbids inline script and style)

Adding a page (nothing else to register: `create_dashboard` imports every module of `views/`):

    # bot/dashboard/views/inbox.py
    from typing import Any

    import aiohttp_jinja2
    from aiohttp import web

    from bot.dashboard.app import SERVICES, nav
    from bot.dashboard.audit import audit
    from bot.dashboard.security import identity, requires_role

    routes = web.RouteTableDef()                     # required: the module's routes
    NAV = [nav(10, "Inbox", "/inbox", "admin", "moderator")]   # optional: menu entries

    @routes.get("/inbox", name="inbox")
    @requires_role("admin", "moderator")             # required on EVERY handler
    @aiohttp_jinja2.template("inbox.html")           # templates/inbox.html extends base.html
    async def inbox(request: web.Request) -> dict[str, Any]:
        store = request.app[SERVICES].store
        ...
        await audit(request, "transcript.view", target=pseudonym)   # sensitive views
        return {"rows": rows}

    def setup(app: web.Application) -> None:        # optional: app keys, cleanup_ctx
        ...

Rules the tests enforce for every route (tests/dashboard/test_security.py walks
`app.router`): a handler without `@requires_role(...)` (or `@public`) stops start-up; not
logged in -> redirect to /login (GET) or 401; wrong role -> 403; POST/PUT/PATCH/DELETE
without the CSRF token -> 403. So in templates:

- every form: `<form method="post">{{ csrf_field() }} ...</form>`; fetch() sends the
  `X-CSRF-Token` header from `<meta name="csrf-token">` (see static/dashboard.js);
- text a bot user wrote (or any text from outside the team): `{{ message.text | user_text }}`
  (escaped, bidi overrides shown as codes, direction isolated); never `|safe`;
- links built from data: `href="{{ url | safe_href }}"` (no javascript: URLs);
- no inline <script> or style="" attributes: the CSP blocks them. Put JS in static/.

Roles: admin (everything, accounts, audit log), moderator (conversations, alerts, takeover),
content_editor (content library and aggregate statistics, never transcripts). Record every
transcript view, annotation, takeover, content change and account change with
`audit(request, action, target=..., detail={...})` (`bot.dashboard.audit`); detail never
holds what a user wrote.
"""

from bot.dashboard.app import create_dashboard

__all__ = ["create_dashboard"]
