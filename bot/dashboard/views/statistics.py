"""Statistics: aggregates only, never a text or a pseudonym; charts as SVG, tables as CSV.

Open to admins, moderators and content editors (who see what content did, never who said
what). Test traffic (try-the-bot, the terminal chat) is left out by the queries.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import urlencode

import aiohttp_jinja2
from aiohttp import web

from bot.dashboard.app import SERVICES, nav
from bot.dashboard.audit import audit
from bot.dashboard.charts import Series, bar_chart, line_chart
from bot.dashboard.security import requires_role
from bot.dashboard.views.conversations import content_url
from bot.nlu.intents import CLAIM_INTENTS
from bot.review.statistics import (
    OUTCOMES,
    Period,
    campaign_activity,
    content_outcomes,
    daily_activity,
    intents_by_day,
    to_csv,
)
from bot.review.transcript import content_kinds
from bot.storage.database import Database

routes = web.RouteTableDef()
ROLES = ("admin", "moderator", "content_editor")
NAV = [nav(50, "Statistics", "/statistics", *ROLES)]
PERIODS = (7, 30, 90)
MAX_DAYS = 366
TABLES = ("daily", "intents", "content", "campaigns")


def period_of(request: web.Request) -> tuple[Period, dict[str, str]]:
    """`?days=30`, or `?since=...&until=...` (whole UTC days); 30 days by default."""
    q = request.query
    form = {k: q.get(k, "").strip()[:10] for k in ("days", "since", "until")}
    today = datetime.now(UTC).date()
    try:
        if form["since"] or form["until"]:
            since = date.fromisoformat(form["since"]) if form["since"] else today
            until = date.fromisoformat(form["until"]) if form["until"] else today
            period = Period(since, until)
        else:
            days = int(form["days"] or 30)
            if not 1 <= days <= MAX_DAYS:
                raise ValueError(f"days must be from 1 to {MAX_DAYS}")
            period = Period.last(days, today)
    except ValueError as exc:
        raise web.HTTPBadRequest(text=f"period: {exc}") from None
    if (period.end - period.start).days >= MAX_DAYS:
        raise web.HTTPBadRequest(text=f"period: at most {MAX_DAYS} days")
    return period, form


async def _intent_rows(database: Database, period: Period) -> list[tuple[str, int]]:
    by_intent = await intents_by_day(database, period)
    return sorted(
        ((intent, sum(days.values())) for intent, days in by_intent.items()),
        key=lambda r: (-r[1], r[0]),
    )


@routes.get("/statistics", name="statistics")
@requires_role(*ROLES)
@aiohttp_jinja2.template("statistics.html")
async def statistics(request: web.Request) -> dict[str, Any]:
    database = request.app[SERVICES].database
    period, form = period_of(request)
    days = await daily_activity(database, period)
    by_intent = await intents_by_day(database, period)
    labels = [d.day.strftime("%d %b") for d in days]
    claims = [
        Series(
            intent.removeprefix("claim_").replace("_", " "),
            [by_intent.get(intent, {}).get(d.day, 0) for d in days],
        )
        for intent in sorted(CLAIM_INTENTS)
    ]
    query = urlencode({k: v for k, v in form.items() if v})
    content = await content_outcomes(database, period)
    kinds = await content_kinds(database, (c.content_id for c in content))
    return {
        "period": period,
        "form": form,
        "periods": PERIODS,
        "query": query,
        "days": days,
        "totals": {
            "conversations": sum(d.conversations for d in days),
            "messages_in": sum(d.messages_in for d in days),
            "messages_out": sum(d.messages_out for d in days),
            "crisis": sum(d.crisis for d in days),
            "risk": sum(d.risk for d in days),
        },
        "activity_chart": bar_chart(
            "Conversations and incoming messages per day",
            labels,
            [
                Series("conversations", [d.conversations for d in days]),
                Series("messages in", [d.messages_in for d in days]),
            ],
        ),
        "safety_chart": line_chart(
            "Crisis and risk messages per day",
            labels,
            [
                Series("crisis", [d.crisis for d in days], "#b3261e"),
                Series("risk", [d.risk for d in days], "#b86e00"),
            ],
        ),
        "claims_chart": line_chart("Recruitment claims per day", labels, claims),
        "intents": await _intent_rows(database, period),
        "content": content,
        "content_url": lambda item: content_url(kinds, item),
        "outcomes": OUTCOMES,
        "campaigns": await campaign_activity(database, period),
    }


@routes.get("/statistics/{table}.csv", name="statistics_csv")
@requires_role(*ROLES)
async def export(request: web.Request) -> web.StreamResponse:
    table = request.match_info["table"]
    if table not in TABLES:
        raise web.HTTPNotFound(text="No such table.")
    database = request.app[SERVICES].database
    period, _form = period_of(request)
    if table == "daily":
        text = to_csv(await daily_activity(database, period))
    elif table == "intents":
        by_intent = await intents_by_day(database, period)
        rows = [
            (day.isoformat(), intent, count)
            for intent, days in sorted(by_intent.items())
            for day, count in sorted(days.items())
        ]
        text = _plain_csv(("day", "intent", "messages_in"), rows)
    elif table == "content":
        text = to_csv(await content_outcomes(database, period))
    else:
        text = to_csv(await campaign_activity(database, period))
    await audit(
        request,
        "statistics.export",
        detail={"table": table, "since": period.start.isoformat(), "until": period.end.isoformat()},
    )
    name = f"{table}-{period.start.isoformat()}-{period.end.isoformat()}.csv"
    return web.Response(
        text=text,
        content_type="text/csv",
        charset="utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


def _plain_csv(header: tuple[str, ...], rows: list[tuple[str, str, int]]) -> str:
    lines = [",".join(header)] + [",".join(str(v) for v in row) for row in rows]
    return "\n".join(lines) + "\n"
