"""The one way back to a user: their Telegram chat id, kept only encrypted.

A moderator's message and the "nobody picked up your request" resources must reach a user
after their last message, so the bot keeps the chat id. It is sealed with Fernet (AES-128-CBC
and HMAC-SHA256, authenticated) under a key derived from `CONTACT_SECRET`, which lives apart
from the database (`data/contact.secret` or the environment): a copy of the database alone
names no one. The pseudonym stays the only key; /forget and retention delete the sealed id
with the user. Never log a chat id, sealed or open.
"""

from __future__ import annotations

import base64

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_INFO = b"defector-voices contact v1"


class ContactUnreadable(ValueError):
    """A sealed contact that this key cannot open (another secret, or tampered with)."""


class ContactSealer:
    """Seals and opens chat ids with a key derived from the contact secret."""

    def __init__(self, secret: str) -> None:
        if len(secret) < 32:
            raise ValueError("the contact secret must be at least 32 characters")
        key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO).derive(
            secret.encode()
        )
        self._fernet = Fernet(base64.urlsafe_b64encode(key))

    def seal(self, chat_id: int) -> str:
        """An encrypted, authenticated token for `chat_id` (different every call)."""
        return self._fernet.encrypt(str(chat_id).encode()).decode("ascii")

    def open(self, sealed: str) -> int:
        try:
            return int(self._fernet.decrypt(sealed.encode("ascii")).decode())
        except (InvalidToken, ValueError) as exc:
            raise ContactUnreadable("the stored contact cannot be decrypted") from exc
