"""Database plumbing shared by the fine-tuning stores: engine, ids, JSON columns, cursor pages."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from finetune.errors import StoreUnavailable
from finetune.migrations import migrate
from finetune.records import Page
from prompts.db import create_engine, write_transaction
from prompts.errors import StorageBusy

T = TypeVar("T")


def open_engine(url: str) -> Engine:
    engine = create_engine(url)
    migrate(engine)
    return engine


def now_s() -> int:
    return int(time.time())


def new_id(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(12)}"


def dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def loads(value: str | None) -> Any:
    return None if value is None else orjson.loads(value)


@contextmanager
def reading(engine: Engine) -> Iterator[Connection]:
    try:
        with engine.connect() as conn:
            yield conn
    except sa.exc.OperationalError as err:
        raise StoreUnavailable("The fine-tuning store is unavailable; try again.") from err


def writing(engine: Engine, work: Callable[[Connection], T]) -> T:
    try:
        return write_transaction(engine, work)
    except (sa.exc.OperationalError, StorageBusy) as err:
        raise StoreUnavailable("The fine-tuning store is busy or unavailable; try again.") from err


def page(
    conn: Connection,
    table: sa.Table,
    stmt: sa.Select[Any],
    *,
    after: str | None,
    limit: int,
    render: Callable[[Any], dict[str, Any]],
    id_column: str = "id",
    newest_first: bool = True,
    seq_of_id: Callable[[str], int | None] | None = None,
) -> Page:
    """One page of `stmt` in `seq` order, continuing after the row whose id is `after`.

    An unknown `after` yields an empty page rather than restarting the list (a client paging
    through a list whose item was deleted must not loop).
    """
    seq = table.c.seq
    if after is not None:
        cursor = seq_of_id(after) if seq_of_id else _seq_of(conn, table, id_column, after)
        if cursor is None:
            return Page(data=[], has_more=False)
        stmt = stmt.where(seq < cursor if newest_first else seq > cursor)
    stmt = stmt.order_by(seq.desc() if newest_first else seq.asc()).limit(limit + 1)
    rows = conn.execute(stmt).all()
    data = [render(r) for r in rows[:limit]]
    return Page(
        data=data,
        has_more=len(rows) > limit,
        first_id=data[0]["id"] if data else None,
        last_id=data[-1]["id"] if data else None,
    )


def _seq_of(conn: Connection, table: sa.Table, id_column: str, value: str) -> int | None:
    found = conn.execute(sa.select(table.c.seq).where(table.c[id_column] == value)).first()
    return None if found is None else int(found[0])
