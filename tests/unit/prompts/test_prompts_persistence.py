"""Restart safety, migrations and SQLite durability settings."""

from __future__ import annotations

import sqlalchemy as sa
from prompt_test_helpers import OpenRegistry, make_spec

from prompts.db import create_engine
from prompts.migrations import MIGRATIONS, migrate


def test_reopening_loses_nothing(db_url: str, open_registry: OpenRegistry) -> None:
    first = open_registry(db_url)
    v1 = first.push(make_spec(system="v1"), actor="alice").version
    v2 = first.push(make_spec(system="v2"), actor="alice").version
    first.move_label("greet", "production", 1, actor="alice")
    first.move_label("greet", "production", 2, actor="bob", reason="promote")
    history = first.history("greet")
    first.close()

    reopened = open_registry(db_url)

    assert reopened.get("greet", version=1) == v1
    assert reopened.get("greet", version=2) == v2
    assert reopened.labels("greet") == {"production": 2}
    assert reopened.history("greet") == history
    assert reopened.push(make_spec(system="v1"), actor="carol").created is False
    assert reopened.push(make_spec(system="v3"), actor="carol").version.version == 3
    assert reopened.rollback("greet", "production", actor="carol").version == 1


def test_migrations_are_recorded_once(db_url: str, open_registry: OpenRegistry) -> None:
    open_registry(db_url).close()
    open_registry(db_url).close()
    engine = create_engine(db_url)
    try:
        assert migrate(engine) == []
        with engine.connect() as conn:
            rows = conn.execute(sa.text(
                "SELECT component, version FROM schema_migrations ORDER BY version"
            )).all()
        assert [tuple(r) for r in rows] == [("prompts", m.version) for m in MIGRATIONS]
    finally:
        engine.dispose()


def test_fresh_database_is_migrated_on_first_open(sqlite_url: str) -> None:
    engine = create_engine(sqlite_url)
    try:
        assert migrate(engine) == [m.version for m in MIGRATIONS]
        assert migrate(engine) == []
        tables = set(sa.inspect(engine).get_table_names())
        assert {"prompts", "prompt_versions", "prompt_labels", "prompt_label_history",
                "prompt_registry_state", "schema_migrations"} <= tables
    finally:
        engine.dispose()


def test_sqlite_runs_in_wal_with_full_sync(sqlite_url: str) -> None:
    engine = create_engine(sqlite_url, busy_timeout_ms=12_345)
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 12_345
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    finally:
        engine.dispose()
