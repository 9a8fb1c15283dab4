"""What the bot remembers about one user between messages (keyed by pseudonym, never identity)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class UserState:
    """The conversation memory the policy needs, persisted by `bot.storage`.

    `shown_testimonies` lists testimony ids already sent, so no story repeats until every
    story for that claim has been shown. `in_crisis` persists across sessions: once set, the
    user gets no counter-message until a moderator clears it.
    """

    pseudonym: str
    country: str | None = None
    campaign: str | None = None
    in_crisis: bool = False
    human_requested: bool = False
    last_claim: str | None = None
    last_reply_kind: str | None = None
    shown_testimonies: list[str] = field(default_factory=list)
