"""The content library editor: browse, create, edit, review, approve, retire, history.

Every item has a stable page, /content/{kind}/{key} (transcripts link there). Editors and
admins change content; moderators may look. Saving writes a new draft revision; the author
submits it for review and another person approves it (`bot.storage.content_store` enforces
both, and checks every change with the loader's rules). An approved change reaches users
within `CONTENT_REFRESH_SECONDS`. Every change is in the audit log as `content.<step>`.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import aiohttp_jinja2
from aiohttp import web

from bot.content.model import STATUSES
from bot.content.validation import InvalidChange, ValidationResult
from bot.dashboard.app import SERVICES, SETTINGS, nav
from bot.dashboard.audit import audit
from bot.dashboard.content_forms import (
    FIELDS,
    KEY_LABELS,
    KIND_LABELS,
    data_from_form,
    diff,
    form_values,
    key_field,
    preview,
)
from bot.dashboard.security import identity, requires_role
from bot.nlu.intents import RISK_INTENTS
from bot.policy.compose import ReplyContext
from bot.storage.content_models import CONTENT_KINDS
from bot.storage.content_store import (
    ContentFilter,
    ContentStore,
    ItemDetail,
    WorkflowError,
)

routes = web.RouteTableDef()
NAV = [nav(40, "Content", "/content", "admin", "content_editor", "moderator")]
VIEWERS = ("admin", "content_editor", "moderator")
EDITORS = ("admin", "content_editor")


def _content(request: web.Request) -> ContentStore:
    return ContentStore(request.app[SERVICES].database)


def _context(request: web.Request) -> ReplyContext:
    settings = request.app[SETTINGS]
    return ReplyContext(settings.operator_name, settings.retention_days)


def _kind(request: web.Request) -> str:
    kind = request.match_info.get("kind", "")
    if kind not in CONTENT_KINDS:
        raise web.HTTPNotFound(text=f"There is no content kind '{kind}'.")
    return kind


def item_url(kind: str, key: str) -> str:
    return f"/content/{kind}/{key}"


# --- browse --------------------------------------------------------------------------------


@routes.get("/content", name="content_list")
@requires_role(*VIEWERS)
@aiohttp_jinja2.template("content_list.html")
async def content_list(request: web.Request) -> dict[str, Any]:
    query = request.query
    wanted = ContentFilter(
        kind=_choice(query.get("kind"), CONTENT_KINDS),
        status=_choice(query.get("status"), STATUSES),
        claim=_choice(query.get("claim"), tuple(RISK_INTENTS)),
        country=(query.get("country") or "").strip().upper() or None,
        language=(query.get("language") or "").strip().lower() or None,
        text=(query.get("q") or "").strip() or None,
    )
    items = await _content(request).list_items(wanted)
    return {
        "items": items,
        "form": {
            k: query.get(k, "") for k in ("kind", "status", "claim", "country", "language", "q")
        },
        "kinds": CONTENT_KINDS,
        "kind_labels": KIND_LABELS,
        "statuses": STATUSES,
        "claims": sorted(RISK_INTENTS),
        "can_edit": identity(request).role in EDITORS,
        "title_of": _title,
    }


def _choice(value: str | None, allowed: tuple[str, ...]) -> str | None:
    return value if value in allowed else None


def _title(kind: str, data: dict[str, Any]) -> str:
    """A short line that says what the item is, for lists."""
    text = str(data.get("name") or data.get("text") or "")
    return text if len(text) <= 110 else text[:107].rstrip() + "..."


# --- one item ------------------------------------------------------------------------------


@routes.get("/content/{kind}/{key}", name="content_item")
@requires_role(*VIEWERS)
async def content_item(request: web.Request) -> web.StreamResponse:
    kind = _kind(request)
    detail = await _detail(request, kind)
    return await _render_item(request, detail)


async def _detail(request: web.Request, kind: str) -> ItemDetail:
    detail = await _content(request).item(kind, request.match_info["key"])
    if detail is None:
        raise web.HTTPNotFound(text=f"There is no {kind} '{request.match_info['key']}'.")
    return detail


async def _render_item(
    request: web.Request, detail: ItemDetail, error: str = "", status: int = 200
) -> web.StreamResponse:
    content = _content(request)
    live_records = await content.live_records()
    context = _context(request)
    latest_preview = preview(detail.kind, detail.key, detail.latest.data, live_records, context)
    history = []
    previous: dict[str, Any] | None = None
    for revision in detail.revisions:
        history.append((revision, diff(detail.kind, previous, revision.data)))
        previous = revision.data
    ident = identity(request)
    return aiohttp_jinja2.render_template(
        "content_item.html",
        request,
        {
            "item": detail,
            "kind_label": KIND_LABELS[detail.kind],
            "fields": FIELDS[detail.kind],
            "values": form_values(detail.kind, detail.latest.data),
            "preview": latest_preview,
            "history": list(reversed(history)),
            "events": list(reversed(detail.events)),
            "can_edit": ident.role in EDITORS,
            "own_revision": detail.latest.author == ident.name,
            "error": error or request.query.get("error", ""),
            "notice": request.query.get("done", ""),
            "url": item_url(detail.kind, detail.key),
        },
        status=status,
    )


# --- create and edit -----------------------------------------------------------------------


@routes.get("/content/new", name="content_new")
@requires_role(*EDITORS)
async def content_new(request: web.Request) -> web.StreamResponse:
    kind = _choice(request.query.get("kind"), CONTENT_KINDS) or "testimony"
    values = form_values(kind, {}) | {"comment": "", "key": ""}
    return _render_form(request, kind, None, values, ValidationResult(), None)


@routes.post("/content/new", name="content_create")
@requires_role(*EDITORS)
async def content_create(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    kind = _choice(str(form.get("kind", "")), CONTENT_KINDS)
    if kind is None:
        raise web.HTTPBadRequest(text="Choose what kind of item to create.")
    key = str(form.get("key", "")).strip()
    return await _save_or_preview(request, kind, key, form, new=True)


@routes.get("/content/{kind}/{key}/edit", name="content_edit")
@requires_role(*EDITORS)
async def content_edit(request: web.Request) -> web.StreamResponse:
    kind = _kind(request)
    detail = await _detail(request, kind)
    context = _context(request)
    shown = preview(
        kind, detail.key, detail.latest.data, await _content(request).live_records(), context
    )
    return _render_form(
        request,
        kind,
        detail,
        form_values(kind, detail.latest.data) | {"comment": detail.latest.comment or ""},
        ValidationResult(),
        shown,
    )


@routes.post("/content/{kind}/{key}/edit", name="content_update")
@requires_role(*EDITORS)
async def content_update(request: web.Request) -> web.StreamResponse:
    kind = _kind(request)
    form = await request.post()
    return await _save_or_preview(request, kind, request.match_info["key"], form, new=False)


async def _save_or_preview(
    request: web.Request, kind: str, key: str, form: Any, *, new: bool
) -> web.StreamResponse:
    """Save a new draft revision, or (the Preview button) show the form with its preview."""
    content = _content(request)
    detail = None if new else await _detail(request, kind)
    data = data_from_form(kind, form, form.getall("claims", []))
    comment = str(form.get("comment", "")).replace("\r\n", "\n").strip() or None
    values = form_values(kind, data) | {"comment": comment or "", "key": key}
    if not key:
        result = ValidationResult(
            {key_field(kind): [f"give the {KEY_LABELS.get(kind, 'id').lower()}"]}
        )
        return _render_form(request, kind, detail, values, result, None, status=422)
    live = await content.live_records()
    if form.get("action") == "preview":
        shown = preview(kind, key, data, live, _context(request))
        return _render_form(request, kind, detail, values, ValidationResult(), shown)
    base = _int(form.get("base_revision"))
    if new and await content.item(kind, key) is not None:
        result = ValidationResult({key_field(kind): [f"{kind} '{key}' exists already"]})
        return _render_form(request, kind, detail, values, result, None, status=422)
    try:
        number = await content.save(
            kind, key, data, identity(request).name, comment=comment, base_revision=base
        )
    except InvalidChange as exc:
        result = _with_key_field(kind, exc.result)
        shown = preview(kind, key, data, live, _context(request))
        return _render_form(request, kind, detail, values, result, shown, status=422)
    except WorkflowError as exc:
        return _render_form(
            request,
            kind,
            detail,
            values,
            ValidationResult(general_errors=[str(exc)]),
            None,
            status=409,
        )
    await audit(
        request,
        "content.create" if new else "content.edit",
        target=f"{kind}/{key}",
        detail={"revision": number},
    )
    raise web.HTTPSeeOther(
        item_url(kind, key) + "?" + urlencode({"done": f"Saved revision {number} as a draft."})
    )


def _with_key_field(kind: str, result: ValidationResult) -> ValidationResult:
    """Errors of the item's id/code/key go next to the key input of the form."""
    name = key_field(kind)
    errors = dict(result.field_errors)
    for alias in ("id", "code"):
        if alias in errors and alias != name:
            errors.setdefault(name, []).extend(errors.pop(alias))
    return ValidationResult(errors, result.general_errors, result.warnings)


