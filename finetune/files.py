"""Uploaded files (`/v1/files`): training data is validated on upload and kept in the database,
so every worker and gateway replica that shares the database sees the same bytes."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from finetune import schema
from finetune.db import new_id, now_s, page, reading, writing
from finetune.errors import FileNotFound, InvalidFile
from finetune.records import FileDeleted, FileObject, Page
from finetune.validation import ParsedFile, parse_file

TRAINING = "fine-tune"
RESULTS = "fine-tune-results"  # written by workers (step metrics); not accepted on upload
_t = schema.files


def _object(row: Any) -> FileObject:
    return FileObject(id=row.id, bytes=row.bytes, created_at=row.created_at, filename=row.filename,
                      purpose=row.purpose)


def _scoped(stmt: sa.Select[Any], owner: str | None) -> sa.Select[Any]:
    # owner None: an admin (or the worker), who sees every file.
    return stmt if owner is None else stmt.where(_t.c.owner == owner)


class FileStore:
    def __init__(self, engine: Engine, *, min_examples: int = 1) -> None:
        self.engine = engine
        self.min_examples = min_examples

    def create(self, filename: str, purpose: str, content: bytes, *, owner: str | None) -> FileObject:
        if purpose != TRAINING:
            raise InvalidFile(filename, reason=f"purpose '{purpose}' is not supported here; use '{TRAINING}'")
        parsed = parse_file(content, filename, min_examples=self.min_examples)
        return self._insert(filename, purpose, content, owner, parsed.kind, parsed.examples)

    def create_results(self, filename: str, content: bytes, *, owner: str | None) -> FileObject:
        return self._insert(filename, RESULTS, content, owner, "results", content.count(b"\n"))

    def _insert(self, filename: str, purpose: str, content: bytes, owner: str | None, kind: str,
                examples: int) -> FileObject:
        made = FileObject(id=new_id("file"), bytes=len(content), created_at=now_s(), filename=filename[:256],
                          purpose=purpose)
        row = {**made.model_dump(include={"id", "bytes", "created_at", "filename", "purpose"}), "owner": owner,
               "kind": kind, "examples": examples, "content": content}
        writing(self.engine, lambda conn: conn.execute(_t.insert().values(**row)))
        return made

    def _row(self, conn: Connection, file_id: str, owner: str | None, *columns: Any) -> Any:
        cols = columns or tuple(c for c in _t.c if c.name != "content")
        row = conn.execute(_scoped(sa.select(*cols).where(_t.c.id == file_id), owner)).first()
        if row is None:
            raise FileNotFound(file_id)
        return row

    def get(self, file_id: str, *, owner: str | None) -> FileObject:
        with reading(self.engine) as conn:
            return _object(self._row(conn, file_id, owner))

    def kind(self, file_id: str, *, owner: str | None, param: str = "training_file") -> tuple[str, str, int]:
        """(purpose, kind, examples) of a file the caller may use, for job validation."""
        with reading(self.engine) as conn:
            row = conn.execute(_scoped(sa.select(_t.c.purpose, _t.c.kind, _t.c.examples).where(_t.c.id == file_id),
                                       owner)).first()
        if row is None:
            raise FileNotFound(file_id, param=param)
        return row.purpose, row.kind, row.examples

    def content(self, file_id: str, *, owner: str | None) -> tuple[str, bytes]:
        with reading(self.engine) as conn:
            row = self._row(conn, file_id, owner, _t.c.filename, _t.c.content)
        return row.filename, bytes(row.content)

    def parsed(self, file_id: str) -> ParsedFile:
        """The examples of a training file (the worker's view: no owner scope)."""
        filename, content = self.content(file_id, owner=None)
        return parse_file(content, filename)

    def list(self, *, owner: str | None, purpose: str | None = None, after: str | None = None,
             limit: int = 10000, order: str = "desc") -> Page:
        stmt = _scoped(sa.select(*(c for c in _t.c if c.name != "content")), owner)
        if purpose is not None:
            stmt = stmt.where(_t.c.purpose == purpose)
        with reading(self.engine) as conn:
            return page(conn, _t, stmt, after=after, limit=limit, newest_first=order != "asc",
                        render=lambda r: _object(r).model_dump())

    def delete(self, file_id: str, *, owner: str | None) -> FileDeleted:
        def work(conn: Connection) -> int:
            return int(conn.execute(_t.delete().where(_t.c.id == file_id).where(
                sa.true() if owner is None else _t.c.owner == owner)).rowcount)

        if not writing(self.engine, work):
            raise FileNotFound(file_id)
        return FileDeleted(id=file_id)
