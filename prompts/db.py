"""Engine creation and retrying write transactions for SQLite and PostgreSQL."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import IntegrityError, OperationalError

from prompts.errors import StorageBusy

log = logging.getLogger(__name__)

T = TypeVar("T")

_WRITE_OPTION = "prompts_write"
# PostgreSQL SQLSTATEs worth retrying: serialization_failure, deadlock_detected.
_PG_RETRY_STATES = {"40001", "40P01"}


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def is_postgres(engine: Engine) -> bool:
    return engine.dialect.name == "postgresql"


def _install_sqlite_hooks(engine: Engine, busy_timeout_ms: int) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Take transaction control away from the sqlite3 module so that we can
        # issue BEGIN IMMEDIATE ourselves (its implicit BEGIN is DEFERRED).
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        # busy_timeout first: the journal_mode switch below may itself wait on
        # another process creating the same file.
        cur.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cur.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode may lose the last commits on power loss; a push
        # that returned must survive, so FULL.
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # IMMEDIATE takes the write lock up front: two writers that both began
        # DEFERRED and then try to upgrade get SQLITE_BUSY without the busy
        # handler being consulted, which is exactly the lost-push race.
        if conn.get_execution_options().get(_WRITE_OPTION):
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            conn.exec_driver_sql("BEGIN")


def create_engine(url: str, *, busy_timeout_ms: int = 30_000, pool_size: int = 5) -> Engine:
    """Engine for ``sqlite:///path`` or ``postgresql+psycopg://...``."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        database = parsed.database
        if not database or database == ":memory:" or database.startswith("file:"):
            raise ValueError("the prompt registry needs a SQLite file path (sqlite:///path/to/file.db)")
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(
            parsed,
            connect_args={"timeout": busy_timeout_ms / 1000, "check_same_thread": False},
            pool_size=pool_size,
            max_overflow=20,
        )
        _install_sqlite_hooks(engine, busy_timeout_ms)
        return engine
    if backend == "postgresql":
        return sa.create_engine(parsed, pool_pre_ping=True, pool_size=pool_size, max_overflow=20)
    raise ValueError(f"unsupported database URL scheme {parsed.drivername!r}: use sqlite:/// or postgresql+psycopg://")


def _retryable(exc: Exception) -> bool:
    if isinstance(exc, IntegrityError):
        # Safety net behind the row lock / IMMEDIATE: a unique-constraint race
        # is resolved by re-reading in a fresh transaction. Other integrity
        # errors are bugs and must surface at once.
        text = str(exc.orig).lower() if exc.orig is not None else ""
        return getattr(exc.orig, "sqlstate", None) == "23505" or "unique constraint failed" in text
    if isinstance(exc, OperationalError):
        text = str(exc.orig).lower() if exc.orig is not None else str(exc).lower()
        if "database is locked" in text or "database is busy" in text:
            return True
        return getattr(exc.orig, "sqlstate", None) in _PG_RETRY_STATES
    return False


def write_transaction(engine: Engine, work: Callable[[Connection], T], *, attempts: int = 8) -> T:
    """Run ``work`` in a write transaction, retrying lock/serialisation failures.

    The whole function is retried, so ``work`` must do all its reads inside the
    transaction it is given.
    """
    delay = 0.02
    for attempt in range(1, attempts + 1):
        try:
            with engine.connect().execution_options(**{_WRITE_OPTION: True}) as conn, conn.begin():
                return work(conn)
        except (OperationalError, IntegrityError) as exc:
            if not _retryable(exc):
                raise
            if attempt == attempts:
                raise StorageBusy(f"database stayed busy after {attempts} attempts: {exc.orig}") from exc
            log.debug("retrying prompt registry write after %s (attempt %d)", exc.orig, attempt)
            time.sleep(delay * (1 + random.random()))
            delay = min(delay * 2, 1.0)
    raise AssertionError("unreachable")

