"""The audit log, for admins: browse with filters and pages, export as CSV."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import aiohttp_jinja2
from aiohttp import web

from bot.dashboard.app import SERVICES, nav
from bot.dashboard.audit import AuditFilter, audit_csv, audit_page, audit_records, record_audit
from bot.dashboard.security import identity, remote_addr, requires_role

routes = web.RouteTableDef()
NAV = [nav(90, "Audit log", "/admin/audit", "admin")]


def _date(raw: str) -> datetime | None:
    try:
        return datetime.strptime(raw, "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        return None


def _filter(request: web.Request) -> tuple[AuditFilter, dict[str, str]]:
    q = request.query
    raw = {k: q.get(k, "").strip()[:64] for k in ("actor", "action", "target", "since", "until")}
    until = _date(raw["until"])
    where = AuditFilter(
        actor=raw["actor"].lower(),
        action=raw["action"],
        target=raw["target"],
        since=_date(raw["since"]),
        until=until + timedelta(days=1) if until else None,  # the whole last day
    )
    return where, raw


@routes.get("/admin/audit", name="audit")
@requires_role("admin")
@aiohttp_jinja2.template("audit.html")
async def audit(request: web.Request) -> dict[str, Any]:
    where, raw = _filter(request)
    try:
        page = int(request.query.get("page", "1"))
    except ValueError:
        page = 1
    result = await audit_page(request.app[SERVICES].database, where, page)
    query = {k: v for k, v in raw.items() if v}
    return {
        "result": result,
        "form": raw,
        "query": urlencode(query),
        "page_link": lambda n: "?" + urlencode({**query, "page": n}),
    }


@routes.get("/admin/audit.csv", name="audit_csv")
@requires_role("admin")
async def audit_export(request: web.Request) -> web.StreamResponse:
    where, raw = _filter(request)
    database = request.app[SERVICES].database
    records = await audit_records(database, where)
    await record_audit(
        database,
        actor=identity(request).name,
        action="audit.export",
        detail={"rows": len(records), **{k: v for k, v in raw.items() if v}},
        remote_addr=remote_addr(request),
    )
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    return web.Response(
        text=audit_csv(records),
        content_type="text/csv",
        charset="utf-8",
        headers={"Content-Disposition": f'attachment; filename="audit-{stamp}.csv"'},
    )
