"""Current governance tables, for queries (migrations freeze their own DDL)."""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()
TS = sa.DateTime(timezone=True)
_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

virtual_keys = sa.Table(
    "virtual_keys", metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    # sha256 hex of the secret; the secret itself is never stored.
    sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("name", sa.String(128), nullable=False),
    sa.Column("owner", sa.String(256)),
    sa.Column("team", sa.String(128)),
    sa.Column("tenant", sa.String(128)),
    sa.Column("models", sa.Text),  # JSON list; NULL: every model
    sa.Column("routes", sa.Text),  # JSON list; NULL: every route
    sa.Column("rails_policy", sa.String(128)),
    sa.Column("rpm", sa.Integer),
    sa.Column("tpm", sa.Integer),
    sa.Column("budget_amount", sa.Float),
    sa.Column("budget_period", sa.String(8)),
    sa.Column("expires_at", TS),
    sa.Column("metadata", sa.Text, nullable=False),
    sa.Column("created_at", TS, nullable=False),
    sa.Column("created_by", sa.String(256), nullable=False),
    sa.Column("rotated_at", TS),
    sa.Column("revoked_at", TS),
)

admin_audit = sa.Table(
    "admin_audit", metadata,
    sa.Column("id", _ID, primary_key=True, autoincrement=True),
    sa.Column("at", TS, nullable=False),
    sa.Column("actor", sa.String(256), nullable=False),
    sa.Column("action", sa.String(64), nullable=False),
    sa.Column("target_id", sa.String(128)),
    sa.Column("detail", sa.Text, nullable=False),
)

request_log = sa.Table(
    "request_log", metadata,
    sa.Column("id", _ID, primary_key=True, autoincrement=True),
    sa.Column("request_id", sa.String(128), nullable=False),
    sa.Column("created_at", TS, nullable=False),
    sa.Column("endpoint", sa.String(128), nullable=False),
    sa.Column("status", sa.Integer, nullable=False),
    sa.Column("latency_ms", sa.Float, nullable=False),
    sa.Column("key_id", sa.String(64)),
    sa.Column("team", sa.String(128)),
    sa.Column("model", sa.String(128)),
    sa.Column("prompt_name", sa.String(128)),
    sa.Column("prompt_version", sa.Integer),
    sa.Column("rails", sa.Text, nullable=False),
    sa.Column("input_tokens", sa.Integer, nullable=False),
    sa.Column("output_tokens", sa.Integer, nullable=False),
    sa.Column("cost", sa.Float, nullable=False),
    sa.Column("ttft_ms", sa.Float),
    sa.Column("stream", sa.Boolean, nullable=False),
    sa.Column("error_code", sa.String(64)),
    sa.Column("messages", sa.Text),  # masked JSON; NULL unless log_content
    sa.Column("answer", sa.Text),  # masked; NULL unless log_content
    sa.Column("completion_id", sa.String(64)),  # migration 2
)

usage_daily = sa.Table(
    "usage_daily", metadata,
    sa.Column("subject", sa.String(200), primary_key=True),
    sa.Column("day", sa.String(10), primary_key=True),
    sa.Column("tokens", sa.BigInteger, nullable=False),
    sa.Column("cost_nano", sa.BigInteger, nullable=False),
)
