"""Shared helpers for the governance tests (a plain module, not conftest)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from sqlalchemy.engine import Engine

from gateway.governance.keystore import KeyRepository
from gateway.governance.migrations import migrate
from prompts.db import create_engine


class FakeClock:
    """A clock that moves only when told to."""

    def __init__(self, start: float = 1_767_225_600.0) -> None:  # 2026-01-01T00:00:00Z
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def wait_until(predicate: Callable[[], bool], timeout: float = 15.0, what: str = "condition") -> None:
    """Wait for an asynchronous effect; the deadline only guards against hangs."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)


@contextmanager
def opened(url: str) -> Iterator[Engine]:
    engine = create_engine(url, busy_timeout_ms=5000)
    migrate(engine)
    try:
        yield engine
    finally:
        engine.dispose()


@contextmanager
def repository(url: str) -> Iterator[KeyRepository]:
    with opened(url) as engine:
        yield KeyRepository(engine)
