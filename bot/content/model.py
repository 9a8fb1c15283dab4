"""The content library's items: what the bot may say, each with where it comes from.

Content lives in `responses/*.yml` so the content team can change it without a developer;
`bot.content.loader` turns those files into a `Library` and reports every problem with
file and line.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

STATUSES = ("draft", "in_review", "approved", "retired")
"""Workflow states of an item; only `approved` items reach users."""


@dataclass(frozen=True)
class Source:
    """Where a testimony or fact was published."""

    title: str
    publisher: str
    date: str
    """Publication date as published: YYYY, YYYY-MM or YYYY-MM-DD."""
    url: str


@dataclass(frozen=True)
class Testimony:
    """What a person who was in the group and left said, matched to the claims it answers.

    `form` is "quote" (the exact published words, shown in quotation marks) or
    "paraphrase" (a faithful summary, shown as a summary, never in quotation marks).
    """

    id: str
    form: str
    text: str
    claims: tuple[str, ...]
    speaker: str
    source: Source
    language: str
    status: str
    checked: date | None = None
    caveat: str | None = None


@dataclass(frozen=True)
class Fact:
    """A short sourced statement, used when a user questions the defectors or asks for evidence."""

    id: str
    text: str
    source: Source
    language: str
    status: str
    topics: tuple[str, ...] = ()


@dataclass(frozen=True)
class Resource:
    """A place to get help: exit programme, family support, crisis line or emergency number.

    `country` is an ISO 3166-1 alpha-2 code ("DE", "GB") or "global".
    """

    id: str
    name: str
    kind: str
    """One of: exit, family, crisis, emergency."""
    country: str
    description: str
    last_verified: date | None
    """When the contact details were last checked; None only for unverified drafts (the loader
    refuses an approved resource without it)."""
    status: str
    phone: str | None = None
    url: str | None = None
    email: str | None = None
    hours: str | None = None
    notes: str | None = None


@dataclass(frozen=True)
class Country:
    """A country the resources cover: its code, the name shown on its button, and aliases."""

    code: str
    name: str
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class Library:
    """The whole content library as loaded; the policy reads only approved items from it."""

    testimonies: tuple[Testimony, ...] = ()
    facts: tuple[Fact, ...] = ()
    resources: tuple[Resource, ...] = ()
    replies: dict[str, str] = field(default_factory=dict)
    """The bot's own texts by key (welcome, privacy, fallback, ...)."""
    countries: tuple[Country, ...] = ()

    def approved_testimonies(self, claim: str | None = None) -> list[Testimony]:
        return [
            t
            for t in self.testimonies
            if t.status == "approved" and (claim is None or claim in t.claims)
        ]

    def approved_facts(self, topic: str | None = None) -> list[Fact]:
        return [
            f for f in self.facts if f.status == "approved" and (topic is None or topic in f.topics)
        ]

    def approved_resources(self, country: str | None, kinds: tuple[str, ...]) -> list[Resource]:
        """Resources of `kinds` for `country` first, then the global ones."""
        wanted = [r for r in self.resources if r.status == "approved" and r.kind in kinds]
        local = [r for r in wanted if country and r.country == country]
        return local + [r for r in wanted if r.country == "global"]

    def reply(self, key: str, **values: str) -> str:
        """The reply text `key` with `{placeholders}` filled; a missing key is a loader bug."""
        text = self.replies[key]
        return text.format(**values) if values else text

    def country_by_alias(self, name: str) -> Country | None:
        wanted = name.strip().casefold()
        for country in self.countries:
            if wanted == country.code.casefold() or wanted == country.name.casefold():
                return country
            if wanted in (a.casefold() for a in country.aliases):
                return country
        return None
