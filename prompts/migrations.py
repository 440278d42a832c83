"""A tiny migrations mechanism: ordered functions recorded in schema_migrations.

Each migration declares its own DDL instead of importing prompts.schema:
schema.py describes the *current* tables, and a migration that read it would
silently change meaning once a later migration alters a table.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from prompts.db import write_transaction

COMPONENT = "prompts"

_migrations_md = sa.MetaData()
schema_migrations = sa.Table(
    "schema_migrations",
    _migrations_md,
    # Shared table: other components can record their own migrations beside ours.
    sa.Column("component", sa.String(64), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("name", sa.String(128), nullable=False),
    sa.Column("applied_at", sa.DateTime(timezone=True), nullable=False),
)


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    apply: Callable[[Connection], None]


def _m001_initial(conn: Connection) -> None:
    md = sa.MetaData()
    ts = sa.DateTime(timezone=True)
    sa.Table(
        "prompts", md,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(128), nullable=False, unique=True),
        sa.Column("latest_version", sa.Integer, nullable=False),
        sa.Column("created_at", ts, nullable=False),
        sa.Column("updated_at", ts, nullable=False),
    )
    sa.Table(
        "prompt_versions", md,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("prompt_id", sa.Integer, sa.ForeignKey("prompts.id"), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("content", sa.Text, nullable=False),
        sa.Column("created_at", ts, nullable=False),
        sa.Column("created_by", sa.String(256), nullable=False),
        sa.Column("note", sa.Text, nullable=True),
        sa.UniqueConstraint("prompt_id", "version", name="uq_prompt_versions_version"),
        sa.UniqueConstraint("prompt_id", "content_hash", name="uq_prompt_versions_hash"),
    )
    sa.Table(
        "prompt_labels", md,
        sa.Column("prompt_id", sa.Integer, sa.ForeignKey("prompts.id"), primary_key=True),
        sa.Column("label", sa.String(128), primary_key=True),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("updated_at", ts, nullable=False),
        sa.Column("updated_by", sa.String(256), nullable=False),
        sa.ForeignKeyConstraint(
            ["prompt_id", "version"], ["prompt_versions.prompt_id", "prompt_versions.version"],
            name="fk_prompt_labels_version",
        ),
    )
    sa.Table(
        "prompt_label_history", md,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("prompt_id", sa.Integer, sa.ForeignKey("prompts.id"), nullable=False),
        sa.Column("label", sa.String(128), nullable=False),
        sa.Column("from_version", sa.Integer, nullable=True),
        sa.Column("to_version", sa.Integer, nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("actor", sa.String(256), nullable=False),
        sa.Column("reason", sa.Text, nullable=True),
        sa.Column("at", ts, nullable=False),
        sa.Index("ix_prompt_label_history_label", "prompt_id", "label", "id"),
    )
    state = sa.Table(
        "prompt_registry_state", md,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("generation", sa.BigInteger, nullable=False),
    )
    md.create_all(conn)
    conn.execute(state.insert().values(id=1, generation=0))


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "initial prompt registry tables", _m001_initial),
)


def applied_versions(conn: Connection, component: str) -> set[int]:
    if not sa.inspect(conn).has_table("schema_migrations"):
        return set()
    rows = conn.execute(sa.select(schema_migrations.c.version).where(schema_migrations.c.component == component))
    return {r[0] for r in rows}


def run_migrations(engine: Engine, component: str, migrations: Sequence[Migration]) -> list[int]:
    """Apply `component`'s pending migrations; returns the versions applied by this call.

    Shared by every component that keeps tables in the gateway's database (prompts, governance,
    fine-tuning): one `schema_migrations` table, one row per component and version.
    """
    wanted = {m.version for m in migrations}
    # Cheap unlocked check first so that a normal open takes no write lock.
    with engine.connect() as conn:
        if wanted <= applied_versions(conn, component):
            return []

    def locked(conn: Connection) -> list[int]:
        if conn.dialect.name == "postgresql":
            # Transaction-scoped advisory lock, keyed per schema: two processes opening the same
            # fresh database would otherwise race on CREATE TABLE (even IF NOT EXISTS fails on pg_type).
            conn.execute(
                sa.text("SELECT pg_advisory_xact_lock(hashtext(:k || coalesce(current_schema(), '')))"),
                {"k": f"llmops.{component}.migrate:"},
            )
        # On SQLite the caller's BEGIN IMMEDIATE already serialises us.
        schema_migrations.create(conn, checkfirst=True)
        done = applied_versions(conn, component)
        applied: list[int] = []
        for migration in migrations:
            if migration.version in done:
                continue
            migration.apply(conn)
            conn.execute(schema_migrations.insert().values(
                component=component, version=migration.version, name=migration.name, applied_at=datetime.now(UTC),
            ))
            applied.append(migration.version)
        return applied

    # All pending migrations run in one transaction (DDL is transactional on both backends), so a
    # crash never leaves a half-applied migration.
    return write_transaction(engine, locked)


def migrate(engine: Engine) -> list[int]:
    """Apply the prompt registry's pending migrations."""
    return run_migrations(engine, COMPONENT, MIGRATIONS)
