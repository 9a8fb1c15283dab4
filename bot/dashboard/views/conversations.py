"""The moderators' inbox and transcripts, with their actions (review, flag, note, intent).

Admins and moderators only: content editors see aggregates, never what a user wrote. Every
transcript view and every action is recorded in the audit log, with ids and choices as
detail, never the text of a message or a note.
"""

from __future__ import annotations

from datetime import date
from typing import Any
from urllib.parse import quote, urlencode

import aiohttp_jinja2
from aiohttp import web

from bot.dashboard.app import SERVICES, nav
from bot.dashboard.audit import audit
from bot.dashboard.security import identity, requires_role
from bot.nlu.intents import ALL_INTENTS
from bot.review.inbox import FLAGS, STATUSES, BadCursor, InboxFilter, campaigns, inbox_page
from bot.review.transcript import (
    NotFound,
    add_note,
    annotate,
    content_kinds,
    mark_reviewed,
    set_flag,
    transcript,
    user_id_of,
)
from bot.safety.risk import RISK_LEVELS

routes = web.RouteTableDef()
NAV = [nav(10, "Inbox", "/conversations", "admin", "moderator")]
MODERATORS = ("admin", "moderator")
CONTENT_ITEM_URL = "/content/{kind}/{key}"
"""Where the content library shows one item (`bot/dashboard/views/content.py`)."""
TAKEOVER_URL = "/escalation/{pseudonym}"
"""The escalation page of a conversation: alerts, takeover, mute, closing a crisis."""
FILTER_FIELDS = ("flag", "level", "intent", "status", "since", "until", "campaign", "q")


def content_url(kinds: dict[str, str], item: str) -> str | None:
    """The content library's page of `item`, if the library has it."""
    kind = kinds.get(item)
    return CONTENT_ITEM_URL.format(kind=kind, key=quote(item, safe="")) if kind else None


def _day(raw: str, field: str) -> date | None:
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise web.HTTPBadRequest(text=f"{field}: expected a date as YYYY-MM-DD") from None


def inbox_filter(form: dict[str, str]) -> InboxFilter:
    """The filter from the query string; a value the form does not offer is a 400."""
    if form["intent"] and form["intent"] not in ALL_INTENTS | {"nlu_fallback"}:
        raise web.HTTPBadRequest(text="intent: not an intent of the model")
    try:
        return InboxFilter(
            flag=form["flag"] or None,
            level=form["level"] or None,
            intent=form["intent"] or None,
            status=form["status"] or None,
            since=_day(form["since"], "since"),
            until=_day(form["until"], "until"),
            campaign=form["campaign"] or None,
            search=form["q"] or None,
        )
    except ValueError as exc:
        raise web.HTTPBadRequest(text=str(exc)) from None


@routes.get("/conversations", name="inbox")
@requires_role(*MODERATORS)
@aiohttp_jinja2.template("inbox.html")
async def inbox(request: web.Request) -> dict[str, Any]:
    form = {k: request.query.get(k, "").strip()[:200] for k in FILTER_FIELDS}
    where = inbox_filter(form)
    cursor = request.query.get("after") or None
    database = request.app[SERVICES].database
    try:
        page = await inbox_page(database, where, cursor)
    except BadCursor:
        raise web.HTTPBadRequest(
            text="This page link is not valid; start from the first page."
        ) from None
    used = {k: v for k, v in form.items() if v}
    await audit(
        request,
        "inbox.view",
        # Which filters, not what was searched for: a search may quote a user.
        detail={**{k: v for k, v in used.items() if k != "q"}, "search": "q" in used},
    )
    return {
        "page": page,
        "form": form,
        "flags": FLAGS,
        "levels": RISK_LEVELS[::-1],
        "statuses": STATUSES,
        "intents": sorted(ALL_INTENTS | {"nlu_fallback"}),
        "campaigns": await campaigns(database),
        "next_link": "?" + urlencode({**used, "after": page.next_cursor})
        if page.next_cursor
        else None,
        "first_link": "?" + urlencode(used) if cursor else None,
        "filtered": bool(used),
    }


