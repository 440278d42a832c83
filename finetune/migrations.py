"""Fine-tuning tables, as ordered migrations recorded in the shared `schema_migrations` table.

Each migration freezes its own DDL (see prompts.migrations for why); `prompts.migrations.run_migrations`
applies them, as it does every component's.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from prompts.migrations import Migration, run_migrations

COMPONENT = "finetune"


def _seq() -> sa.types.TypeEngine[int]:
    # SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL gets a BIGSERIAL.
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _m001_initial(conn: Connection) -> None:
    md = sa.MetaData()
    # Times are integer (or float, for heartbeats) Unix seconds: what the OpenAI objects carry,
    # and comparable the same way on SQLite and PostgreSQL.
    sa.Table(
        "ft_files", md,
        sa.Column("seq", _seq(), primary_key=True, autoincrement=True),
        sa.Column("id", sa.String(40), nullable=False, unique=True),
        sa.Column("owner", sa.String(64), nullable=True),
        sa.Column("filename", sa.String(256), nullable=False),
        sa.Column("purpose", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("examples", sa.Integer, nullable=False),
        sa.Column("bytes", sa.Integer, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("content", sa.LargeBinary, nullable=False),
    )
    sa.Table(
        "ft_jobs", md,
        sa.Column("seq", _seq(), primary_key=True, autoincrement=True),
        sa.Column("id", sa.String(40), nullable=False, unique=True),
        sa.Column("owner", sa.String(64), nullable=True),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("model", sa.String(128), nullable=False),
        sa.Column("method", sa.String(32), nullable=False),
        sa.Column("training_file", sa.String(40), nullable=True),
        sa.Column("validation_file", sa.String(40), nullable=True),
        sa.Column("hyperparameters", sa.Text, nullable=False),
        sa.Column("extensions", sa.Text, nullable=False),
        sa.Column("suffix", sa.String(64), nullable=True),
        sa.Column("seed", sa.BigInteger, nullable=False),
        sa.Column("metadata", sa.Text, nullable=True),
        sa.Column("status", sa.String(24), nullable=False),
        sa.Column("fine_tuned_model", sa.String(160), nullable=True),
        sa.Column("trained_tokens", sa.BigInteger, nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("result_files", sa.Text, nullable=False),
        sa.Column("started_at", sa.BigInteger, nullable=True),
        sa.Column("finished_at", sa.BigInteger, nullable=True),
        sa.Column("estimated_finish", sa.BigInteger, nullable=True),
        sa.Column("claimed_by", sa.String(128), nullable=True),
        sa.Column("heartbeat_at", sa.Float, nullable=True),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Index("ix_ft_jobs_status", "status", "seq"),
    )
    sa.Table(
        "ft_events", md,
        sa.Column("seq", _seq(), primary_key=True, autoincrement=True),
        sa.Column("job_id", sa.String(40), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("level", sa.String(8), nullable=False),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("data", sa.Text, nullable=True),
        sa.Index("ix_ft_events_job", "job_id", "seq"),
    )
    sa.Table(
        "ft_checkpoints", md,
        sa.Column("seq", _seq(), primary_key=True, autoincrement=True),
        sa.Column("id", sa.String(40), nullable=False, unique=True),
        sa.Column("job_id", sa.String(40), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("step_number", sa.Integer, nullable=False),
        sa.Column("metrics", sa.Text, nullable=False),
        sa.Column("path", sa.Text, nullable=False),
        sa.Column("model_name", sa.String(200), nullable=False),
        sa.Index("ix_ft_checkpoints_job", "job_id", "seq"),
    )
    sa.Table(
        "ft_models", md,
        sa.Column("name", sa.String(160), primary_key=True),
        sa.Column("job_id", sa.String(40), nullable=False),
        sa.Column("base", sa.String(128), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("serving_name", sa.String(160), nullable=False),
        sa.Column("path", sa.Text, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("metrics", sa.Text, nullable=False),
    )
    sa.Table(
        "ft_feedback", md,
        sa.Column("seq", _seq(), primary_key=True, autoincrement=True),
        sa.Column("id", sa.String(40), nullable=False, unique=True),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("key_id", sa.String(64), nullable=True),
        sa.Column("completion_id", sa.String(128), nullable=True, index=True),
        sa.Column("request_id", sa.String(128), nullable=True, index=True),
        sa.Column("score", sa.Float, nullable=True),
        sa.Column("correction", sa.Text, nullable=True),
        sa.Column("label", sa.String(32), nullable=True),
        sa.Column("comment", sa.Text, nullable=True),
    )
    md.create_all(conn)


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "fine-tuning files, jobs, events, checkpoints, models, feedback", _m001_initial),
)


def migrate(engine: Engine) -> list[int]:
    return run_migrations(engine, COMPONENT, MIGRATIONS)
