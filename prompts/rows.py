"""Conversions between database rows and the pydantic records."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from prompts.models import LabelMove, PromptVersion, VersionSummary


def utc(value: datetime) -> datetime:
    # SQLite hands back naive datetimes; everything is written in UTC.
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def now() -> datetime:
    return datetime.now(UTC)


def version_from_row(name: str, row: Any) -> PromptVersion:
    data = json.loads(row.content)
    return PromptVersion.model_validate({
        **data,
        "name": name,
        "version": row.version,
        "content_hash": row.content_hash,
        "created_at": utc(row.created_at),
        "created_by": row.created_by,
        "note": row.note,
    })


def summary_from_row(name: str, row: Any) -> VersionSummary:
    return VersionSummary(
        name=name, version=row.version, content_hash=row.content_hash,
        created_at=utc(row.created_at), created_by=row.created_by, note=row.note,
    )


def move_from_row(name: str, row: Any) -> LabelMove:
    return LabelMove(
        id=row.id, name=name, label=row.label, from_version=row.from_version, to_version=row.to_version,
        action=row.action, actor=row.actor, reason=row.reason, at=utc(row.at),
    )
