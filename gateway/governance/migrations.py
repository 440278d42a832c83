"""Governance tables, as ordered migrations recorded in the shared `schema_migrations` table.

Each migration freezes its own DDL (see prompts.migrations for why); `prompts.migrations.run_migrations`
applies them, as it does every component's.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from prompts.migrations import Migration, run_migrations

COMPONENT = "governance"


def _id() -> sa.types.TypeEngine[int]:
    # SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL gets a BIGSERIAL.
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _m001_initial(conn: Connection) -> None:
    md = sa.MetaData()
    ts = sa.DateTime(timezone=True)
    sa.Table(
        "virtual_keys", md,
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("owner", sa.String(256), nullable=True),
        sa.Column("team", sa.String(128), nullable=True, index=True),
        sa.Column("tenant", sa.String(128), nullable=True),
        sa.Column("models", sa.Text, nullable=True),
        sa.Column("routes", sa.Text, nullable=True),
        sa.Column("rails_policy", sa.String(128), nullable=True),
        sa.Column("rpm", sa.Integer, nullable=True),
        sa.Column("tpm", sa.Integer, nullable=True),
        sa.Column("budget_amount", sa.Float, nullable=True),
        sa.Column("budget_period", sa.String(8), nullable=True),
        sa.Column("expires_at", ts, nullable=True),
        sa.Column("metadata", sa.Text, nullable=False),
        sa.Column("created_at", ts, nullable=False),
        sa.Column("created_by", sa.String(256), nullable=False),
        sa.Column("rotated_at", ts, nullable=True),
        sa.Column("revoked_at", ts, nullable=True),
    )
    sa.Table(
        "admin_audit", md,
        sa.Column("id", _id(), primary_key=True, autoincrement=True),
        sa.Column("at", ts, nullable=False, index=True),
        sa.Column("actor", sa.String(256), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("target_id", sa.String(128), nullable=True, index=True),
        sa.Column("detail", sa.Text, nullable=False),
    )
    sa.Table(
        "request_log", md,
        sa.Column("id", _id(), primary_key=True, autoincrement=True),
        sa.Column("request_id", sa.String(128), nullable=False),
        sa.Column("created_at", ts, nullable=False, index=True),
        sa.Column("endpoint", sa.String(128), nullable=False),
        sa.Column("status", sa.Integer, nullable=False),
        sa.Column("latency_ms", sa.Float, nullable=False),
        sa.Column("key_id", sa.String(64), nullable=True),
        sa.Column("team", sa.String(128), nullable=True),
        sa.Column("model", sa.String(128), nullable=True),
        sa.Column("prompt_name", sa.String(128), nullable=True),
        sa.Column("prompt_version", sa.Integer, nullable=True),
        sa.Column("rails", sa.Text, nullable=False),
        sa.Column("input_tokens", sa.Integer, nullable=False),
        sa.Column("output_tokens", sa.Integer, nullable=False),
        sa.Column("cost", sa.Float, nullable=False),
        sa.Column("ttft_ms", sa.Float, nullable=True),
        sa.Column("stream", sa.Boolean, nullable=False),
        sa.Column("error_code", sa.String(64), nullable=True),
        sa.Column("messages", sa.Text, nullable=True),
        sa.Column("answer", sa.Text, nullable=True),
        sa.Index("ix_request_log_key", "key_id", "id"),
        sa.Index("ix_request_log_model", "model", "id"),
        sa.Index("ix_request_log_prompt", "prompt_name", "id"),
    )
    sa.Table(
        # Spend per subject ("key:<id>", "team:<name>") and UTC day. Kept apart from request_log
        # so that retention never shortens a monthly or total budget.
        "usage_daily", md,
        sa.Column("subject", sa.String(200), primary_key=True),
        sa.Column("day", sa.String(10), primary_key=True),
        sa.Column("tokens", sa.BigInteger, nullable=False),
        sa.Column("cost_nano", sa.BigInteger, nullable=False),
    )
    md.create_all(conn)


def _m002_completion_id(conn: Connection) -> None:
    # The answer's own id (`chatcmpl-...`, `cmpl-...`): what a client holds when it reports a problem.
    conn.execute(sa.text("ALTER TABLE request_log ADD COLUMN completion_id VARCHAR(64)"))
    conn.execute(sa.text("CREATE INDEX ix_request_log_completion ON request_log (completion_id)"))
    conn.execute(sa.text("CREATE INDEX ix_request_log_request ON request_log (request_id)"))


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "virtual keys, audit, request log, usage", _m001_initial),
    Migration(2, "request log: completion id; lookups by request and completion id", _m002_completion_id),
)


def migrate(engine: Engine) -> list[int]:
    return run_migrations(engine, COMPONENT, MIGRATIONS)
