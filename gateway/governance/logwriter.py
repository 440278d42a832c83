"""A bounded queue drained by one writer thread, in batches: the request path never waits on a database.

`put` only appends under a lock and returns: True when the item is accepted (from then on it is
written, or on a stop with the database down, spilled to a file), False when the queue is full
(the item is dropped and counted). `close` drains everything accepted before it returns.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

from sqlalchemy.exc import DBAPIError, OperationalError

from prompts.errors import StorageBusy

log = logging.getLogger(__name__)

T = TypeVar("T")


def transient(exc: Exception) -> bool:
    """Worth retrying the same batch: the database is locked, restarting or unreachable."""
    if isinstance(exc, StorageBusy | OperationalError):  # StorageBusy: write_transaction gave up
        return True
    return isinstance(exc, DBAPIError) and exc.connection_invalidated


class LogWriter(Generic[T]):
    def __init__(
        self,
        write: Callable[[Sequence[T]], None],
        *,
        maxsize: int,
        batch_size: int,
        flush_interval_s: float,
        spill: Callable[[Sequence[T]], None],
        periodic: Callable[[], None] | None = None,
        period_s: float = 3600.0,
        on_written: Callable[[int], None] | None = None,
        on_dropped: Callable[[int], None] | None = None,
        name: str = "request-log-writer",
    ) -> None:
        self._write = write
        self._spill = spill
        self._periodic = periodic
        self._period_s = period_s
        self._on_written = on_written
        self._on_dropped = on_dropped
        self._maxsize = maxsize
        self._batch_size = batch_size
        self._flush_interval_s = flush_interval_s
        self._items: deque[T] = deque()
        self._cond = threading.Condition()
        self._accepted = 0
        self._done = 0
        self._stopping = False
        self._hurry = False
        self._give_up_at = float("inf")
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def put(self, item: T) -> bool:
        with self._cond:
            if self._stopping or len(self._items) >= self._maxsize:
                dropped = True
            else:
                dropped = False
                self._items.append(item)
                self._accepted += 1
                if len(self._items) >= self._batch_size:
                    self._cond.notify_all()
        if dropped and self._on_dropped is not None:
            self._on_dropped(1)
        return not dropped

    def qsize(self) -> int:
        return len(self._items)

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until everything accepted so far is written; False on timeout."""
        with self._cond:
            target = self._accepted
            self._hurry = True  # do not let a partial batch sit out its interval
            self._cond.notify_all()
            return self._cond.wait_for(lambda: self._done >= target, timeout)

    def close(self, timeout: float = 30.0) -> None:
        """Stop accepting, write out everything accepted; spill to a file if the database stays down."""
        with self._cond:
            if self._stopping:
                return
            self._stopping = True
            # Retries stop a little before the deadline so that the spill still fits in it.
            self._give_up_at = time.monotonic() + timeout * 0.8
            self._cond.notify_all()
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.error("request log: writer still busy after %.0fs; %d records may be lost", timeout, self.qsize())

    def _take(self) -> list[T]:
        with self._cond:
            if not self._items and not self._stopping:
                self._cond.wait(min(self._period_s, 1.0))
            if self._items and not self._hurry:
                # Under load batches fill while the previous one is written; under light load
                # a record waits at most one interval.
                self._cond.wait_for(
                    lambda: len(self._items) >= self._batch_size or self._stopping or self._hurry,
                    self._flush_interval_s,
                )
            n = min(self._batch_size, len(self._items))
            batch = [self._items.popleft() for _ in range(n)]
            if not self._items:
                self._hurry = False
            return batch

    def _run(self) -> None:
        next_periodic = time.monotonic() + self._period_s
        while True:
            batch = self._take()
            if batch:
                self._store(batch)
                with self._cond:
                    self._done += len(batch)
                    self._cond.notify_all()
            elif self._stopping:
                return
            if self._periodic is not None and time.monotonic() >= next_periodic and not self._stopping:
                next_periodic = time.monotonic() + self._period_s
                try:
                    self._periodic()
                except Exception:
                    log.warning("request log: periodic task failed", exc_info=True)

    def _store(self, batch: list[T]) -> None:
        delay = 0.05
        while True:
            try:
                self._write(batch)
                self._count(self._on_written, len(batch))
                return
            except Exception as exc:
                if not transient(exc):
                    self._store_one_by_one(batch)
                    return
                if time.monotonic() >= self._give_up_at:
                    self._spill_safely(batch)
                    return
                log.warning("request log: database unavailable (%s); retrying in %.2fs", exc, delay)
            time.sleep(min(delay, max(0.0, self._give_up_at - time.monotonic())))
            delay = min(delay * 2, 5.0)

    def _store_one_by_one(self, batch: list[T]) -> None:
        # One bad record (say, a value the database rejects) must not hold back its batch forever.
        for item in batch:
            try:
                self._write([item])
                self._count(self._on_written, 1)
            except Exception as exc:
                if transient(exc):
                    self._spill_safely([item])
                else:
                    log.error("request log: dropping a record the database rejects: %s", exc)
                    self._count(self._on_dropped, 1)

    def _spill_safely(self, batch: Sequence[T]) -> None:
        try:
            self._spill(batch)
        except Exception:
            log.exception("request log: could not spill %d records", len(batch))
            self._count(self._on_dropped, len(batch))

    @staticmethod
    def _count(callback: Callable[[int], None] | None, n: int) -> None:
        if callback is not None:
            callback(n)
