"""One conversation as a moderator reads it, and what a moderator can do to it.

Actions take the acting account's name (`by`) and return whether anything was found, so the
dashboard can answer 404 for a user or message that does not exist (or was forgotten
meanwhile). Recording the action in the audit log is the caller's job: the dashboard knows
who is logged in and what the request was.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, false, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.nlu.intents import ALL_INTENTS
from bot.review.inbox import PSEUDONYM_SHOWN
from bot.storage.content_models import CONTENT_KINDS, ContentItem
from bot.storage.database import Database
from bot.storage.models import Message, User, utcnow
from bot.storage.review_models import ConversationReview, IntentAnnotation, ModeratorNote

MAX_NOTE_CHARS = 4000
ALTERNATIVES_SHOWN = 3


class NotFound(LookupError):
    """No such conversation or message (it may have been forgotten or expired)."""


@dataclass(frozen=True)
class TranscriptMessage:
    id: int
    created_at: datetime
    direction: str
    kind: str
    text: str | None
    intent: str | None
    confidence: float | None
    intent_source: str | None
    alternatives: tuple[tuple[str, float], ...]
    """The model's next intents after the one chosen, at most three, with confidences."""
    content_ids: tuple[str, ...]
    flags: tuple[str, ...]
    corrected_intent: str | None
    """A moderator's annotation of this message, if any."""
    annotator: str | None


@dataclass(frozen=True)
class Note:
    id: int
    created_at: datetime
    author: str
    text: str


@dataclass(frozen=True)
class Transcript:
    user_id: int
    key: str
    """The full pseudonym: the conversation's address in the dashboard."""
    pseudonym: str
    risk_level: str
    risk_reasons: tuple[str, ...]
    crisis_flag: bool
    risk_flag: bool
    handling: str
    human_requested: bool
    in_crisis: bool
    country: str | None
    campaign: str | None
    created_at: datetime
    last_seen_at: datetime
    flagged: bool
    reviewed: bool
    reviewed_at: datetime | None
    reviewed_by: str | None
    messages: list[TranscriptMessage]
    notes: list[Note]


async def content_kinds(database: Database, ids: Iterable[str]) -> dict[str, str]:
    """The kind (testimony, fact, resource, ...) of each content id the library has, so a
    page can link to the item; an id the library no longer has is left out."""
    wanted = set(ids)
    if not wanted:
        return {}
    statement = select(ContentItem.key, ContentItem.kind).where(ContentItem.key.in_(wanted))
    found: dict[str, str] = {}
    async with database.session() as session:
        for key, kind in (await session.execute(statement)).all():
            # A key used by two kinds: the content a user is sent first (testimony) wins.
            if key not in found or CONTENT_KINDS.index(kind) < CONTENT_KINDS.index(found[key]):
                found[key] = kind
    return found


async def user_id_of(database: Database, pseudonym: str) -> int:
    """The id of the user with this pseudonym; NotFound if there is none (any more)."""
    async with database.session() as session:
        found = await session.scalar(select(User.id).where(User.pseudonym == pseudonym))
    if found is None:
        raise NotFound("no such conversation")
    return int(found)


def alternatives(
    ranking: list[dict[str, Any]], chosen: str | None
) -> tuple[tuple[str, float], ...]:
    """The best intents of the model's ranking other than the chosen one."""
    found = []
    for entry in ranking:
        name, confidence = entry.get("name"), entry.get("confidence")
        if not isinstance(name, str) or name == chosen or not isinstance(confidence, int | float):
            continue
        found.append((name, float(confidence)))
        if len(found) == ALTERNATIVES_SHOWN:
            break
    return tuple(found)


