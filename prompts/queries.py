"""Read path: plain queries with no caching (the registry caches on top)."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from prompts.errors import LabelNotFound, PromptNotFound, VersionNotFound
from prompts.models import LATEST, LabelMove, PromptSummary, PromptVersion, VersionSummary
from prompts.rows import move_from_row, summary_from_row, utc, version_from_row
from prompts.schema import prompt_label_history, prompt_labels, prompt_versions, prompts, registry_state
from prompts.store import rollback_target as _rollback_target


def _prompt_id(conn: sa.Connection, name: str) -> tuple[int, int]:
    row = conn.execute(
        sa.select(prompts.c.id, prompts.c.latest_version).where(prompts.c.name == name)
    ).first()
    if row is None:
        raise PromptNotFound(name)
    return int(row.id), int(row.latest_version)


def get_version(engine: Engine, name: str, version: int) -> PromptVersion:
    with engine.connect() as conn:
        row = conn.execute(
            sa.select(prompt_versions)
            .join(prompts, prompts.c.id == prompt_versions.c.prompt_id)
            .where(prompts.c.name == name, prompt_versions.c.version == version)
        ).first()
        if row is None:
            _prompt_id(conn, name)  # PromptNotFound beats VersionNotFound
            raise VersionNotFound(name, version)
    return version_from_row(name, row)


def resolve_label(engine: Engine, name: str, label: str) -> int:
    with engine.connect() as conn:
        prompt_id, latest = _prompt_id(conn, name)
        if label == LATEST:
            return latest
        version = conn.execute(
            sa.select(prompt_labels.c.version)
            .where(prompt_labels.c.prompt_id == prompt_id, prompt_labels.c.label == label)
        ).scalar()
    if version is None:
        raise LabelNotFound(name, label)
    return int(version)


def labels(engine: Engine, name: str) -> dict[str, int]:
    with engine.connect() as conn:
        prompt_id, _ = _prompt_id(conn, name)
        rows = conn.execute(
            sa.select(prompt_labels.c.label, prompt_labels.c.version)
            .where(prompt_labels.c.prompt_id == prompt_id).order_by(prompt_labels.c.label)
        )
        return {r.label: int(r.version) for r in rows}


def list_prompts(engine: Engine) -> list[PromptSummary]:
    with engine.connect() as conn:
        rows = conn.execute(sa.select(prompts).where(prompts.c.latest_version > 0).order_by(prompts.c.name)).all()
        label_rows = conn.execute(sa.select(prompt_labels.c.prompt_id, prompt_labels.c.label, prompt_labels.c.version))
        by_prompt: dict[int, dict[str, int]] = {}
        for r in label_rows:
            by_prompt.setdefault(int(r.prompt_id), {})[r.label] = int(r.version)
    return [
        PromptSummary(
            name=r.name, latest_version=r.latest_version,
            labels=dict(sorted(by_prompt.get(int(r.id), {}).items())),
            created_at=utc(r.created_at), updated_at=utc(r.updated_at),
        )
        for r in rows
    ]


def list_versions(engine: Engine, name: str) -> list[VersionSummary]:
    with engine.connect() as conn:
        prompt_id, _ = _prompt_id(conn, name)
        rows = conn.execute(
            sa.select(prompt_versions).where(prompt_versions.c.prompt_id == prompt_id)
            .order_by(prompt_versions.c.version)
        ).all()
    return [summary_from_row(name, r) for r in rows]


def history(engine: Engine, name: str, *, label: str | None = None, limit: int = 100) -> list[LabelMove]:
    """Newest first."""
    with engine.connect() as conn:
        prompt_id, _ = _prompt_id(conn, name)
        stmt = sa.select(prompt_label_history).where(prompt_label_history.c.prompt_id == prompt_id)
        if label is not None:
            stmt = stmt.where(prompt_label_history.c.label == label)
        rows = conn.execute(stmt.order_by(prompt_label_history.c.id.desc()).limit(limit)).all()
    return [move_from_row(name, r) for r in rows]


def rollback_target(engine: Engine, name: str, label: str) -> int:
    with engine.connect() as conn:
        prompt_id, _ = _prompt_id(conn, name)
        return _rollback_target(conn, prompt_id, name, label)


def generation(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.select(registry_state.c.generation).where(registry_state.c.id == 1)).scalar_one())
