"""What operators watch: Prometheus metrics, structured logs, optional Sentry.

None of it carries what a user wrote or who they are: metrics count kinds and intents, logs
carry no user text or Telegram ids, and Sentry events are scrubbed before they leave.
"""
