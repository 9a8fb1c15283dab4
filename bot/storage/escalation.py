"""The escalation queries: alerts, who answers a user (bot or person), mute, crisis, floods.

Every change of state is one UPDATE with its condition in the WHERE clause (`handling =
'waiting'`, `status = 'open'`), so two moderators clicking at once, or two replicas looking
for unanswered requests, cannot both win; the caller learns from the result whether it did.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Connection,
    CursorResult,
    Result,
    Select,
    bindparam,
    exists,
    insert,
    select,
    update,
)

from bot.safety.risk import assess
from bot.storage.database import Database
from bot.storage.models import Alert, User, utcnow

BOT, WAITING, PERSON = "bot", "waiting", "person"
HANDLING = (BOT, WAITING, PERSON)
"""Who answers the user: the bot; nobody yet (a person was asked for); a moderator."""

CRISIS, HIGH_RISK, HUMAN_REQUEST = "crisis", "high_risk", "human_request"
ALERT_KINDS = (CRISIS, HIGH_RISK, HUMAN_REQUEST)
SEVERITIES = ("crisis", "high", "request")
"""Most urgent first; the queue sorts by this, then by age."""
OPEN, ACKNOWLEDGED, RESOLVED = "open", "acknowledged", "resolved"


@dataclass(frozen=True)
class AlertView:
    """An alert with what a moderator needs to judge it, detached from the database."""

    id: int
    pseudonym: str
    kind: str
    severity: str
    status: str
    reasons: tuple[str, ...]
    created_at: datetime
    notified_at: datetime | None
    escalated_at: datetime | None
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    resolved_at: datetime | None
    resolved_by: str | None
    risk_level: str
    handling: str
    handled_by: str | None
    in_crisis: bool
    muted: bool

    def as_json(self) -> dict[str, Any]:
        """For the live queue's JSON endpoint: no message text, ever."""
        return {
            "id": self.id,
            "conversation": self.pseudonym,
            "short": self.pseudonym[:10],
            "kind": self.kind,
            "severity": self.severity,
            "status": self.status,
            "reasons": list(self.reasons),
            "created_at": self.created_at.isoformat(timespec="seconds"),
            "escalated": self.escalated_at is not None,
            "acknowledged_by": self.acknowledged_by,
            "risk_level": self.risk_level,
            "handling": self.handling,
            "handled_by": self.handled_by,
            "in_crisis": self.in_crisis,
            "muted": self.muted,
        }


@dataclass(frozen=True)
class ConversationControl:
    """Who answers one user and whether they may be written to: checked before every send."""

    pseudonym: str
    handling: str
    handled_by: str | None
    handling_since: datetime | None
    muted: bool
    in_crisis: bool
    risk_level: str
    risk_reasons: tuple[str, ...]
    country: str | None
    contact: str | None


_ALERT_COLUMNS = (
    Alert.id,
    User.pseudonym,
    Alert.kind,
    Alert.severity,
    Alert.status,
    Alert.reasons,
    Alert.created_at,
    Alert.notified_at,
    Alert.escalated_at,
    Alert.acknowledged_at,
    Alert.acknowledged_by,
    Alert.resolved_at,
    Alert.resolved_by,
    User.risk_level,
    User.handling,
    User.handled_by,
    User.in_crisis,
    User.muted,
)

_UNRESOLVED_ALERT = select(
    exists().where(
        Alert.user_id == User.id,
        User.pseudonym == bindparam("pseudonym"),
        Alert.kind == bindparam("kind"),
        Alert.status != RESOLVED,
    )
)


def _alert_row(alert_id: int) -> Select[Any]:
    return select(*_ALERT_COLUMNS).join(User, User.id == Alert.user_id).where(Alert.id == alert_id)


