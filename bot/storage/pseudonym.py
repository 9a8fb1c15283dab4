"""The only link between a Telegram account and what the bot stores about it."""

from __future__ import annotations

import hashlib
import hmac


def pseudonymise(telegram_id: int, secret: str) -> str:
    """Return the HMAC-SHA256 (hex, 64 characters) of a Telegram user id under `secret`.

    A keyed hash, not a plain one: Telegram ids are small integers, so an unkeyed hash could
    be reversed by hashing every id. Without the secret a leaked database names no one; with
    it, the bot recognises a returning user. The secret must never change while data exists.
    """
    if not secret:
        raise ValueError("the pseudonym secret must not be empty")
    return hmac.new(secret.encode(), str(telegram_id).encode(), hashlib.sha256).hexdigest()
