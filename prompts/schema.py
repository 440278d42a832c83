"""Current table definitions used by queries.

Migrations do not use these objects (they freeze their own DDL), so this file
describes the schema *after* all migrations and may evolve with them.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

TS = sa.DateTime(timezone=True)

prompts = sa.Table(
    "prompts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(128), nullable=False, unique=True),
    # Counter of the last version issued; bumped under the prompt row lock so
    # versions stay 1..n without gaps.
    sa.Column("latest_version", sa.Integer, nullable=False),
    sa.Column("created_at", TS, nullable=False),
    sa.Column("updated_at", TS, nullable=False),
)

prompt_versions = sa.Table(
    "prompt_versions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("prompt_id", sa.Integer, sa.ForeignKey("prompts.id"), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("content_hash", sa.String(64), nullable=False),
    sa.Column("content", sa.Text, nullable=False),
    sa.Column("created_at", TS, nullable=False),
    sa.Column("created_by", sa.String(256), nullable=False),
    sa.Column("note", sa.Text, nullable=True),
    sa.UniqueConstraint("prompt_id", "version", name="uq_prompt_versions_version"),
    sa.UniqueConstraint("prompt_id", "content_hash", name="uq_prompt_versions_hash"),
)

prompt_labels = sa.Table(
    "prompt_labels",
    metadata,
    sa.Column("prompt_id", sa.Integer, sa.ForeignKey("prompts.id"), primary_key=True),
    sa.Column("label", sa.String(128), primary_key=True),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("updated_at", TS, nullable=False),
    sa.Column("updated_by", sa.String(256), nullable=False),
    sa.ForeignKeyConstraint(
        ["prompt_id", "version"], ["prompt_versions.prompt_id", "prompt_versions.version"],
        name="fk_prompt_labels_version",
    ),
)

prompt_label_history = sa.Table(
    "prompt_label_history",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("prompt_id", sa.Integer, sa.ForeignKey("prompts.id"), nullable=False),
    sa.Column("label", sa.String(128), nullable=False),
    sa.Column("from_version", sa.Integer, nullable=True),
    sa.Column("to_version", sa.Integer, nullable=False),
    sa.Column("action", sa.String(16), nullable=False),
    sa.Column("actor", sa.String(256), nullable=False),
    sa.Column("reason", sa.Text, nullable=True),
    sa.Column("at", TS, nullable=False),
    sa.Index("ix_prompt_label_history_label", "prompt_id", "label", "id"),
)

# One row (id=1): bumped by every write that changes what a name/label
# resolves to, polled by replicas without Redis to invalidate their caches.
registry_state = sa.Table(
    "prompt_registry_state",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("generation", sa.BigInteger, nullable=False),
)
