"""Admin pages (accounts, audit log) and try-the-bot, through HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
import re

from bot.dashboard.audit import AuditFilter, audit_records, record_audit
from bot.storage.pseudonym import pseudonymise
from tests.dashboard.conftest import DashboardUnderTest


async def test_an_admin_creates_an_account_whose_password_is_shown_once_and_must_change(
    dashboard: DashboardUnderTest,
) -> None:
    admin = await dashboard.client("admin")
    token = await dashboard.csrf(admin, "/admin/accounts")
    response = await admin.post(
        "/admin/accounts", data={"name": "Dana", "role": "moderator", "csrf_token": token}
    )
    html = await response.text()
    assert response.status == 200
    shown = re.search(r'<code class="secret">([^<]+)</code>', html)
    assert shown
    assert shown.group(1) not in await (await admin.get("/admin/accounts")).text()

    dana = await dashboard.anonymous()
    login = await dashboard.log_in(dana, "dana", shown.group(1))
    assert login.headers["Location"] == "/account/password"
    assert (await dana.get("/try", allow_redirects=False)).headers["Location"] == (
        "/account/password"
    )
    entries = await audit_records(dashboard.parts.database, AuditFilter(target="dana"))
    assert [(e.actor, e.action, e.detail) for e in entries][:1] == [
        (admin.account.name, "account.create", {"role": "moderator"})  # type: ignore[attr-defined]
    ]

    bad = await admin.post(
        "/admin/accounts", data={"name": "x", "role": "moderator", "csrf_token": token}
    )
    assert bad.status == 400
    assert "2 to 64 characters" in await bad.text()


async def test_disabling_an_account_logs_it_out_and_admins_cannot_disable_themselves(
    dashboard: DashboardUnderTest,
) -> None:
    admin = await dashboard.client("admin")
    moderator = await dashboard.client("moderator")
    name = moderator.account.name  # type: ignore[attr-defined]
    token = await dashboard.csrf(admin)
    response = await admin.post(
        f"/admin/accounts/{name}/disable", data={"csrf_token": token}, allow_redirects=False
    )
    assert response.status == 303
    assert (await moderator.get("/", allow_redirects=False)).status == 302  # logged out

    own = admin.account.name  # type: ignore[attr-defined]
    response = await admin.post(f"/admin/accounts/{own}/disable", data={"csrf_token": token})
    assert response.status == 400
    assert "your own account" in await response.text()
    assert (await admin.get("/")).status == 200

    response = await admin.post(
        f"/admin/accounts/{name}/role", data={"role": "content_editor", "csrf_token": token}
    )
    assert (await dashboard.accounts.by_name(name)).role == "content_editor"  # type: ignore[union-attr]
    actions = [
        e.action for e in await audit_records(dashboard.parts.database, AuditFilter(target=name))
    ]
    assert actions[-2:] == ["account.disable", "account.role"]


async def test_the_audit_log_filters_pages_and_exports_inert_csv(
    dashboard: DashboardUnderTest,
) -> None:
    database = dashboard.parts.database
    for number in range(120):
        await record_audit(database, actor="robot", action="test.bulk", target=f"item-{number:03d}")
    await record_audit(
        database, actor="robot", action="test.formula", target='=HYPERLINK("http://x")'
    )
    admin = await dashboard.client("admin")
    first = await (await admin.get("/admin/audit?action=test.bulk")).text()
    assert "120 entries, page 1 of 3" in first
    assert first.count("item-") == 50
    assert "item-119" in first and "item-070" in first and "item-069" not in first
    last = await (await admin.get("/admin/audit?action=test.bulk&page=3")).text()
    assert last.count("item-") == 20
    assert "item-000" in last
    # "test" matches both test.bulk and test.formula; other filters narrow it.
    assert "121 entries" in await (await admin.get("/admin/audit?action=test")).text()
    assert "0 entries" in await (await admin.get("/admin/audit?actor=nobody")).text()

    response = await admin.get("/admin/audit.csv?action=test")
    assert response.headers["Content-Disposition"].startswith('attachment; filename="audit-')
    rows = list(csv.reader(io.StringIO(await response.text())))
    assert rows[0] == ["id", "created_at", "actor", "action", "target", "detail", "remote_addr"]
    assert len(rows) == 122
    assert rows[1][4] == "item-000"  # oldest first
    assert rows[-1][4] == '\'=HYPERLINK("http://x")'  # a spreadsheet shows it, never runs it
    exports = await audit_records(database, AuditFilter(action="audit.export"))
    assert [(e.actor, e.detail) for e in exports] == [
        (admin.account.name, {"rows": 121, "action": "test"})  # type: ignore[attr-defined]
    ]


async def test_try_the_bot_is_test_traffic_of_one_test_user_per_account(
    dashboard: DashboardUnderTest,
) -> None:
    alice = await dashboard.client("content_editor")
    bob = await dashboard.client("moderator")
    for client in (alice, bob):
        token = await dashboard.csrf(client, "/try")
        response = await client.post(
            "/try",
            data={"text": "/start"},
            headers={"Accept": "application/json", "X-CSRF-Token": token},
        )
        assert response.status == 200
        replies = (await response.json())["replies"]
        assert replies[0]["kind"] == "welcome"
    secret = dashboard.settings.pseudonym_secret
    for client in (alice, bob):
        pseudonym = pseudonymise(-client.account.id, secret)  # type: ignore[attr-defined]
        messages = await dashboard.parts.store.messages_for(pseudonym)
        assert [(m.direction, m.is_test) for m in messages] == [("in", True), ("out", True)]

    # Only a button that is on screen can be pressed.
    token = await dashboard.csrf(alice, "/try")
    stale = await alice.post("/try", data={"button": "forget_yes", "csrf_token": token})
    assert stale.status == 400
    # Starting again forgets the test user.
    reset = await alice.post("/try/reset", data={"csrf_token": token}, allow_redirects=False)
    assert reset.status == 303
    alice_pseudonym = pseudonymise(-alice.account.id, secret)  # type: ignore[attr-defined]
    assert await dashboard.parts.store.messages_for(alice_pseudonym) == []
