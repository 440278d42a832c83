"""Current fine-tuning tables, for queries (migrations freeze their own DDL)."""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()
_SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

files = sa.Table(
    "ft_files", metadata,
    sa.Column("seq", _SEQ, primary_key=True, autoincrement=True),
    sa.Column("id", sa.String(40), nullable=False, unique=True),
    sa.Column("owner", sa.String(64)),  # key id of the uploader; NULL: admin tooling
    sa.Column("filename", sa.String(256), nullable=False),
    sa.Column("purpose", sa.String(32), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),  # "chat" | "labelled" | "results"
    sa.Column("examples", sa.Integer, nullable=False),
    sa.Column("bytes", sa.Integer, nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("content", sa.LargeBinary, nullable=False),
)

jobs = sa.Table(
    "ft_jobs", metadata,
    sa.Column("seq", _SEQ, primary_key=True, autoincrement=True),
    sa.Column("id", sa.String(40), nullable=False, unique=True),
    sa.Column("owner", sa.String(64)),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("model", sa.String(128), nullable=False),
    sa.Column("method", sa.String(32), nullable=False),  # "supervised" | "guardrail_detector"
    sa.Column("training_file", sa.String(40)),
    sa.Column("validation_file", sa.String(40)),
    sa.Column("hyperparameters", sa.Text, nullable=False),  # JSON, resolved values
    sa.Column("extensions", sa.Text, nullable=False),  # JSON, the `llmops` extension object
    sa.Column("suffix", sa.String(64)),
    sa.Column("seed", sa.BigInteger, nullable=False),
    sa.Column("metadata", sa.Text),
    sa.Column("status", sa.String(24), nullable=False),
    sa.Column("fine_tuned_model", sa.String(160)),
    sa.Column("trained_tokens", sa.BigInteger),
    sa.Column("error", sa.Text),  # JSON {code, message, param}
    sa.Column("result_files", sa.Text, nullable=False),
    sa.Column("started_at", sa.BigInteger),
    sa.Column("finished_at", sa.BigInteger),
    sa.Column("estimated_finish", sa.BigInteger),
    sa.Column("claimed_by", sa.String(128)),
    sa.Column("heartbeat_at", sa.Float),
    sa.Column("attempts", sa.Integer, nullable=False),
)

events = sa.Table(
    "ft_events", metadata,
    sa.Column("seq", _SEQ, primary_key=True, autoincrement=True),
    sa.Column("job_id", sa.String(40), nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("level", sa.String(8), nullable=False),
    sa.Column("type", sa.String(16), nullable=False),
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("data", sa.Text),
)

checkpoints = sa.Table(
    "ft_checkpoints", metadata,
    sa.Column("seq", _SEQ, primary_key=True, autoincrement=True),
    sa.Column("id", sa.String(40), nullable=False, unique=True),
    sa.Column("job_id", sa.String(40), nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("step_number", sa.Integer, nullable=False),
    sa.Column("metrics", sa.Text, nullable=False),
    sa.Column("path", sa.Text, nullable=False),
    sa.Column("model_name", sa.String(200), nullable=False),
)

models = sa.Table(
    "ft_models", metadata,
    sa.Column("name", sa.String(160), primary_key=True),
    sa.Column("job_id", sa.String(40), nullable=False),
    sa.Column("base", sa.String(128), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),  # "chat" | "guardrail"
    sa.Column("serving_name", sa.String(160), nullable=False),  # Triton model name / detector version
    sa.Column("path", sa.Text, nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("metrics", sa.Text, nullable=False),
)

feedback = sa.Table(
    "ft_feedback", metadata,
    sa.Column("seq", _SEQ, primary_key=True, autoincrement=True),
    sa.Column("id", sa.String(40), nullable=False, unique=True),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("key_id", sa.String(64)),
    sa.Column("completion_id", sa.String(128)),
    sa.Column("request_id", sa.String(128)),
    sa.Column("score", sa.Float),
    sa.Column("correction", sa.Text),
    sa.Column("label", sa.String(32)),
    sa.Column("comment", sa.Text),
)
