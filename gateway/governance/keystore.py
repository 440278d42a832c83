"""Virtual keys in the database: create, read, rotate, revoke; each change audited in its transaction.

Only sha256(secret) is stored. The secret has 192 random bits, so a fast hash is enough: there is
nothing to brute-force, and lookups stay one indexed equality match.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from gateway import errors
from gateway.governance import audit
from gateway.governance.models import IssuedKey, KeySpec, VirtualKey
from gateway.governance.schema import virtual_keys
from gateway.governance.settings import Budget
from prompts.db import write_transaction
from prompts.rows import now, utc

KEY_PREFIX = "sk-llmops-"


def new_secret() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(24)  # 32 characters, 192 bits


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def new_key_id() -> str:
    # Microsecond prefix: ids sort by creation, which is the order the list's cursor walks.
    return f"vk-{time.time_ns() // 1000:014x}{secrets.token_hex(4)}"


def _json_list(value: list[str] | None) -> str | None:
    return None if value is None else orjson.dumps(value).decode()


def _row_values(spec: KeySpec) -> dict[str, Any]:
    return {
        "name": spec.name, "owner": spec.owner, "team": spec.team, "tenant": spec.tenant,
        "models": _json_list(spec.models), "routes": _json_list(spec.routes), "rails_policy": spec.rails_policy,
        "rpm": spec.rpm, "tpm": spec.tpm,
        "budget_amount": spec.budget.amount if spec.budget else None,
        "budget_period": spec.budget.period if spec.budget else None,
        "expires_at": spec.expires_at, "metadata": orjson.dumps(spec.metadata).decode(),
    }


def key_from_row(row: Any) -> VirtualKey:
    budget = Budget(amount=row.budget_amount, period=row.budget_period) if row.budget_amount is not None else None
    return VirtualKey(
        id=row.id, name=row.name, owner=row.owner, team=row.team, tenant=row.tenant,
        models=orjson.loads(row.models) if row.models is not None else None,
        routes=orjson.loads(row.routes) if row.routes is not None else None,
        rails_policy=row.rails_policy, rpm=row.rpm, tpm=row.tpm, budget=budget,
        expires_at=utc(row.expires_at) if row.expires_at else None,
        metadata=orjson.loads(row.metadata), created_at=utc(row.created_at), created_by=row.created_by,
        rotated_at=utc(row.rotated_at) if row.rotated_at else None,
        revoked_at=utc(row.revoked_at) if row.revoked_at else None,
    )


class KeyRepository:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def create(self, spec: KeySpec, *, actor: str) -> IssuedKey:
        secret, key_id = new_secret(), new_key_id()

        def work(conn: Connection) -> VirtualKey:
            conn.execute(virtual_keys.insert().values(
                id=key_id, key_hash=hash_secret(secret), created_at=now(), created_by=actor[:256], **_row_values(spec),
            ))
            audit.record(conn, actor=actor, action="key.create", target_id=key_id,
                         detail=spec.model_dump(mode="json", exclude_none=True))
            return self._get(conn, key_id)

        return IssuedKey(key=secret, record=write_transaction(self._engine, work))

    def get(self, key_id: str) -> VirtualKey:
        with self._engine.connect() as conn:
            return self._get(conn, key_id)

    def list_keys(
        self, *, team: str | None = None, include_revoked: bool = False, limit: int = 100, cursor: str | None = None,
    ) -> tuple[list[VirtualKey], str | None]:
        t = virtual_keys
        q = sa.select(t).order_by(t.c.id.desc()).limit(limit + 1)
        if team is not None:
            q = q.where(t.c.team == team)
        if not include_revoked:
            q = q.where(t.c.revoked_at.is_(None))
        if cursor is not None:
            q = q.where(t.c.id < cursor)
        with self._engine.connect() as conn:
            rows = conn.execute(q).all()
        keys = [key_from_row(r) for r in rows[:limit]]
        return keys, (keys[-1].id if len(rows) > limit else None)

    def find_active(self, key_hash: str) -> VirtualKey | None:
        """The key with this hash unless it is revoked; expiry is left to the caller's clock."""
        t = virtual_keys
        with self._engine.connect() as conn:
            row = conn.execute(sa.select(t).where(t.c.key_hash == key_hash, t.c.revoked_at.is_(None))).first()
        return key_from_row(row) if row is not None else None

    def revoke(self, key_id: str, *, actor: str) -> tuple[VirtualKey, str]:
        """Revoke (idempotent); returns the record and the hash that caches must forget."""

        def work(conn: Connection) -> tuple[VirtualKey, str]:
            key_hash = self._hash(conn, key_id)
            changed = conn.execute(
                virtual_keys.update()
                .where(virtual_keys.c.id == key_id, virtual_keys.c.revoked_at.is_(None))
                .values(revoked_at=now())
            ).rowcount
            if changed:
                audit.record(conn, actor=actor, action="key.revoke", target_id=key_id, detail={})
            return self._get(conn, key_id), key_hash

        return write_transaction(self._engine, work)

    def rotate(self, key_id: str, *, actor: str) -> tuple[IssuedKey, str]:
        """New secret, same id and settings; the old secret stops working. Returns the old hash."""
        secret = new_secret()

        def work(conn: Connection) -> tuple[VirtualKey, str]:
            old_hash = self._hash(conn, key_id)
            if self._get(conn, key_id).revoked_at is not None:
                raise errors.Conflict(f"Key {key_id} is revoked; create a new key instead.")
            conn.execute(
                virtual_keys.update().where(virtual_keys.c.id == key_id)
                .values(key_hash=hash_secret(secret), rotated_at=now())
            )
            audit.record(conn, actor=actor, action="key.rotate", target_id=key_id, detail={})
            return self._get(conn, key_id), old_hash

        record, old_hash = write_transaction(self._engine, work)
        return IssuedKey(key=secret, record=record), old_hash

    def with_budgets(self) -> list[VirtualKey]:
        t = virtual_keys
        q = sa.select(t).where(t.c.revoked_at.is_(None), t.c.budget_amount.is_not(None))
        with self._engine.connect() as conn:
            return [key_from_row(r) for r in conn.execute(q)]

    @staticmethod
    def _get(conn: Connection, key_id: str) -> VirtualKey:
        row = conn.execute(sa.select(virtual_keys).where(virtual_keys.c.id == key_id)).first()
        if row is None:
            raise errors.NotFound(f"No virtual key with id '{key_id}'.")
        return key_from_row(row)

    @staticmethod
    def _hash(conn: Connection, key_id: str) -> str:
        # FOR UPDATE (PostgreSQL): concurrent rotations of one key serialise instead of both "winning".
        q = sa.select(virtual_keys.c.key_hash).where(virtual_keys.c.id == key_id).with_for_update()
        found = conn.execute(q).scalar()
        if found is None:
            raise errors.NotFound(f"No virtual key with id '{key_id}'.")
        return str(found)
