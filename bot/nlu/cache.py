"""A bounded in-memory cache of the model's answers, for texts many users send alike.

Campaign traffic repeats itself ("hi", "who are you", a slogan that goes around), and the NLU
server is the bottleneck of the pipeline; the same text gets the same answer from the same
model, so a hit saves a whole round trip. Keyed by the text with whitespace collapsed and
Unicode in NFC form: the model splits on whitespace, so that key gives the same answer. Case is
kept, since the model's lexical features see it. Never persisted: the cache dies with the
process, and it holds texts only, never who sent them.
"""

from __future__ import annotations

import unicodedata
from collections import OrderedDict
from typing import Any


def cache_key(text: str) -> str:
    return " ".join(unicodedata.normalize("NFC", text).split())


class ParseCache:
    """Least-recently-used map from normalised text to the model's parse JSON."""

    def __init__(self, size: int) -> None:
        if size < 0:
            raise ValueError("the cache size must be 0 (off) or more")
        self.size = size
        self.hits = 0
        self.misses = 0
        self._entries: OrderedDict[str, dict[str, Any]] = OrderedDict()

    def get(self, text: str) -> dict[str, Any] | None:
        if self.size == 0:
            return None
        key = cache_key(text)
        found = self._entries.get(key)
        if found is None:
            self.misses += 1
            return None
        self._entries.move_to_end(key)
        self.hits += 1
        return found

    def put(self, text: str, raw: dict[str, Any]) -> None:
        if self.size == 0:
            return
        key = cache_key(text)
        self._entries[key] = raw
        self._entries.move_to_end(key)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        self._entries.clear()
