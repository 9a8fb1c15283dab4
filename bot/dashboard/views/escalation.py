"""Alerts and takeover: the moderators' live queue and the controls of one conversation.

- `/escalation`: unresolved alerts, most severe first, refreshed every few seconds by
  `static/escalation.js` from `/escalation/queue.json` (no reload; works without JS too);
  acknowledge and resolve.
- `/escalation/{pseudonym}`: risk level and reasons, who answers (bot, waiting, a person),
  the recent messages, and the actions: take over, write to the user, hand back, mute,
  close the crisis. The moderators' Telegram alerts link here.

Every action and every view of the messages is audited; the audit detail never holds what a
user wrote (a moderator's message is recorded by length only; its text is in the transcript).
Sending goes through `bot.escalation.service.Escalation`, shared with the bot in `make run`;
a dashboard run alone opens its own `telegram.Bot` (`setup` below).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp_jinja2
from aiohttp import web

from bot.dashboard.app import SERVICES, SETTINGS, nav
from bot.dashboard.audit import audit
from bot.dashboard.security import identity, requires_role
from bot.escalation.service import Delivery, Escalation
from bot.telegram.messenger import standalone_messenger

routes = web.RouteTableDef()
NAV = [nav(20, "Alerts", "/escalation", "admin", "moderator")]
MODERATORS = ("admin", "moderator")
SHOWN_MESSAGES = 40
POLL_SECONDS = 4


def escalation_of(request: web.Request) -> Escalation:
    return request.app[SERVICES].conversation.escalation


def _wants_json(request: web.Request) -> bool:
    return "application/json" in request.headers.get("Accept", "")


def _alert_id(request: web.Request) -> int:
    try:
        return int(request.match_info["alert_id"])
    except ValueError:
        raise web.HTTPNotFound() from None


async def _pseudonym(request: web.Request) -> str:
    """The conversation in the path, which must exist (404 otherwise)."""
    pseudonym = request.match_info["pseudonym"]
    if await escalation_of(request).escalations.control(pseudonym) is None:
        raise web.HTTPNotFound(text="No such conversation (the user may have used /forget).")
    return pseudonym


# -- the queue --------------------------------------------------------------------------------


@routes.get("/escalation", name="escalation_queue")
@requires_role(*MODERATORS)
@aiohttp_jinja2.template("escalation_queue.html")
async def queue_page(request: web.Request) -> dict[str, Any]:
    escalations = escalation_of(request).escalations
    return {
        "alerts": await escalations.queue(),
        "resolved": await escalations.recently_resolved(),
        "poll_seconds": POLL_SECONDS,
        "moderator_chat": request.app[SETTINGS].moderator_chat_id is not None,
    }


@routes.get("/escalation/queue.json", name="escalation_queue_json")
@requires_role(*MODERATORS)
async def queue_json(request: web.Request) -> web.Response:
    alerts = await escalation_of(request).escalations.queue()
    return web.json_response({"alerts": [a.as_json() for a in alerts]})


@routes.post("/escalation/alerts/{alert_id}/acknowledge", name="alert_acknowledge")
@requires_role(*MODERATORS)
async def acknowledge(request: web.Request) -> web.StreamResponse:
    alert_id = _alert_id(request)
    changed = await escalation_of(request).escalations.acknowledge(alert_id, identity(request).name)
    await audit(request, "alert.acknowledge", target=str(alert_id), detail={"changed": changed})
    return _back(request, "/escalation", {"changed": changed})


@routes.post("/escalation/alerts/{alert_id}/resolve", name="alert_resolve")
@requires_role(*MODERATORS)
async def resolve(request: web.Request) -> web.StreamResponse:
    alert_id = _alert_id(request)
    changed = await escalation_of(request).escalations.resolve(alert_id, identity(request).name)
    await audit(request, "alert.resolve", target=str(alert_id), detail={"changed": changed})
    return _back(request, "/escalation", {"changed": changed})


# -- one conversation -------------------------------------------------------------------------


@routes.get("/escalation/{pseudonym}", name="escalation_conversation")
@requires_role(*MODERATORS)
@aiohttp_jinja2.template("escalation_conversation.html")
async def conversation_page(request: web.Request) -> dict[str, Any]:
    pseudonym = await _pseudonym(request)
    escalation = escalation_of(request)
    control = await escalation.escalations.control(pseudonym)
    messages = await request.app[SERVICES].store.messages_for(pseudonym)
    await audit(request, "escalation.view", target=pseudonym)
    return {
        "pseudonym": pseudonym,
        "control": control,
        "alerts": await escalation.escalations.alerts_for(pseudonym),
        "messages": messages[-SHOWN_MESSAGES:],
        "earlier": max(0, len(messages) - SHOWN_MESSAGES),
        "me": identity(request).name,
        "notice": request.query.get("notice", ""),
    }


@routes.get("/escalation/{pseudonym}/messages.json", name="escalation_messages_json")
@requires_role(*MODERATORS)
async def messages_json(request: web.Request) -> web.Response:
    """Messages after `?after=<id>`, for the open conversation page to show new ones live.

    Part of viewing the page (audited when it was opened), so not audited per poll.
    """
    pseudonym = await _pseudonym(request)
    try:
        after = int(request.query.get("after", "0"))
    except ValueError:
        raise web.HTTPBadRequest(text="after must be a message id") from None
    messages = await request.app[SERVICES].store.messages_for(pseudonym)
    control = await escalation_of(request).escalations.control(pseudonym)
    assert control is not None
    return web.json_response(
        {
            "messages": [
                {
                    "id": m.id,
                    "direction": m.direction,
                    "kind": m.kind,
                    "text": m.text or "",
                    "intent": m.intent,
                    "flags": list(m.flags),
                    "created_at": m.created_at.strftime("%Y-%m-%d %H:%M UTC"),
                }
                for m in messages
                if m.id > after
            ][-SHOWN_MESSAGES:],
            "handling": control.handling,
            "handled_by": control.handled_by,
            "risk_level": control.risk_level,
        }
    )


@routes.post("/escalation/{pseudonym}/takeover", name="escalation_takeover")
@requires_role(*MODERATORS)
async def take_over(request: web.Request) -> web.StreamResponse:
    pseudonym = await _pseudonym(request)
    delivery = await escalation_of(request).take_over(pseudonym, identity(request).name)
    await audit(request, "takeover.start", target=pseudonym, detail=_detail(delivery))
    return _after(request, pseudonym, delivery, "You are talking with the user now.")


@routes.post("/escalation/{pseudonym}/message", name="escalation_message")
@requires_role(*MODERATORS)
async def send_message(request: web.Request) -> web.StreamResponse:
    pseudonym = await _pseudonym(request)
    text = str((await request.post()).get("text", ""))
    delivery = await escalation_of(request).send_team_message(
        pseudonym, identity(request).name, text
    )
    detail = {**_detail(delivery), "chars": len(text.strip())}
    await audit(request, "takeover.message", target=pseudonym, detail=detail)
    return _after(request, pseudonym, delivery, "Message sent.")


@routes.post("/escalation/{pseudonym}/handback", name="escalation_handback")
@requires_role(*MODERATORS)
async def hand_back(request: web.Request) -> web.StreamResponse:
    pseudonym = await _pseudonym(request)
    delivery = await escalation_of(request).hand_back(pseudonym, identity(request).name)
    await audit(request, "takeover.hand_back", target=pseudonym, detail=_detail(delivery))
    return _after(request, pseudonym, delivery, "The bot answers this user again.")


@routes.post("/escalation/{pseudonym}/mute", name="escalation_mute")
@requires_role(*MODERATORS)
async def mute(request: web.Request) -> web.StreamResponse:
    pseudonym = await _pseudonym(request)
    muted = (await request.post()).get("muted") == "1"
    changed = await escalation_of(request).escalations.set_muted(pseudonym, muted)
    action = "user.mute" if muted else "user.unmute"
    await audit(request, action, target=pseudonym, detail={"changed": changed})
    notice = "Muted: the bot stores this user's messages without answering (crisis aside)."
    return _after(request, pseudonym, Delivery(True), notice if muted else "Unmuted.")


@routes.post("/escalation/{pseudonym}/close-crisis", name="escalation_close_crisis")
@requires_role(*MODERATORS)
async def close_crisis(request: web.Request) -> web.StreamResponse:
    pseudonym = await _pseudonym(request)
    changed = await escalation_of(request).escalations.close_crisis(pseudonym)
    await audit(request, "crisis.close", target=pseudonym, detail={"changed": changed})
    notice = "Crisis closed: the bot may send counter-messages again." if changed else ""
    return _after(request, pseudonym, Delivery(changed, "not in crisis state"), notice)


# -- helpers ----------------------------------------------------------------------------------


def _detail(delivery: Delivery) -> dict[str, Any]:
    return (
        {"delivered": delivery.sent, "reason": delivery.reason}
        if delivery.reason
        else {"delivered": delivery.sent}
    )


def _back(request: web.Request, path: str, body: dict[str, Any]) -> web.StreamResponse:
    if _wants_json(request):
        return web.json_response(body)
    raise web.HTTPSeeOther(path)


def _after(
    request: web.Request, pseudonym: str, delivery: Delivery, done: str
) -> web.StreamResponse:
    notice = done if delivery.sent else f"Not done: {delivery.reason}."
    if _wants_json(request):
        return web.json_response({"sent": delivery.sent, "notice": notice})
    location = request.app.router["escalation_conversation"].url_for(pseudonym=pseudonym)
    raise web.HTTPSeeOther(str(location.with_query(notice=notice)))


def setup(app: web.Application) -> None:
    """A dashboard run without the bot sends through a `telegram.Bot` of its own."""
    app.cleanup_ctx.append(_own_messenger)


async def _own_messenger(app: web.Application) -> AsyncIterator[None]:
    escalation = app[SERVICES].conversation.escalation
    if escalation.messenger is not None:
        yield
        return
    async with standalone_messenger(app[SETTINGS]) as messenger:
        if messenger is not None:
            escalation.attach(messenger)
        try:
            yield
        finally:
            if messenger is not None and escalation.messenger is messenger:
                escalation.messenger = None
