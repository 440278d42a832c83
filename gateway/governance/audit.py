"""The admin audit log: who did what to which object, when. Never a secret."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from gateway.governance.models import AuditEntry, Page, parse_cursor
from gateway.governance.schema import admin_audit
from prompts.db import write_transaction
from prompts.rows import now, utc


def record(conn: Connection, *, actor: str, action: str, target_id: str | None, detail: dict[str, Any]) -> None:
    """Write an entry inside the caller's transaction, so the change and its audit commit together."""
    conn.execute(admin_audit.insert().values(
        at=now(), actor=actor[:256], action=action, target_id=target_id, detail=orjson.dumps(detail).decode(),
    ))


class AuditLog:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def write(self, *, actor: str, action: str, target_id: str | None = None, detail: dict[str, Any] | None = None) -> None:
        write_transaction(
            self._engine, lambda conn: record(conn, actor=actor, action=action, target_id=target_id, detail=detail or {})
        )

    def list(
        self,
        *,
        action: str | None = None,
        actor: str | None = None,
        target_id: str | None = None,
        since: datetime | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> Page:
        t = admin_audit
        q = sa.select(t).order_by(t.c.id.desc()).limit(limit + 1)
        for column, value in ((t.c.action, action), (t.c.actor, actor), (t.c.target_id, target_id)):
            if value is not None:
                q = q.where(column == value)
        if since is not None:
            q = q.where(t.c.at >= since)
        if cursor is not None:
            q = q.where(t.c.id < parse_cursor(cursor))
        with self._engine.connect() as conn:
            rows = conn.execute(q).all()
        entries = [
            AuditEntry(
                id=r.id, at=utc(r.at), actor=r.actor, action=r.action, target_id=r.target_id,
                detail=orjson.loads(r.detail),
            )
            for r in rows[:limit]
        ]
        more = len(rows) > limit
        return Page(
            data=[e.model_dump(mode="json") for e in entries],
            has_more=more,
            next_cursor=str(entries[-1].id) if more else None,
        )
