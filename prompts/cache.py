"""In-process read cache: label resolutions and compiled versions."""

from __future__ import annotations

import threading

from prompts.rendering import CompiledPrompt


class RegistryCache:
    """Label -> version map (invalidated on moves) and compiled versions (immutable).

    Reads take no lock: single dict lookups are atomic under the GIL, and the
    warm path is what the gateway pays on every chat request.

    Fills are guarded by an epoch: a resolution read from the database before
    an invalidation must not be stored after it, or the stale value would
    outlive the invalidation that was meant to remove it.
    """

    def __init__(self, max_compiled: int = 1024) -> None:
        self._labels: dict[str, dict[str, int]] = {}
        self._compiled: dict[tuple[str, int], CompiledPrompt] = {}
        self._max_compiled = max_compiled
        self._epoch = 0
        self._lock = threading.Lock()

    @property
    def epoch(self) -> int:
        return self._epoch

    def label(self, name: str, label: str) -> int | None:
        by_label = self._labels.get(name)
        return by_label.get(label) if by_label is not None else None

    def put_label(self, name: str, label: str, version: int, epoch: int) -> None:
        with self._lock:
            if epoch == self._epoch:
                self._labels.setdefault(name, {})[label] = version

    def invalidate(self, name: str | None = None) -> None:
        """Forget label resolutions of one prompt, or of all prompts."""
        with self._lock:
            self._epoch += 1
            if name is None:
                self._labels = {}
            else:
                self._labels.pop(name, None)

    def compiled(self, name: str, version: int) -> CompiledPrompt | None:
        return self._compiled.get((name, version))

    def put_compiled(self, compiled: CompiledPrompt) -> None:
        key = (compiled.version.name, compiled.version.version)
        with self._lock:
            if key not in self._compiled and len(self._compiled) >= self._max_compiled:
                # FIFO eviction: LRU would need a write on every hit.
                self._compiled.pop(next(iter(self._compiled)))
            self._compiled[key] = compiled
