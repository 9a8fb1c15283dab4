"""Turning a reply plan into words and buttons from the content library.

Every sentence the bot sends comes from the content library, so the content team can review and
change the tone without touching code; this module only chooses and lays out.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bot.content.model import Library, Resource, Source, Testimony
from bot.policy.decision import COUNTRY, ReplyPlan
from bot.policy.state import UserState

GLOBAL = "global"


@dataclass(frozen=True)
class Reply:
    """One message to send: text, inline buttons as (label, callback data), what it used."""

    kind: str
    text: str
    buttons: tuple[tuple[str, str], ...] = ()
    content_ids: tuple[str, ...] = ()
    flags: tuple[str, ...] = ()


@dataclass(frozen=True)
class ReplyContext:
    """Values some reply texts mention: who runs the bot and how long data is kept."""

    operator: str
    retention_days: int
    extra: dict[str, str] = field(default_factory=dict)
    human_wait: str = "30 minutes"
    """Roughly how soon a person answers a request (from HUMAN_REPLY_ESTIMATE_MINUTES)."""


def compose(plan: ReplyPlan, state: UserState, library: Library, context: ReplyContext) -> Reply:
    """Write the reply for `plan`, updating `state` (stories shown, last claim, country)."""
    ids: list[str] = []
    if plan.country and plan.country != GLOBAL:
        state.country = plan.country
    parts = [_opening(plan, state, library, context, ids)]
    if plan.ask_country:
        parts.append(library.reply("ask_country"))
    elif plan.resource_kinds:
        parts.append(_resources(plan, library, ids))
    state.last_reply_kind = plan.kind
    return Reply(
        kind=plan.kind,
        text="\n\n".join(p for p in parts if p),
        buttons=_buttons(plan, library),
        content_ids=tuple(ids),
        flags=plan.flags,
    )


def _opening(
    plan: ReplyPlan, state: UserState, library: Library, context: ReplyContext, ids: list[str]
) -> str:
    values = {"operator": context.operator, "retention_days": str(context.retention_days)}
    kind = plan.kind
    if kind == "counter_message" and plan.claim:
        return _counter_message(plan.claim, state, library, ids)
    if kind == "sourcing":
        facts = library.approved_facts("defectors") or library.approved_facts()
        ids.extend(f.id for f in facts[:3])
        lines = [library.reply("sourcing_intro")]
        lines += [f"• {f.text} ({_source_line(f.source)})" for f in facts[:3]]
        return "\n\n".join(lines)
    if kind in ("welcome", "privacy"):
        return library.reply(kind, **values)
    if kind == "identity":
        return library.reply(kind, operator=values["operator"])
    if kind == "human_requested":
        return library.reply(kind, operator=values["operator"], wait=context.human_wait)
    if kind == "help_leaving":
        return library.reply("help_leaving_intro")
    if kind == "resources":
        return ""  # the resource list brings its own introduction
    return library.reply(kind)


def _counter_message(claim: str, state: UserState, library: Library, ids: list[str]) -> str:
    candidates = library.approved_testimonies(claim) or library.approved_testimonies()
    if not candidates:
        return library.reply("fallback")
    unseen = [t for t in candidates if t.id not in state.shown_testimonies]
    prefix = ""
    if not unseen:
        # Every story for this claim was shown: start the cycle again, and say so.
        shown = {t.id for t in candidates}
        state.shown_testimonies = [i for i in state.shown_testimonies if i not in shown]
        unseen = candidates
        prefix = library.reply("stories_exhausted")
    testimony = unseen[0]
    state.shown_testimonies.append(testimony.id)
    state.last_claim = claim
    ids.append(testimony.id)
    parts = [prefix, library.reply("counter_intro"), render_testimony(testimony, library)]
    followup = library.replies.get(f"followup_{claim}")
    if followup:
        parts.append(followup)
    return "\n\n".join(p for p in parts if p)


def render_testimony(testimony: Testimony, library: Library) -> str:
    """A quote in quotation marks, a paraphrase as a summary; both with speaker and source."""
    key = "testimony_quote" if testimony.form == "quote" else "testimony_paraphrase"
    rendered = library.reply(
        key,
        text=testimony.text.strip(),
        speaker=testimony.speaker,
        source=_source_line(testimony.source),
    )
    # A caveat (e.g. "this account reached the press through interrogators") travels with
    # the testimony: showing the words without it would overstate them.
    return f"{rendered}\n{testimony.caveat.strip()}" if testimony.caveat else rendered


def _source_line(source: Source) -> str:
    return f"{source.title}, {source.publisher}, {source.date}. {source.url}"


def _resources(plan: ReplyPlan, library: Library, ids: list[str]) -> str:
    country = plan.country if plan.country and plan.country != GLOBAL else None
    found = library.approved_resources(country, plan.resource_kinds)
    local = [r for r in found if r.country != GLOBAL]
    name = _country_name(country, library)
    lines: list[str] = []
    if country and not local:
        lines.append(library.reply("resources_none_local", country=name))
    elif plan.kind in ("resources", "help_leaving"):
        lines.append(library.reply("resources_intro", country=name))
    for resource in found:
        ids.append(resource.id)
        lines.append(
            library.reply(
                "resource_line",
                name=resource.name,
                description=resource.description.strip(),
                contact=contact_line(resource),
            )
        )
    return "\n\n".join(lines)


def wait_phrase(minutes: int) -> str:
    """ "45 minutes", "1 hour", "2 hours", "90 minutes": how long, as a person would say it."""
    if minutes >= 60 and minutes % 60 == 0:
        hours = minutes // 60
        return "1 hour" if hours == 1 else f"{hours} hours"
    return "1 minute" if minutes == 1 else f"{minutes} minutes"


def contact_line(resource: Resource) -> str:
    parts = [resource.phone, resource.hours, resource.url, resource.email]
    return " · ".join(p for p in parts if p)


def _country_name(code: str | None, library: Library) -> str:
    if code is None:
        return "anywhere"
    for country in library.countries:
        if country.code == code:
            return country.name
    return code


def _buttons(plan: ReplyPlan, library: Library) -> tuple[tuple[str, str], ...]:
    buttons: list[tuple[str, str]] = []
    for button in plan.buttons:
        if button == COUNTRY:
            buttons += [(c.name, f"{COUNTRY}:{c.code}") for c in library.countries]
            buttons.append((library.reply("button_other_country"), f"{COUNTRY}:other"))
        else:
            buttons.append((library.reply(f"button_{button}"), button))
    return tuple(buttons)
