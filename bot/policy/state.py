"""What the bot remembers about one user between messages (keyed by pseudonym, never identity)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class UserState:
    """The conversation memory the policy needs, persisted by `bot.storage`.

    `shown_testimonies` lists testimony ids already sent, so no story repeats until every
    story for that claim has been shown. `in_crisis` persists across sessions: once set, the
    user gets no counter-message until a moderator clears it (saving never lowers it).
    `risk_signals` counts the risk and crisis intents and stated plans that
    `bot.safety.risk.assess` turns into `risk_level` and `risk_reasons` when the state is saved.
    `handling` is who answers: "bot", "waiting" for a person, or "person" (a moderator took
    over); the bot never writes it through `save_user`, only through the takeover steps.
    """

    pseudonym: str
    country: str | None = None
    campaign: str | None = None
    in_crisis: bool = False
    human_requested: bool = False
    last_claim: str | None = None
    last_reply_kind: str | None = None
    shown_testimonies: list[str] = field(default_factory=list)
    risk_signals: dict[str, int] = field(default_factory=dict)
    risk_level: str = "none"
    risk_reasons: list[str] = field(default_factory=list)
    handling: str = "bot"
    muted: bool = False
