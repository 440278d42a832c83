"""Models that succeeded jobs produced, as the gateway and the guardrails read them."""

from __future__ import annotations

from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from finetune import schema
from finetune.db import loads, reading
from finetune.records import RegisteredModel

_m = schema.models


def _model(row: Any) -> RegisteredModel:
    return RegisteredModel(name=row.name, job_id=row.job_id, base=row.base, kind=row.kind,
                           serving_name=row.serving_name, path=row.path, created_at=row.created_at,
                           metrics=loads(row.metrics) or {})


class ModelRegistry:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def list(self, kind: Literal["chat", "guardrail"] | None = None) -> list[RegisteredModel]:
        stmt = sa.select(_m).order_by(_m.c.created_at, _m.c.name)
        if kind is not None:
            stmt = stmt.where(_m.c.kind == kind)
        with reading(self.engine) as conn:
            return [_model(r) for r in conn.execute(stmt)]

    def get(self, name: str) -> RegisteredModel | None:
        with reading(self.engine) as conn:
            row = conn.execute(sa.select(_m).where(_m.c.name == name)).first()
        return None if row is None else _model(row)

    def latest(self, kind: Literal["chat", "guardrail"]) -> RegisteredModel | None:
        models = self.list(kind)
        return models[-1] if models else None
