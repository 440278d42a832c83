"""Feedback on answers (`POST /v1/feedback`): a score, a corrected answer or a label, keyed by
the completion id (`chatcmpl-...`) or the request id (`x-request-id`) of the answer it judges.

Feedback is stored without checking that the answer exists: the request log is written in
batches off the request path, so a quick client can judge an answer before its log row lands.
The dataset builder joins the two later.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from finetune import schema
from finetune.db import new_id, now_s, reading, writing
from finetune.records import Feedback, FeedbackIn

_f = schema.feedback


def _record(row: Any) -> Feedback:
    return Feedback(id=row.id, created_at=row.created_at, key_id=row.key_id, completion_id=row.completion_id,
                    request_id=row.request_id, score=row.score, correction=row.correction, label=row.label,
                    comment=row.comment)


class FeedbackStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def add(self, item: FeedbackIn, *, key_id: str | None) -> Feedback:
        record = Feedback(id=new_id("fb"), created_at=now_s(), key_id=key_id, **item.model_dump())
        row = record.model_dump(exclude={"object"})
        writing(self.engine, lambda conn: conn.execute(_f.insert().values(**row)))
        return record

    def latest_for(self, *, request_ids: Iterable[str] = (), completion_ids: Iterable[str] = ()) -> dict[str, Feedback]:
        """The newest feedback per key ("req:<id>" / "cmpl:<id>"), for the requests being read."""
        rids, cids = list(set(request_ids)), list(set(completion_ids))
        out: dict[str, Feedback] = {}
        with reading(self.engine) as conn:
            for column, ids, prefix in ((_f.c.request_id, rids, "req:"), (_f.c.completion_id, cids, "cmpl:")):
                for chunk in range(0, len(ids), 500):
                    rows = conn.execute(sa.select(_f).where(column.in_(ids[chunk:chunk + 500])).order_by(_f.c.seq))
                    for row in rows:
                        out[prefix + str(getattr(row, column.name))] = _record(row)  # later rows win
        return out

    def labelled(self) -> list[Feedback]:
        """Every feedback row with a guardrail label, oldest first."""
        with reading(self.engine) as conn:
            rows = conn.execute(sa.select(_f).where(_f.c.label.in_(("injection", "benign"))).order_by(_f.c.seq))
            return [_record(r) for r in rows]

    def list(self, *, limit: int = 100) -> list[Feedback]:
        with reading(self.engine) as conn:
            return [_record(r) for r in conn.execute(sa.select(_f).order_by(_f.c.seq.desc()).limit(limit))]


