"""The content editor's forms and previews: fields per kind, form <-> item data, Telegram preview.

Fields are described once per kind (`FIELDS`), so the edit page, the form parser and the
error placement agree. The preview is written by the bot's own code (`bot.policy.compose`)
on the library as it would be with this revision approved, so what the editor sees is what a
user would get: quotation marks or "in summary", speaker, source, caveat, buttons.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from bot.content.documents import ItemRecord
from bot.content.loader import FORMS, KINDS, REQUIRED_REPLIES
from bot.content.model import Library
from bot.content.validation import check_records, replace_record
from bot.nlu.intents import RISK_INTENTS
from bot.policy.compose import Reply, ReplyContext, compose
from bot.policy.decision import COUNTER_BUTTONS, ReplyPlan
from bot.policy.state import UserState


@dataclass(frozen=True)
class Field:
    """One form field; `name` is the data path ("source.url") and the error key."""

    name: str
    label: str
    widget: str = "text"
    """text, textarea, select, checkboxes, list (comma-separated), date."""
    options: tuple[str, ...] = ()
    hint: str = ""
    required: bool = False


SOURCE_FIELDS = (
    Field("source.title", "Source title", required=True),
    Field("source.publisher", "Publisher", required=True),
    Field("source.date", "Published", hint="YYYY, YYYY-MM, YYYY-MM-DD, or n.d.", required=True),
    Field("source.url", "Link", hint="https://...", required=True),
)

FIELDS: Mapping[str, tuple[Field, ...]] = {
    "testimony": (
        Field(
            "form",
            "Form",
            "select",
            FORMS,
            "quote: the exact published words; paraphrase: a faithful summary",
            True,
        ),
        Field(
            "text",
            "Text",
            "textarea",
            hint="no quotation marks: the layout adds them",
            required=True,
        ),
        Field(
            "claims", "Claims it answers", "checkboxes", tuple(sorted(RISK_INTENTS)), required=True
        ),
        Field(
            "speaker",
            "Speaker",
            "textarea",
            hint="describe; a name only if published",
            required=True,
        ),
        *SOURCE_FIELDS,
        Field("language", "Language", hint="ISO 639-1, e.g. en", required=True),
        Field("checked", "Checked against the source on", "date"),
        Field(
            "caveat",
            "Caveat",
            "textarea",
            hint="shown with the testimony, e.g. how it was recorded",
        ),
    ),
    "fact": (
        Field("text", "Text", "textarea", required=True),
        Field("topics", "Topics", "list", hint="comma-separated; 'defectors' facts answer doubts"),
        *SOURCE_FIELDS,
        Field("language", "Language", hint="ISO 639-1, e.g. en", required=True),
    ),
    "resource": (
        Field("name", "Name", required=True),
        Field("kind", "Kind", "select", KINDS, required=True),
        Field("country", "Country", hint="a country code such as DE, or global", required=True),
        Field("description", "Description", "textarea", required=True),
        Field("phone", "Phone"),
        Field("url", "Website"),
        Field("email", "Email"),
        Field("hours", "Hours"),
        Field("last_verified", "Contact details verified on", "date"),
        Field("notes", "Notes for the team", "textarea", hint="not shown to users"),
    ),
    "reply": (Field("text", "Text", "textarea", required=True),),
    "country": (
        Field("name", "Name on its button", required=True),
        Field("aliases", "Other names", "list", hint="comma-separated, e.g. uk, britain"),
    ),
}

KIND_LABELS: Mapping[str, str] = {
    "testimony": "Testimony",
    "fact": "Fact",
    "resource": "Resource",
    "reply": "Reply text",
    "country": "Country",
}
KEY_LABELS: Mapping[str, str] = {"reply": "Key", "country": "Code"}
"""What the item's key is called in the form; "Id" otherwise."""

EXAMPLE_VALUES = {
    "country": "Germany",
    "name": "Example service",
    "description": "What the service does.",
    "contact": "0800 000 000",
    "text": "The words",
    "speaker": "Who said them",
    "source": "Where they were published",
}
"""Stand-ins for placeholders when previewing a reply text on its own."""


def key_field(kind: str) -> str:
    """The error key of the item's own name: `code` for countries, `id` otherwise."""
    return {"country": "code", "reply": "key"}.get(kind, "id")


# --- form <-> data -------------------------------------------------------------------------


def data_from_form(kind: str, form: Mapping[str, Any], claims: Sequence[str]) -> dict[str, Any]:
    """The item's fields from a submitted form (`claims`: every checked claim box)."""
    data: dict[str, Any] = {}
    for field in FIELDS[kind]:
        if field.widget == "checkboxes":
            value: Any = [str(c) for c in claims]
        elif field.widget == "list":
            raw = str(form.get(field.name, ""))
            value = [part.strip() for part in raw.split(",") if part.strip()]
            if not value:
                continue
        else:
            value = str(form.get(field.name, "")).replace("\r\n", "\n").strip()
            if not value:
                continue
        _set(data, field.name, value)
    return data


