"""What one conversation turn reads from the database at its start and writes at its end.

A turn used to talk to the database seven or eight times (claim the update, load the user,
record the incoming message, count the recent ones, record the reply, save the state, check
who handles the user), committing four or five times. Measured with `make bench`, those
round trips and the ORM work around them were most of the bot's own CPU time per message
and most of the latency the bot adds to the NLU call. Now a turn makes one read
(`Store.begin_turn`) and one transaction (`Store.finish_turn`), which the write buffer can
also hold as one entry while the database is unavailable. The reply leaves between the two
(`Conversation.handle`), so the commit's wait for the disk is not part of the reply's
latency; the update journal covers a crash in between (`bot.telegram.journal`). A text's read
runs while the NLU server classifies the text. Turns that finish while a commit runs are
committed together after it (a group commit), so under load one transaction and one flush to
disk serve many turns.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from bot.nlu.understanding import Understanding
from bot.policy.decision import CALM, FLOOD_AGAIN, FLOOD_FIRST
from bot.policy.state import UserState


def flood_status(recent_incoming: int, cooldown_noted: bool, *, limit: int) -> str:
    """CALM, FLOOD_FIRST (over the limit, no cooldown note yet) or FLOOD_AGAIN (note sent).

    `recent_incoming` counts the user's incoming messages in the flood window, the one being
    answered included.
    """
    if recent_incoming <= limit:
        return CALM
    return FLOOD_AGAIN if cooldown_noted else FLOOD_FIRST


@dataclass(frozen=True)
class TurnStart:
    """The user's state and what the flood check needs, read at once."""

    state: UserState
    recent_incoming: int = 0
    """Incoming messages stored in the flood window (the one being answered is not yet)."""
    cooldown_noted: bool = False
    """A cooldown note was sent in the flood window."""
    answered_before: bool = False
    """The update was claimed by an earlier delivery (Telegram sent it twice)."""


@dataclass(frozen=True)
class MessageRecord:
    """One message of a turn, in or out, as it is stored."""

    direction: str
    kind: str
    text: str | None
    created_at: datetime
    understanding: Understanding | None = None
    content_ids: Sequence[str] = ()
    flags: Sequence[str] = ()
    update_id: int | None = None
    is_test: bool = False
    write_key: str | None = None


@dataclass(frozen=True)
class TurnRecord:
    """Everything a turn writes, in one transaction.

    `state` is None for a turn that only claims its update (/forget deletes the rest).
    `recovered`: the update comes back from the update journal after a crash, so the killed
    run may have claimed it already; it is answered all the same, and its messages' write
    keys keep them single. `replay`: the write buffer writes the turn after an outage, when
    a claim already stored is expected.
    """

    pseudonym: str
    messages: tuple[MessageRecord, ...] = ()
    state: UserState | None = None
    contact: str | None = None
    update_id: int | None = None
    recovered: bool = False
    replay: bool = False


@dataclass(frozen=True)
class TurnOutcome:
    """What the database said at the end of the turn."""

    duplicate: bool = False
    """The update was claimed by another delivery in the meantime: nothing was written."""