class EscalationStore:
    """Reads and writes the escalation state over the bot's `Database`."""

    def __init__(self, database: Database) -> None:
        self.database = database

    # -- who answers -----------------------------------------------------------------------

    async def control(self, pseudonym: str) -> ConversationControl | None:
        """The user's handling, mute and crisis state, or None for an unknown user."""
        statement = select(
            User.pseudonym,
            User.handling,
            User.handled_by,
            User.handling_since,
            User.muted,
            User.in_crisis,
            User.risk_level,
            User.risk_reasons,
            User.country,
            User.contact,
        ).where(User.pseudonym == pseudonym)
        async with self.database.session() as session:
            row = (await session.execute(statement)).one_or_none()
        if row is None:
            return None
        return ConversationControl(
            pseudonym=row.pseudonym,
            handling=row.handling,
            handled_by=row.handled_by,
            handling_since=row.handling_since,
            muted=row.muted,
            in_crisis=row.in_crisis,
            risk_level=row.risk_level,
            risk_reasons=tuple(row.risk_reasons),
            country=row.country,
            contact=row.contact,
        )

    async def request_person(self, pseudonym: str) -> bool:
        """The user asked for a person: wait for one. False if one was already asked for."""
        return await self._update_user(
            pseudonym,
            User.handling == BOT,
            handling=WAITING,
            handling_since=utcnow(),
            handled_by=None,
            human_requested=True,
        )

    async def take_over(self, pseudonym: str, moderator: str) -> bool:
        """A moderator handles the conversation from now on. False if they already did."""
        return await self._update_user(
            pseudonym,
            (User.handling != PERSON)
            | (User.handled_by.is_(None))
            | (User.handled_by != moderator),
            handling=PERSON,
            handling_since=utcnow(),
            handled_by=moderator,
        )

    async def hand_back(self, pseudonym: str) -> bool:
        """The bot answers again. False if it already did."""
        return await self._update_user(
            pseudonym,
            User.handling != BOT,
            handling=BOT,
            handling_since=None,
            handled_by=None,
        )

    async def release_unanswered(self, older_than: datetime) -> list[str]:
        """Requests for a person made before `older_than` that nobody took: back to the bot.

        Returns the pseudonyms released; each is returned to one caller only, however many
        replicas look at once, so the user gets the "nobody answered" message once.
        """
        statement = (
            update(User)
            .where(User.handling == WAITING, User.handling_since < older_than)
            .values(handling=BOT, handling_since=None)
            .returning(User.pseudonym)
        )
        async with self.database.session() as session, session.begin():
            return list((await session.execute(statement)).scalars().all())

    async def set_muted(self, pseudonym: str, muted: bool) -> bool:
        """Mute or unmute; False if the user was already in that state (or is unknown)."""
        return await self._update_user(pseudonym, User.muted != muted, muted=muted)

    async def close_crisis(self, pseudonym: str) -> bool:
        """A moderator closes the user's crisis state; the risk level is recomputed with it."""
        async with self.database.session() as session, session.begin():
            signals = (
                await session.execute(
                    update(User)
                    .where(User.pseudonym == pseudonym, User.in_crisis.is_(True))
                    .values(in_crisis=False)
                    .returning(User.risk_signals)
                )
            ).scalar_one_or_none()
            if signals is None:
                return False
            assessment = assess(signals, in_crisis=False)
            await session.execute(
                update(User)
                .where(User.pseudonym == pseudonym)
                .values(risk_level=assessment.level, risk_reasons=list(assessment.reasons))
            )
        return True

    async def contact_of(self, pseudonym: str) -> str | None:
        async with self.database.session() as session:
            return (
                await session.execute(select(User.contact).where(User.pseudonym == pseudonym))
            ).scalar_one_or_none()

    # -- floods ----------------------------------------------------------------------------

    # -- alerts ----------------------------------------------------------------------------

    async def raise_alert(
        self, pseudonym: str, kind: str, severity: str, reasons: Sequence[str]
    ) -> AlertView | None:
        """A new open alert, or None while one of this kind is unresolved (one per event).

        Called after every crisis turn, most often for a user whose alert is already open:
        that case is answered by a read, without a write transaction (on SQLite one more
        commit and flush to disk per crisis message, in the writers' queue).
        """
        params = {"pseudonym": pseudonym, "kind": kind}
        if await self.database.read(lambda c: c.scalar(_UNRESOLVED_ALERT, params)):
            return None

        def write(connection: Connection) -> AlertView | None:
            # A write first: on SQLite it takes the lock before the check below reads.
            user_id = connection.execute(
                update(User)
                .where(User.pseudonym == pseudonym)
                .values(last_seen_at=User.last_seen_at)
                .returning(User.id)
            ).scalar_one_or_none()
            if user_id is None or connection.scalar(_UNRESOLVED_ALERT, params):
                return None
            alert_id = connection.execute(
                insert(Alert)
                .values(
                    user_id=user_id,
                    created_at=utcnow(),
                    kind=kind,
                    severity=severity,
                    status=OPEN,
                    reasons=list(reasons),
                )
                .returning(Alert.id)
            ).scalar_one()
            return _alert_view(connection.execute(_alert_row(alert_id)).one())

        return await self.database.write(write)

    async def escalate_request(self, pseudonym: str, reason: str) -> AlertView | None:
        """Raise the user's unresolved request for a person to high severity (or open one)."""
        now = utcnow()
        async with self.database.session() as session, session.begin():
            user_id = select(User.id).where(User.pseudonym == pseudonym).scalar_subquery()
            row = (
                await session.execute(
                    select(Alert.id, Alert.reasons).where(
                        Alert.user_id == user_id,
                        Alert.kind == HUMAN_REQUEST,
                        Alert.status != RESOLVED,
                    )
                )
            ).first()
            if row is None:
                found = await session.scalar(select(User.id).where(User.pseudonym == pseudonym))
                if found is None:
                    return None
                alert = Alert(
                    user_id=found,
                    created_at=now,
                    kind=HUMAN_REQUEST,
                    severity="high",
                    status=OPEN,
                    reasons=[reason],
                    escalated_at=now,
                )
                session.add(alert)
                await session.flush()
                alert_id = alert.id
            else:
                alert_id = row.id
                await session.execute(
                    update(Alert)
                    .where(Alert.id == alert_id)
                    .values(
                        severity="high",
                        status=OPEN,
                        escalated_at=now,
                        reasons=[*row.reasons, reason],
                    )
                )
        return await self.alert(alert_id)

    async def add_reason(self, alert_id: int, reason: str) -> bool:
        """Add `reason` to the alert; False if it was there already."""
        async with self.database.session() as session, session.begin():
            reasons = await session.scalar(select(Alert.reasons).where(Alert.id == alert_id))
            if reasons is None or reason in reasons:
                return False
            await session.execute(
                update(Alert).where(Alert.id == alert_id).values(reasons=[reason, *reasons])
            )
        return True

    async def unresolved_alert(self, pseudonym: str, kind: str) -> AlertView | None:
        statement = (
            select(*_ALERT_COLUMNS)
            .join(User, User.id == Alert.user_id)
            .where(User.pseudonym == pseudonym, Alert.kind == kind, Alert.status != RESOLVED)
            .order_by(Alert.id.desc())
            .limit(1)
        )
        async with self.database.session() as session:
            row = (await session.execute(statement)).one_or_none()
        return _alert_view(row) if row is not None else None

    async def mark_notified(self, alert_id: int) -> None:
        async with self.database.session() as session, session.begin():
            await session.execute(
                update(Alert).where(Alert.id == alert_id).values(notified_at=utcnow())
            )

    async def acknowledge(self, alert_id: int, moderator: str) -> bool:
        """Open -> acknowledged; False if it was not open."""
        return await self._update_alert(
            alert_id,
            Alert.status == OPEN,
            status=ACKNOWLEDGED,
            acknowledged_at=utcnow(),
            acknowledged_by=moderator,
        )

    async def resolve(self, alert_id: int, moderator: str) -> bool:
        """Open or acknowledged -> resolved; False if it was resolved already."""
        return await self._update_alert(
            alert_id,
            Alert.status != RESOLVED,
            status=RESOLVED,
            resolved_at=utcnow(),
            resolved_by=moderator,
        )

    async def alert(self, alert_id: int) -> AlertView | None:
        async with self.database.session() as session:
            row = (await session.execute(_alert_row(alert_id))).one_or_none()
        return _alert_view(row) if row is not None else None

    async def alerts_for(self, pseudonym: str) -> list[AlertView]:
        """Every alert of one user, newest first."""
        statement = (
            select(*_ALERT_COLUMNS)
            .join(User, User.id == Alert.user_id)
            .where(User.pseudonym == pseudonym)
            .order_by(Alert.id.desc())
        )
        async with self.database.session() as session:
            rows = (await session.execute(statement)).all()
        return [_alert_view(row) for row in rows]

    async def queue(self, limit: int = 200) -> list[AlertView]:
        """Unresolved alerts, most severe first, then oldest first (it has waited longest)."""
        statement = (
            select(*_ALERT_COLUMNS)
            .join(User, User.id == Alert.user_id)
            .where(Alert.status != RESOLVED)
            .order_by(Alert.created_at)
            .limit(limit)
        )
        async with self.database.session() as session:
            rows = (await session.execute(statement)).all()
        views = [_alert_view(row) for row in rows]
        return sorted(views, key=lambda a: (_severity_rank(a), a.created_at))

    async def recently_resolved(self, limit: int = 20) -> list[AlertView]:
        statement = (
            select(*_ALERT_COLUMNS)
            .join(User, User.id == Alert.user_id)
            .where(Alert.status == RESOLVED)
            .order_by(Alert.resolved_at.desc())
            .limit(limit)
        )
        async with self.database.session() as session:
            rows = (await session.execute(statement)).all()
        return [_alert_view(row) for row in rows]

    # -- helpers ---------------------------------------------------------------------------

    async def _update_user(self, pseudonym: str, condition: Any, **values: Any) -> bool:
        statement = update(User).where(User.pseudonym == pseudonym, condition).values(**values)
        async with self.database.session() as session, session.begin():
            return _rowcount(await session.execute(statement)) > 0

    async def _update_alert(self, alert_id: int, condition: Any, **values: Any) -> bool:
        statement = update(Alert).where(Alert.id == alert_id, condition).values(**values)
        async with self.database.session() as session, session.begin():
            return _rowcount(await session.execute(statement)) > 0


def _severity_rank(alert: AlertView) -> int:
    return SEVERITIES.index(alert.severity) if alert.severity in SEVERITIES else len(SEVERITIES)


def _alert_view(row: Any) -> AlertView:
    return AlertView(
        id=row.id,
        pseudonym=row.pseudonym,
        kind=row.kind,
        severity=row.severity,
        status=row.status,
        reasons=tuple(row.reasons),
        created_at=row.created_at,
        notified_at=row.notified_at,
        escalated_at=row.escalated_at,
        acknowledged_at=row.acknowledged_at,
        acknowledged_by=row.acknowledged_by,
        resolved_at=row.resolved_at,
        resolved_by=row.resolved_by,
        risk_level=row.risk_level,
        handling=row.handling,
        handled_by=row.handled_by,
        in_crisis=row.in_crisis,
        muted=row.muted,
    )


def _rowcount(result: Result[Any]) -> int:
    assert isinstance(result, CursorResult)
    return result.rowcount
