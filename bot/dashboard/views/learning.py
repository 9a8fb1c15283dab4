"""Learning from corrections: the queue of messages the model was unsure about, and the
held-out scores of every model version, so a worse retrain is seen before it is deployed.

The queue is for admins and moderators (it shows what users wrote); the scores page shows no
user data and is open to content editors too.
"""

from __future__ import annotations

from typing import Any

import aiohttp_jinja2
from aiohttp import web

from bot.dashboard.app import SERVICES, SETTINGS, nav
from bot.dashboard.audit import audit
from bot.dashboard.security import requires_role
from bot.nlu.intents import ALL_INTENTS
from bot.review.annotations import low_confidence_queue
from bot.review.evaluations import HIGHER_IS_BETTER, scores_by_model

routes = web.RouteTableDef()
NAV = [
    nav(15, "Unsure messages", "/annotations", "admin", "moderator"),
    nav(60, "NLU models", "/nlu/models", "admin", "moderator", "content_editor"),
]
SCORES = ("macro_f1", "risk_recall", "crisis_recall", "false_alarm_rate", "accuracy")


@routes.get("/annotations", name="annotations")
@requires_role("admin", "moderator")
@aiohttp_jinja2.template("annotations.html")
async def queue(request: web.Request) -> dict[str, Any]:
    raw = request.query.get("before", "")
    if raw and not raw.isdigit():
        raise web.HTTPBadRequest(text="before: expected a message number")
    before = int(raw) if raw else None
    threshold = request.app[SETTINGS].low_confidence_threshold
    page = await low_confidence_queue(request.app[SERVICES].database, threshold, before)
    await audit(request, "annotations.view", detail={"shown": len(page.items)})
    here = f"/annotations?before={before}" if before else "/annotations"
    return {
        "page": page,
        "threshold": threshold,
        "intents": sorted(ALL_INTENTS),
        "here": here,
        "saved": request.query.get("saved", ""),
    }


@routes.get("/nlu/models", name="nlu_models")
@requires_role("admin", "moderator", "content_editor")
@aiohttp_jinja2.template("nlu_models.html")
async def models(request: web.Request) -> dict[str, Any]:
    found = await scores_by_model(request.app[SERVICES].database)
    datasets: dict[str, list[Any]] = {}
    for row in found:
        datasets.setdefault(row.dataset, []).append(row)
    return {
        "datasets": datasets,
        "scores": SCORES,
        "higher_is_better": HIGHER_IS_BETTER,
    }
