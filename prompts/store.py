"""Write path: pushes and label moves, each in one serialised transaction.

Serialisation: on PostgreSQL the prompt row is locked with SELECT ... FOR UPDATE
(so versions of different prompts proceed in parallel); on SQLite the whole
write runs under BEGIN IMMEDIATE (SQLite has one writer anyway). Unique
constraints on (prompt, version) and (prompt, hash) back both up, and
write_transaction retries whatever they reject.
"""

from __future__ import annotations

from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

from prompts.canonical import canonical_json, content_hash
from prompts.db import write_transaction
from prompts.errors import Conflict, LabelNotFound, PromptNotFound, VersionNotFound
from prompts.models import MoveResult, PromptSpec, PromptVersion
from prompts.rows import now, version_from_row
from prompts.schema import prompt_label_history, prompt_labels, prompt_versions, prompts, registry_state


def _insert_ignore(conn: Connection, table: sa.Table, values: dict[str, Any], key: list[str]) -> None:
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    conn.execute(dialect.insert(table).values(**values).on_conflict_do_nothing(index_elements=key))


def _lock_prompt(conn: Connection, name: str) -> Any:
    stmt = sa.select(prompts.c.id, prompts.c.latest_version).where(prompts.c.name == name).with_for_update()
    return conn.execute(stmt).first()


def _bump_generation(conn: Connection) -> None:
    conn.execute(
        sa.update(registry_state).where(registry_state.c.id == 1)
        .values(generation=registry_state.c.generation + 1)
    )


def push(engine: Engine, spec: PromptSpec, *, actor: str, note: str | None) -> tuple[PromptVersion, bool]:
    """Store ``spec`` as the next version unless identical content exists already."""
    content = spec.content()
    digest = content_hash(content)
    body = canonical_json(content.content_dict())

    def work(conn: Connection) -> tuple[PromptVersion, bool]:
        ts = now()
        _insert_ignore(
            conn, prompts,
            {"name": spec.name, "latest_version": 0, "created_at": ts, "updated_at": ts},
            ["name"],
        )
        prompt = _lock_prompt(conn, spec.name)
        # Checked under the lock, so two identical concurrent pushes see each other.
        existing = conn.execute(
            sa.select(prompt_versions)
            .where(prompt_versions.c.prompt_id == prompt.id, prompt_versions.c.content_hash == digest)
        ).first()
        if existing is not None:
            return version_from_row(spec.name, existing), False
        number = prompt.latest_version + 1
        conn.execute(prompt_versions.insert().values(
            prompt_id=prompt.id, version=number, content_hash=digest, content=body,
            created_at=ts, created_by=actor, note=note,
        ))
        conn.execute(
            sa.update(prompts).where(prompts.c.id == prompt.id).values(latest_version=number, updated_at=ts)
        )
        _bump_generation(conn)
        record = PromptVersion.model_validate({
            **content.content_dict(), "name": spec.name, "version": number, "content_hash": digest,
            "created_at": ts, "created_by": actor, "note": note,
        })
        return record, True

    return write_transaction(engine, work)


def _current_label(conn: Connection, prompt_id: int, label: str) -> int | None:
    return conn.execute(
        sa.select(prompt_labels.c.version)
        .where(prompt_labels.c.prompt_id == prompt_id, prompt_labels.c.label == label)
    ).scalar()


def _apply_move(
    conn: Connection, prompt_id: int, name: str, label: str, current: int | None, target: int,
    *, actor: str, reason: str | None, action: Literal["move", "rollback"],
) -> MoveResult:
    if current == target:
        # Not recorded: a no-op entry would make the next rollback a no-op too.
        return MoveResult(name=name, label=label, version=target, previous_version=current, moved=False)
    ts = now()
    if current is None:
        conn.execute(prompt_labels.insert().values(
            prompt_id=prompt_id, label=label, version=target, updated_at=ts, updated_by=actor,
        ))
    else:
        conn.execute(
            sa.update(prompt_labels)
            .where(prompt_labels.c.prompt_id == prompt_id, prompt_labels.c.label == label)
            .values(version=target, updated_at=ts, updated_by=actor)
        )
    conn.execute(prompt_label_history.insert().values(
        prompt_id=prompt_id, label=label, from_version=current, to_version=target,
        action=action, actor=actor, reason=reason, at=ts,
    ))
    conn.execute(sa.update(prompts).where(prompts.c.id == prompt_id).values(updated_at=ts))
    _bump_generation(conn)
    return MoveResult(name=name, label=label, version=target, previous_version=current, moved=True)


def move_label(
    engine: Engine, name: str, label: str, version: int, *, actor: str, reason: str | None,
) -> MoveResult:
    def work(conn: Connection) -> MoveResult:
        prompt = _lock_prompt(conn, name)
        if prompt is None:
            raise PromptNotFound(name)
        if not 1 <= version <= prompt.latest_version:
            raise VersionNotFound(name, version)
        current = _current_label(conn, prompt.id, label)
        return _apply_move(conn, prompt.id, name, label, current, version,
                           actor=actor, reason=reason, action="move")

    return write_transaction(engine, work)


def _last_move(conn: Connection, prompt_id: int, label: str) -> Any:
    return conn.execute(
        sa.select(prompt_label_history)
        .where(prompt_label_history.c.prompt_id == prompt_id, prompt_label_history.c.label == label)
        .order_by(prompt_label_history.c.id.desc()).limit(1)
    ).first()


def rollback_target(conn: Connection, prompt_id: int, name: str, label: str) -> int:
    """The version ``label`` pointed to before its last move."""
    if _current_label(conn, prompt_id, label) is None:
        raise LabelNotFound(name, label)
    last = _last_move(conn, prompt_id, label)
    if last is None or last.from_version is None:
        raise Conflict(f"label '{label}' of prompt '{name}' has no earlier version to roll back to")
    return int(last.from_version)


def rollback(
    engine: Engine, name: str, label: str, *, actor: str, reason: str | None, expected_target: int | None = None,
) -> MoveResult:
    def work(conn: Connection) -> MoveResult:
        prompt = _lock_prompt(conn, name)
        if prompt is None:
            raise PromptNotFound(name)
        target = rollback_target(conn, prompt.id, name, label)
        if expected_target is not None and target != expected_target:
            # The gate approved another version than the one we would now move to.
            raise Conflict(f"label '{label}' of prompt '{name}' moved concurrently; retry the rollback")
        current = _current_label(conn, prompt.id, label)
        return _apply_move(conn, prompt.id, name, label, current, target,
                           actor=actor, reason=reason, action="rollback")

    return write_transaction(engine, work)
