"""A bounded cache of rail scores, for texts a rail sees again.

Every request of a conversation carries its earlier turns, and every untrusted turn is screened
(not just the last), so turn n of a chat re-screens turns 1..n-1; tool results and retrieved
chunks come back the same way. The injection score is a pure function of the text, its mode and
the loaded detector, so a repeat costs a dictionary look-up instead of the n-gram stages and,
where it reads the text, a MiniLM pass (tens of ms on two CPU cores).

Keys are digests, never the text: a screened prompt is not kept in memory. They include the
caller, so one tenant cannot learn from a fast answer that another sent the same text.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from typing import Generic, TypeVar

DEFAULT_SIZE = 4096  # entries of ~200 bytes each (key, score, flag, order): under a MB

V = TypeVar("V")


def cache_key(caller: str, text: str, *mode: object) -> bytes:
    h = hashlib.blake2b(digest_size=16)
    for part in (caller, repr(mode), text):
        data = part.encode("utf-8", "surrogatepass")
        h.update(len(data).to_bytes(8, "little"))  # length-prefixed: no two splits give one key
        h.update(data)
    return h.digest()


class ScoreCache(Generic[V]):
    """Least recently used scores (what a rail keeps of a text: the injection rail, its score and
    whether a decoded payload made it) by ``cache_key``; safe to share between threads (the rails
    score in worker threads)."""

    def __init__(self, size: int = DEFAULT_SIZE) -> None:
        if size < 1:
            raise ValueError(f"a score cache holds at least one entry, not {size}")
        self.size = size
        self._scores: OrderedDict[bytes, V] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: bytes) -> V | None:
        with self._lock:
            score = self._scores.get(key)
            if score is None:
                self.misses += 1
                return None
            self._scores.move_to_end(key)
            self.hits += 1
            return score

    def put(self, key: bytes, score: V) -> None:
        with self._lock:
            self._scores[key] = score
            self._scores.move_to_end(key)
            while len(self._scores) > self.size:
                self._scores.popitem(last=False)

    def __len__(self) -> int:
        return len(self._scores)
