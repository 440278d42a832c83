"""Virtual keys as the request path sees them: a cached secret → principal lookup.

A replica trusts a cached lookup for `ttl_s`. Revoke and rotate forget the old hash at once on
the replica that made the change, and, with Redis, on every replica through pub/sub; without
Redis the TTL bounds how long another replica keeps accepting a revoked secret. Unknown
secrets are cached too, so a client hammering with a bad key costs no database query.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from typing import Protocol

from sqlalchemy.exc import SQLAlchemyError

from gateway import errors
from gateway.auth import Principal
from gateway.governance.keystore import KEY_PREFIX, KeyRepository, hash_secret
from gateway.governance.models import IssuedKey, KeySpec, VirtualKey
from gateway.governance.quota import Limits

# (principal or None for "no such key", key expiry as epoch seconds, cache deadline as monotonic)
_Entry = tuple[Principal | None, float, float]


class Publisher(Protocol):
    def publish(self, name: str) -> None: ...
    def close(self) -> None: ...


def to_principal(key: VirtualKey) -> Principal:
    return Principal(
        key_id=key.id,
        role="client",
        name=key.name,
        models=frozenset(key.models) if key.models is not None else None,
        tenant=key.tenant,
        metadata=dict(key.metadata),
        team=key.team,
        routes=frozenset(key.routes) if key.routes is not None else None,
        rails_policy=key.rails_policy,
        limits=Limits(rpm=key.rpm, tpm=key.tpm, budget=key.budget),
    )


class VirtualKeys:
    def __init__(
        self,
        repo: KeyRepository,
        *,
        ttl_s: float,
        max_entries: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.repo = repo
        self._ttl = ttl_s
        self._max = max_entries
        self._clock = clock
        self._wall = wall
        self._cache: dict[str, _Entry] = {}
        self._loading: dict[str, asyncio.Future[_Entry]] = {}
        self._publisher: Publisher | None = None

    def attach(self, publisher: Publisher) -> None:
        """Tell other replicas about revocations (and hear theirs through `invalidate`)."""
        self._publisher = publisher

    # -- request path -------------------------------------------------------------------

    @staticmethod
    def handles(secret: str) -> bool:
        """Virtual keys carry a prefix, so static keys never cost a lookup here."""
        return secret.startswith(KEY_PREFIX)

    def lookup(self, secret: str) -> Principal | None:
        if not self.handles(secret):
            return None
        key_hash = hash_secret(secret)
        entry = self._fresh(key_hash)
        if entry is None:
            entry = self._load(key_hash)
        return self._valid(entry)

    async def alookup(self, secret: str) -> Principal | None:
        """As `lookup`; a cache miss goes to the database in a thread, once per hash at a time."""
        if not self.handles(secret):
            return None
        key_hash = hash_secret(secret)
        entry = self._fresh(key_hash)
        if entry is None:
            pending = self._loading.get(key_hash)
            if pending is None:
                pending = asyncio.ensure_future(asyncio.to_thread(self._load, key_hash))
                self._loading[key_hash] = pending
                pending.add_done_callback(lambda _f: self._loading.pop(key_hash, None))
            entry = await asyncio.shield(pending)
        return self._valid(entry)

    def invalidate(self, key_hash: str | None) -> None:
        """Forget one hash, or everything (None); called locally and from other replicas."""
        if key_hash is None:
            self._cache.clear()
        else:
            self._cache.pop(key_hash, None)

    def _fresh(self, key_hash: str) -> _Entry | None:
        entry = self._cache.get(key_hash)
        if entry is None or entry[2] <= self._clock():
            return None
        return entry

    def _valid(self, entry: _Entry) -> Principal | None:
        principal, expires, _ = entry
        # Expiry is checked on every call: the cache may hold a key past the instant it expires.
        if principal is None or expires <= self._wall():
            return None
        return principal

    def _load(self, key_hash: str) -> _Entry:
        try:
            key = self.repo.find_active(key_hash)
        except SQLAlchemyError as exc:
            raise errors.ServiceUnavailable("The key store is unavailable; try again shortly.") from exc
        if key is None:
            entry: _Entry = (None, 0.0, self._clock() + self._ttl)
        else:
            expires = key.expires_at.timestamp() if key.expires_at else math.inf
            entry = (to_principal(key), expires, self._clock() + self._ttl)
        if len(self._cache) >= self._max:
            self._cache.clear()  # crude but bounded; refills at one query per active key
        self._cache[key_hash] = entry
        return entry

    # -- administration -----------------------------------------------------------------

    def create(self, spec: KeySpec, *, actor: str) -> IssuedKey:
        return self.repo.create(spec, actor=actor)

    def get(self, key_id: str) -> VirtualKey:
        return self.repo.get(key_id)

    def list_keys(
        self, *, team: str | None = None, include_revoked: bool = False, limit: int = 100, cursor: str | None = None,
    ) -> tuple[list[VirtualKey], str | None]:
        return self.repo.list_keys(team=team, include_revoked=include_revoked, limit=limit, cursor=cursor)

    def revoke(self, key_id: str, *, actor: str) -> VirtualKey:
        record, key_hash = self.repo.revoke(key_id, actor=actor)
        self._forget(key_hash)
        return record

    def rotate(self, key_id: str, *, actor: str) -> IssuedKey:
        issued, old_hash = self.repo.rotate(key_id, actor=actor)
        self._forget(old_hash)
        return issued

    def _forget(self, key_hash: str) -> None:
        self.invalidate(key_hash)
        if self._publisher is not None:
            self._publisher.publish(key_hash)

    def close(self) -> None:
        if self._publisher is not None:
            self._publisher.close()