def _int(value: Any) -> int | None:
    try:
        return int(str(value))
    except ValueError:
        return None


def _render_form(
    request: web.Request,
    kind: str,
    detail: ItemDetail | None,
    values: dict[str, Any],
    result: ValidationResult,
    shown: Any,
    status: int = 200,
) -> web.StreamResponse:
    fields = FIELDS[kind]
    known = {f.name for f in fields} | {key_field(kind)}
    general = list(result.general_errors) + [
        f"{name}: {message}"
        for name, messages in result.field_errors.items()
        if name not in known
        for message in messages
    ]
    return aiohttp_jinja2.render_template(
        "content_edit.html",
        request,
        {
            "kind": kind,
            "kind_label": KIND_LABELS[kind],
            "kinds": CONTENT_KINDS,
            "kind_labels": KIND_LABELS,
            "key_label": KEY_LABELS.get(kind, "Id"),
            "key_field": key_field(kind),
            "item": detail,
            "fields": fields,
            "values": values,
            "errors": result.field_errors,
            "general_errors": general,
            "warnings": result.warnings,
            "preview": shown,
            "action": "/content/new" if detail is None else f"{item_url(kind, detail.key)}/edit",
        },
        status=status,
    )


# --- workflow steps ------------------------------------------------------------------------


async def _step(request: web.Request, step: str) -> web.StreamResponse:
    kind = _kind(request)
    key = request.match_info["key"]
    content = _content(request)
    form = await request.post()
    note = str(form.get("note", "")).strip()[:500] or None
    actor = identity(request).name
    detail = await _detail(request, kind)
    try:
        if step == "submit":
            await content.submit(kind, key, actor)
        elif step == "approve":
            await content.approve(kind, key, actor)
        elif step == "return":
            await content.return_to_draft(kind, key, actor, note)
        else:
            await content.retire(kind, key, actor, note)
    except (WorkflowError, InvalidChange) as exc:
        message = "; ".join(exc.result.messages()) if isinstance(exc, InvalidChange) else str(exc)
        return await _render_item(request, detail, error=message, status=409)
    await audit(
        request,
        f"content.{step}",
        target=f"{kind}/{key}",
        detail={"revision": detail.latest.number},
    )
    done = {
        "submit": "Submitted for review.",
        "approve": "Approved: users get it within seconds.",
        "return": "Returned to draft.",
        "retire": "Retired: users no longer get it.",
    }[step]
    raise web.HTTPSeeOther(item_url(kind, key) + "?" + urlencode({"done": done}))


