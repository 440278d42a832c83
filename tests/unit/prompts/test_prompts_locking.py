"""SQLite lock handling: 'database is locked' is retried, then reported as StorageBusy."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest
from prompt_test_helpers import OpenRegistry, make_spec

from prompts.errors import StorageBusy


def _hold_write_lock(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("BEGIN IMMEDIATE")
    return conn


def test_push_waits_out_a_briefly_held_write_lock(sqlite_url: str, tmp_path: Path, open_registry: OpenRegistry) -> None:
    registry = open_registry(sqlite_url, busy_timeout_ms=50)
    blocker = _hold_write_lock(tmp_path / "registry.db")
    # Released well inside the retry budget (several seconds of backoff).
    timer = threading.Timer(0.2, blocker.rollback)
    timer.start()
    try:
        assert registry.push(make_spec(), actor="a").version.version == 1
    finally:
        timer.join()
        blocker.close()


def test_a_lock_that_never_clears_is_storage_busy(sqlite_url: str, tmp_path: Path, open_registry: OpenRegistry) -> None:
    registry = open_registry(sqlite_url, busy_timeout_ms=10)
    blocker = _hold_write_lock(tmp_path / "registry.db")
    try:
        with pytest.raises(StorageBusy, match="database is locked") as info:
            registry.push(make_spec(), actor="a")
        assert info.value.http_status == 503
    finally:
        blocker.rollback()
        blocker.close()
    assert registry.push(make_spec(), actor="a").created