def form_values(kind: str, data: Mapping[str, Any]) -> dict[str, Any]:
    """What each field shows for `data`: text, or a list for checkboxes."""
    values: dict[str, Any] = {}
    for field in FIELDS[kind]:
        value = _get(data, field.name)
        if field.widget == "checkboxes":
            values[field.name] = list(value or [])
        elif field.widget == "list":
            values[field.name] = ", ".join(value or [])
        else:
            values[field.name] = "" if value is None else str(value)
    return values


def _set(data: dict[str, Any], path: str, value: Any) -> None:
    head, _, rest = path.partition(".")
    if rest:
        _set(data.setdefault(head, {}), rest, value)
    else:
        data[head] = value


def _get(data: Mapping[str, Any], path: str) -> Any:
    head, _, rest = path.partition(".")
    value = data.get(head)
    if rest:
        return _get(value, rest) if isinstance(value, Mapping) else None
    return value


# --- preview -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Preview:
    """A message as Telegram would show it, or why there is none."""

    text: str
    buttons: tuple[tuple[str, str], ...] = ()
    note: str = ""


def preview(
    kind: str,
    key: str,
    data: Mapping[str, Any],
    live: Sequence[ItemRecord],
    context: ReplyContext,
) -> Preview | None:
    """The message a user would get with this revision approved; None if it is invalid."""
    candidate = ItemRecord(kind, key, dict(data), "approved")
    library = check_records(replace_record(live, candidate, kind, key)).library
    if kind == "testimony":
        testimony = next((t for t in library.testimonies if t.id == key), None)
        if testimony is None or not testimony.claims:
            return None
        claim = testimony.claims[0]
        # Everyone else's story for this claim counts as seen, so compose picks this one.
        seen = [t.id for t in library.approved_testimonies(claim) if t.id != key]
        state = UserState(pseudonym="preview", shown_testimonies=seen)
        reply = compose(
            ReplyPlan("counter_message", claim=claim, buttons=COUNTER_BUTTONS),
            state,
            library,
            context,
        )
        return _shown(reply, f"as the answer to {claim}")
    if kind == "fact":
        fact = next((f for f in library.facts if f.id == key), None)
        if fact is None:
            return None
        only = replace(library, facts=(fact,))
        reply = compose(ReplyPlan("sourcing", buttons=COUNTER_BUTTONS), _state(), only, context)
        return _shown(reply, "in the answer to a user who doubts the defectors")
    if kind == "resource":
        resource = next((r for r in library.resources if r.id == key), None)
        if resource is None:
            return None
        only = replace(library, resources=(resource,))
        country = None if resource.country == "global" else resource.country
        plan = ReplyPlan("resources", country=country, resource_kinds=(resource.kind,))
        return _shown(compose(plan, _state(), only, context), "in the list of places to get help")
    if kind == "reply":
        if key not in library.replies:
            return None
        return Preview(_reply_text(library, key, context), note="placeholders filled with examples")
    if kind == "country":
        country_item = next((c for c in library.countries if c.code == key), None)
        if country_item is None:
            return None
        plan = ReplyPlan("resources", ask_country=True, buttons=("country",))
        return _shown(compose(plan, _state(), library, context), "when the bot asks for a country")
    return None


def _state() -> UserState:
    return UserState(pseudonym="preview")


def _shown(reply: Reply, note: str) -> Preview:
    return Preview(reply.text, reply.buttons, note)


def _reply_text(library: Library, key: str, context: ReplyContext) -> str:
    values = {
        **EXAMPLE_VALUES,
        "operator": context.operator,
        "retention_days": str(context.retention_days),
    }
    allowed = REQUIRED_REPLIES.get(key, frozenset())
    return library.reply(key, **{name: values.get(name, name) for name in allowed})


# --- diffs ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class FieldChange:
    """One field that differs between two revisions, as words kept, removed and added."""

    field: str
    segments: tuple[tuple[str, str], ...]
    """(op, text) with op "same", "removed" or "added"."""


def diff(
    kind: str, before: Mapping[str, Any] | None, after: Mapping[str, Any]
) -> list[FieldChange]:
    """The fields that changed from `before` (None: a new item) to `after`, word by word."""
    old_values = form_values(kind, before or {})
    new_values = form_values(kind, after)
    names = [f.name for f in FIELDS[kind]]
    changes = []
    for name in names:
        old, new = _as_text(old_values.get(name)), _as_text(new_values.get(name))
        if old != new:
            changes.append(FieldChange(name, _word_diff(old, new)))
    return changes


def _as_text(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return "" if value is None else str(value)


def _word_diff(old: str, new: str) -> tuple[tuple[str, str], ...]:
    a, b = old.split(" "), new.split(" ")
    segments: list[tuple[str, str]] = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
        if op == "equal":
            segments.append(("same", " ".join(a[i1:i2])))
            continue
        if i2 > i1 and " ".join(a[i1:i2]):
            segments.append(("removed", " ".join(a[i1:i2])))
        if j2 > j1 and " ".join(b[j1:j2]):
            segments.append(("added", " ".join(b[j1:j2])))
    return tuple(segments)