@routes.post("/content/{kind}/{key}/submit", name="content_submit")
@requires_role(*EDITORS)
async def content_submit(request: web.Request) -> web.StreamResponse:
    return await _step(request, "submit")


@routes.post("/content/{kind}/{key}/approve", name="content_approve")
@requires_role(*EDITORS)
async def content_approve(request: web.Request) -> web.StreamResponse:
    return await _step(request, "approve")


@routes.post("/content/{kind}/{key}/return", name="content_return")
@requires_role(*EDITORS)
async def content_return(request: web.Request) -> web.StreamResponse:
    return await _step(request, "return")


@routes.post("/content/{kind}/{key}/retire", name="content_retire")
@requires_role(*EDITORS)
async def content_retire(request: web.Request) -> web.StreamResponse:
    return await _step(request, "retire")


# Registered last, so that /content/new is matched first.
@routes.get("/content/{key}", name="content_by_id")
@requires_role(*VIEWERS)
async def content_by_id(request: web.Request) -> web.StreamResponse:
    """A testimony, fact or resource by its id alone (messages record only the id)."""
    key = request.match_info["key"]
    content = _content(request)
    for kind in ("testimony", "fact", "resource"):
        if await content.item(kind, key) is not None:
            raise web.HTTPFound(item_url(kind, key))
    raise web.HTTPNotFound(text=f"There is no testimony, fact or resource '{key}'.")
