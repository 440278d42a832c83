"""The request log and the daily usage table in SQL: batch writes, queries, export, purge."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

from gateway.governance.models import Page, parse_cursor
from gateway.governance.records import LoggedRequest, RequestQuery
from gateway.governance.schema import request_log, usage_daily
from prompts.db import write_transaction
from prompts.rows import utc

Spend = Mapping[tuple[str, str], tuple[int, int]]  # (subject, day) -> (tokens, nano-USD)
EXPORT_PAGE = 1000


def _upsert_spend(conn: Connection, spend: Spend) -> None:
    if not spend:
        return
    # Sorted so that concurrent writers lock rows in one order (no deadlocks on PostgreSQL).
    rows = [
        {"subject": s, "day": d, "tokens": t, "cost_nano": c} for (s, d), (t, c) in sorted(spend.items())
    ]
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    stmt = insert(usage_daily).values(rows)
    stmt = stmt.on_conflict_do_update(
        index_elements=[usage_daily.c.subject, usage_daily.c.day],
        set_={
            "tokens": usage_daily.c.tokens + stmt.excluded.tokens,
            "cost_nano": usage_daily.c.cost_nano + stmt.excluded.cost_nano,
        },
    )
    conn.execute(stmt)


def _record(row: Any) -> LoggedRequest:
    return LoggedRequest(
        id=row.id, request_id=row.request_id, completion_id=row.completion_id, created_at=utc(row.created_at),
        endpoint=row.endpoint,
        status=row.status, latency_ms=row.latency_ms, key_id=row.key_id, team=row.team, model=row.model,
        prompt_name=row.prompt_name, prompt_version=row.prompt_version, rails=orjson.loads(row.rails),
        input_tokens=row.input_tokens, output_tokens=row.output_tokens, cost=row.cost, ttft_ms=row.ttft_ms,
        stream=row.stream, error_code=row.error_code,
        messages=orjson.loads(row.messages) if row.messages is not None else None, answer=row.answer,
    )


class RequestLogStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def write(self, rows: Sequence[dict[str, Any]], spend: Spend) -> None:
        """Insert log rows and add to daily usage in one transaction: both or neither."""

        def work(conn: Connection) -> None:
            if rows:
                conn.execute(request_log.insert(), list(rows))
            _upsert_spend(conn, spend)

        write_transaction(self.engine, work)

    def _select(self, q: RequestQuery) -> sa.Select[Any]:
        t = request_log
        stmt = sa.select(t)
        for column, value in ((t.c.key_id, q.key_id), (t.c.team, q.team), (t.c.model, q.model),
                              (t.c.status, q.status), (t.c.endpoint, q.endpoint), (t.c.request_id, q.request_id),
                              (t.c.completion_id, q.completion_id)):
            if value is not None:
                stmt = stmt.where(column == value)
        name, version = q.prompt_filter()
        if name is not None:
            stmt = stmt.where(t.c.prompt_name == name)
        if version is not None:
            stmt = stmt.where(t.c.prompt_version == version)
        if q.since is not None:
            stmt = stmt.where(t.c.created_at >= q.since)
        if q.until is not None:
            stmt = stmt.where(t.c.created_at < q.until)
        return stmt

    def query(self, q: RequestQuery) -> Page:
        """Newest first; `next_cursor` continues after the last row of this page."""
        stmt = self._select(q).order_by(request_log.c.id.desc()).limit(q.limit + 1)
        if q.cursor is not None:
            stmt = stmt.where(request_log.c.id < parse_cursor(q.cursor))
        with self.engine.connect() as conn:
            rows = conn.execute(stmt).all()
        records = [_record(r) for r in rows[: q.limit]]
        more = len(rows) > q.limit
        return Page(
            data=[r.model_dump(mode="json") for r in records],
            has_more=more,
            next_cursor=str(records[-1].id) if more else None,
        )

    def export(self, q: RequestQuery) -> Iterator[bytes]:
        """Every matching row as JSON lines, oldest first, read in pages (no `limit`)."""
        after = parse_cursor(q.cursor) if q.cursor is not None else 0
        while True:
            stmt = self._select(q).where(request_log.c.id > after).order_by(request_log.c.id).limit(EXPORT_PAGE)
            with self.engine.connect() as conn:
                rows = conn.execute(stmt).all()
            for row in rows:
                yield orjson.dumps(_record(row).model_dump(mode="json")) + b"\n"
            if len(rows) < EXPORT_PAGE:
                return
            after = rows[-1].id

    def purge(self, older_than: datetime, *, chunk: int = 5000) -> int:
        """Delete rows created before `older_than`, in chunks so that writers are not locked out long."""
        t = request_log
        oldest = sa.select(t.c.id).where(t.c.created_at < older_than).order_by(t.c.id).limit(chunk)
        statement = t.delete().where(t.c.id.in_(oldest))
        total = 0
        while True:
            deleted: int = write_transaction(self.engine, lambda conn: conn.execute(statement).rowcount)
            total += deleted
            if deleted < chunk:
                return total

    def spent(self, subject: str, since_day: str | None) -> tuple[int, int]:
        """(tokens, nano-USD) charged to `subject` from `since_day` (YYYY-MM-DD) on; None: ever."""
        u = usage_daily
        stmt = sa.select(sa.func.coalesce(sa.func.sum(u.c.tokens), 0), sa.func.coalesce(sa.func.sum(u.c.cost_nano), 0))
        stmt = stmt.where(u.c.subject == subject)
        if since_day is not None:
            stmt = stmt.where(u.c.day >= since_day)
        with self.engine.connect() as conn:
            tokens, cost = conn.execute(stmt).one()
        return int(tokens), int(cost)