async def transcript(database: Database, user_id: int) -> Transcript:
    """Every real message of the user (test traffic left out), their notes and status."""
    async with database.session() as session:
        user = await session.get(User, user_id)
        if user is None:
            raise NotFound(f"no conversation {user_id}")
        review = await session.get(ConversationReview, user_id)
        rows = (
            await session.execute(
                select(Message, IntentAnnotation)
                .outerjoin(IntentAnnotation, IntentAnnotation.message_id == Message.id)
                .where(Message.user_id == user_id, Message.is_test == false())
                .order_by(Message.id)
            )
        ).all()
        notes = (
            await session.scalars(
                select(ModeratorNote)
                .where(ModeratorNote.user_id == user_id)
                .order_by(ModeratorNote.id)
            )
        ).all()
        reviewed_at = review.reviewed_at if review else None
        return Transcript(
            user_id=user.id,
            key=user.pseudonym,
            pseudonym=user.pseudonym[:PSEUDONYM_SHOWN],
            risk_level=user.risk_level,
            risk_reasons=tuple(user.risk_reasons),
            crisis_flag=user.crisis_flag,
            risk_flag=user.risk_flag,
            handling=user.handling,
            human_requested=user.human_requested,
            in_crisis=user.in_crisis,
            country=user.country,
            campaign=user.campaign,
            created_at=user.created_at,
            last_seen_at=user.last_seen_at,
            flagged=bool(review and review.flagged),
            reviewed=reviewed_at is not None and reviewed_at >= user.last_seen_at,
            reviewed_at=reviewed_at,
            reviewed_by=review.reviewed_by if review else None,
            messages=[
                TranscriptMessage(
                    id=m.id,
                    created_at=m.created_at,
                    direction=m.direction,
                    kind=m.kind,
                    text=m.text,
                    intent=m.intent,
                    confidence=m.confidence,
                    intent_source=m.intent_source,
                    alternatives=alternatives(list(m.ranking), m.intent),
                    content_ids=tuple(m.content_ids),
                    flags=tuple(m.flags),
                    corrected_intent=a.intent if a else None,
                    annotator=a.annotator if a else None,
                )
                for m, a in rows
            ],
            notes=[Note(n.id, n.created_at, n.author, n.text) for n in notes],
        )


async def _review_row(session: AsyncSession, user_id: int) -> ConversationReview:
    if await session.get(User, user_id) is None:
        raise NotFound(f"no conversation {user_id}")
    review = await session.get(ConversationReview, user_id)
    if review is None:
        review = ConversationReview(user_id=user_id, flagged=False)
        session.add(review)
    return review


async def mark_reviewed(database: Database, user_id: int, by: str) -> None:
    async with database.session() as session, session.begin():
        review = await _review_row(session, user_id)
        review.reviewed_at = utcnow()
        review.reviewed_by = by


async def set_flag(database: Database, user_id: int, flagged: bool, by: str) -> None:
    """Flag a conversation for attention (or clear the flag); the bot's own flags stay."""
    async with database.session() as session, session.begin():
        review = await _review_row(session, user_id)
        review.flagged = flagged
        review.flagged_at = utcnow()
        review.flagged_by = by


async def add_note(database: Database, user_id: int, text: str, by: str) -> int:
    """Add a private note; refuses an empty or overlong one with ValueError."""
    text = text.strip()
    if not text:
        raise ValueError("the note is empty")
    if len(text) > MAX_NOTE_CHARS:
        raise ValueError(f"a note holds at most {MAX_NOTE_CHARS} characters")
    async with database.session() as session, session.begin():
        if await session.get(User, user_id) is None:
            raise NotFound(f"no conversation {user_id}")
        note = ModeratorNote(user_id=user_id, author=by, text=text, created_at=utcnow())
        session.add(note)
        await session.flush()
        return note.id


@dataclass(frozen=True)
class Annotated:
    """What `annotate` recorded, for the audit log and the page to go back to."""

    user_id: int
    pseudonym: str
    model_intent: str | None
    intent: str

    @property
    def confirmed(self) -> bool:
        return self.intent == self.model_intent


async def annotate(database: Database, message_id: int, intent: str, by: str) -> Annotated:
    """Record the right intent of an incoming text message.

    A later annotation of the same message replaces the earlier one. Raises ValueError for
    an intent the model does not know, NotFound for a message that is not a user's text.
    """
    if intent not in ALL_INTENTS:
        raise ValueError(f"unknown intent {intent!r}")
    async with database.session() as session, session.begin():
        message = await session.get(Message, message_id)
        if message is None or message.direction != "in" or message.kind != "text":
            raise NotFound(f"no incoming text message {message_id}")
        await session.execute(
            delete(IntentAnnotation).where(IntentAnnotation.message_id == message_id)
        )
        session.add(
            IntentAnnotation(
                message_id=message_id,
                intent=intent,
                model_intent=message.intent,
                annotator=by,
                annotated_at=utcnow(),
            )
        )
        pseudonym = await session.scalar(select(User.pseudonym).where(User.id == message.user_id))
        return Annotated(message.user_id, str(pseudonym), message.intent, intent)
