"""The Telegram front end (python-telegram-bot 22): handlers, ordering, application set-up."""