async def _user(request: web.Request) -> tuple[int, str]:
    pseudonym = request.match_info["pseudonym"]
    try:
        return await user_id_of(request.app[SERVICES].database, pseudonym), pseudonym
    except NotFound:
        raise web.HTTPNotFound(text="No such conversation (it may have been deleted).") from None


@routes.get("/conversations/{pseudonym}", name="transcript")
@requires_role(*MODERATORS)
@aiohttp_jinja2.template("transcript.html")
async def transcript_page(request: web.Request) -> dict[str, Any]:
    user_id, pseudonym = await _user(request)
    database = request.app[SERVICES].database
    seen = await transcript(database, user_id)
    kinds = await content_kinds(database, (i for m in seen.messages for i in m.content_ids))
    await audit(request, "transcript.view", target=pseudonym)
    return {
        "t": seen,
        "intents": sorted(ALL_INTENTS),
        "content_url": lambda item: content_url(kinds, item),
        "takeover_url": TAKEOVER_URL.format(pseudonym=pseudonym),
        "saved": request.query.get("saved", ""),
    }


def _back(pseudonym: str, saved: str) -> web.HTTPSeeOther:
    return web.HTTPSeeOther(f"/conversations/{pseudonym}?{urlencode({'saved': saved})}")


@routes.post("/conversations/{pseudonym}/reviewed", name="mark_reviewed")
@requires_role(*MODERATORS)
async def reviewed(request: web.Request) -> web.StreamResponse:
    user_id, pseudonym = await _user(request)
    await mark_reviewed(request.app[SERVICES].database, user_id, by=identity(request).name)
    await audit(request, "conversation.review", target=pseudonym)
    raise _back(pseudonym, "reviewed")


@routes.post("/conversations/{pseudonym}/flag", name="flag")
@requires_role(*MODERATORS)
async def flag(request: web.Request) -> web.StreamResponse:
    user_id, pseudonym = await _user(request)
    flagged = (await request.post()).get("flagged") == "1"
    await set_flag(request.app[SERVICES].database, user_id, flagged, by=identity(request).name)
    action = "conversation.flag" if flagged else "conversation.unflag"
    await audit(request, action, target=pseudonym)
    raise _back(pseudonym, "flagged" if flagged else "unflagged")


@routes.post("/conversations/{pseudonym}/notes", name="add_note")
@requires_role(*MODERATORS)
async def note(request: web.Request) -> web.StreamResponse:
    user_id, pseudonym = await _user(request)
    text = str((await request.post()).get("text", ""))
    try:
        note_id = await add_note(
            request.app[SERVICES].database, user_id, text, by=identity(request).name
        )
    except ValueError as exc:
        raise web.HTTPBadRequest(text=f"The note was not saved: {exc}.") from None
    await audit(request, "note.add", target=pseudonym, detail={"note": note_id, "chars": len(text)})
    raise _back(pseudonym, "note")


def _local_path(raw: str, fallback: str) -> str:
    """Where to go after an annotation: one of the dashboard's own review pages only."""
    if raw.startswith(("/conversations/", "/annotations")) and "//" not in raw:
        return raw
    return fallback


@routes.post("/messages/{message_id:\\d+}/intent", name="annotate")
@requires_role(*MODERATORS)
async def correct_intent(request: web.Request) -> web.StreamResponse:
    """Confirm or correct the intent of one incoming message (the transcript and the queue)."""
    message_id = int(request.match_info["message_id"])
    form = await request.post()
    intent = str(form.get("intent", ""))
    database = request.app[SERVICES].database
    try:
        done = await annotate(database, message_id, intent, by=identity(request).name)
    except NotFound:
        raise web.HTTPNotFound(text="No such message from a user.") from None
    except ValueError as exc:
        raise web.HTTPBadRequest(text=str(exc)) from None
    await audit(
        request,
        "annotation.set",
        target=done.pseudonym,
        detail={
            "message": message_id,
            "intent": intent,
            "model_intent": done.model_intent or "",
            "confirmed": done.confirmed,
        },
    )
    fallback = f"/conversations/{done.pseudonym}?saved=intent#m{message_id}"
    raise web.HTTPSeeOther(_local_path(str(form.get("next", "")), fallback))
