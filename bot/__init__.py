"""Defector Voices: counter-messaging against Islamic State recruitment on Telegram."""

__version__ = "0.1.0"
