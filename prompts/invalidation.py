"""Cross-replica cache invalidation: a polled DB generation counter and Redis pub/sub.

Staleness bounds (time from a committed label move to other replicas serving it):
* generation polling: at most ``poll_interval_s`` plus one database round trip;
* Redis: one publish/deliver round trip. Pub/sub is at-most-once, so every
  (re)subscription flushes the whole cache, and polling stays on as the backstop
  for messages lost while a subscriber was connected but Redis dropped them.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)


class GenerationPoller:
    def __init__(self, read: Callable[[], int], on_change: Callable[[], None], interval_s: float) -> None:
        self._read = read
        self._on_change = on_change
        self._interval_s = interval_s
        self._lock = threading.Lock()
        self._last = read()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if interval_s > 0:
            self._thread = threading.Thread(target=self._run, name="prompts-generation-poll", daemon=True)
            self._thread.start()

    def check(self) -> bool:
        """Read the generation now; flush the cache if it moved. True if it did."""
        with self._lock:
            current = self._read()
            if current == self._last:
                return False
            self._last = current
        self._on_change()
        return True

    def _run(self) -> None:
        while not self._stop.wait(self._interval_s):
            try:
                self.check()
            except Exception:  # keep polling through transient DB outages
                log.warning("prompt registry: generation poll failed", exc_info=True)

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
