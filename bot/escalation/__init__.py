"""Escalation: risk alerts for the team, a person taking over a conversation, floods.

- `service.Escalation`: alerts raised after each turn and posted to the moderators' Telegram
  group; moderator actions (take over, message, hand back); requests nobody answered.
- `contact.ContactSealer`: the encrypted chat id that lets a moderator's message reach a user.
- The risk rules are in `bot.safety.risk`, the queries in `bot.storage.escalation`, whether
  the bot may answer at all in `bot.policy.decision` (`_gate`), and the moderators' pages
  in `bot.dashboard.escalation_views`.
"""
