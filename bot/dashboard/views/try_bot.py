"""Try the bot: a chat panel on the real pipeline (`Conversation.handle`), as test traffic.

Each dashboard account talks as its own test user, whose pseudonym is the HMAC of the
negative account id (Telegram ids are positive, the terminal chat is 0), so two people trying
the bot never share a conversation. Messages are stored with `is_test`, which statistics
leave out. Works without JavaScript (a form and a redirect); `static/dashboard.js` makes it
a live chat with fetch.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp_jinja2
from aiohttp import web

from bot.conversation import Incoming, TextIn
from bot.dashboard.app import SERVICES, SESSIONS, SETTINGS, nav
from bot.dashboard.security import identity, requires_role
from bot.policy.decision import Button, Command
from bot.storage.models import ROLES
from bot.storage.pseudonym import pseudonymise

routes = web.RouteTableDef()
NAV = [nav(80, "Try the bot", "/try", *ROLES)]
SHOWN_MESSAGES = 60
_turn_locks: dict[int, asyncio.Lock] = {}


def test_pseudonym(request: web.Request) -> str:
    return pseudonymise(-identity(request).account_id, request.app[SETTINGS].pseudonym_secret)


def _wants_json(request: web.Request) -> bool:
    return "application/json" in request.headers.get("Accept", "")


@routes.get("/try", name="try_bot")
@requires_role(*ROLES)
@aiohttp_jinja2.template("try_bot.html")
async def try_page(request: web.Request) -> dict[str, Any]:
    messages = await request.app[SERVICES].store.messages_for(test_pseudonym(request))
    return {
        "messages": messages[-SHOWN_MESSAGES:],
        "buttons": identity(request).data.get("try_buttons", []),
    }


@routes.post("/try", name="try_bot_send")
@requires_role(*ROLES)
async def try_send(request: web.Request) -> web.StreamResponse:
    ident = identity(request)
    form = await request.post()
    buttons: list[list[str]] = ident.data.get("try_buttons", [])
    incoming: Incoming | None = None
    pressed = str(form.get("button", ""))
    text = str(form.get("text", "")).strip()
    if pressed:
        if pressed not in {data for _label, data in buttons}:
            raise web.HTTPBadRequest(text="That button is no longer on screen.")
        incoming = Button(pressed)
    elif text.startswith("/"):
        head, _sep, payload = text.partition(" ")
        incoming = Command(head[1:].lower()[:32], payload.strip() or None)
    elif text:
        incoming = TextIn(text)
    replies = []
    if incoming is not None:
        # One turn at a time per test user (two tabs, a double click), as the Telegram front
        # end does per chat; within this replica, which is where one browser's requests go.
        async with _turn_locks.setdefault(ident.account_id, asyncio.Lock()):
            replies = await request.app[SERVICES].conversation.handle(
                test_pseudonym(request), incoming, is_test=True
            )
        shown = [list(b) for b in replies[-1].buttons] if replies else []
        await request.app[SESSIONS].save_data(
            ident.session_id, {**ident.data, "try_buttons": shown}
        )
    if _wants_json(request):
        return web.json_response(
            {
                "replies": [
                    {"kind": r.kind, "text": r.text, "buttons": [list(b) for b in r.buttons]}
                    for r in replies
                ]
            }
        )
    raise web.HTTPSeeOther("/try#latest")


@routes.post("/try/reset", name="try_bot_reset")
@requires_role(*ROLES)
async def try_reset(request: web.Request) -> web.StreamResponse:
    """Forget the test user, to start again as a new user."""
    ident = identity(request)
    await request.app[SERVICES].store.forget_user(test_pseudonym(request))
    await request.app[SESSIONS].save_data(ident.session_id, {**ident.data, "try_buttons": []})
    raise web.HTTPSeeOther("/try")
