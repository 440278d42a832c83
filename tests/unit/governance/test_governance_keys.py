"""Virtual keys: lifecycle, hashing at rest, expiry, revocation and rotation through the cache, scopes."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from governance_test_helpers import FakeClock, opened, repository, wait_until

from gateway import errors
from gateway.auth import Principal, check_model_access
from gateway.governance.keys import VirtualKeys
from gateway.governance.keystore import KEY_PREFIX, KeyRepository, hash_secret
from gateway.governance.models import KeySpec
from gateway.governance.principal import check_route, limits_of, rails_policy_of, team_of
from gateway.governance.settings import Budget, GovernanceSettings

ACTOR = "static-admin"


def _dump_database(engine: sa.Engine) -> str:
    """Every value of every table, as one string: what an attacker with the database would see."""
    parts: list[str] = []
    with engine.connect() as conn:
        for table in sa.inspect(conn).get_table_names():
            for row in conn.execute(sa.text(f'SELECT * FROM "{table}"')):
                parts.extend(str(v) for v in row)
    return "\n".join(parts)


def test_create_returns_secret_once_and_stores_only_its_hash(db_url: str) -> None:
    with opened(db_url) as engine:
        repo = KeyRepository(engine)
        issued = repo.create(KeySpec(name="ci", team="search", rpm=10), actor=ACTOR)
        rotated, _ = repo.rotate(issued.record.id, actor=ACTOR)
        dump = _dump_database(engine)
    for secret in (issued.key, rotated.key):
        assert secret.startswith(KEY_PREFIX) and len(secret) == len(KEY_PREFIX) + 32
        assert secret not in dump
        assert secret[len(KEY_PREFIX):] not in dump  # not even the random part
    assert hash_secret(rotated.key) in dump
    assert "key" not in issued.record.model_dump()


def test_lookup_builds_a_principal_with_scopes_and_limits(db_url: str) -> None:
    spec = KeySpec(
        name="app", owner="ana@example.com", team="search", tenant="acme", models=["m1"],
        routes=["/v1/chat/completions"], rails_policy="strict", rpm=5, tpm=100,
        budget=Budget(amount=2.5, period="week"), metadata={"env": "prod"},
    )
    with repository(db_url) as repo:
        issued = repo.create(spec, actor=ACTOR)
        principal = VirtualKeys(repo, ttl_s=60).lookup(issued.key)
    assert isinstance(principal, Principal)
    assert (principal.key_id, principal.role, principal.name) == (issued.record.id, "client", "app")
    assert principal.tenant == "acme" and principal.metadata == {"env": "prod"}
    assert team_of(principal) == "search" and rails_policy_of(principal) == "strict"
    limits = limits_of(principal)
    assert (limits.rpm, limits.tpm, limits.budget) == (5, 100, Budget(amount=2.5, period="week"))
    check_model_access(principal, "m1")
    with pytest.raises(errors.PermissionDenied):
        check_model_access(principal, "m2")
    check_route(principal, "/v1/chat/completions")
    with pytest.raises(errors.PermissionDenied):
        check_route(principal, "/v1/embeddings")


def test_unknown_and_foreign_secrets_are_rejected(sqlite_url: str) -> None:
    with repository(sqlite_url) as repo:
        keys = VirtualKeys(repo, ttl_s=60)
        assert keys.lookup(KEY_PREFIX + "x" * 32) is None
        assert keys.lookup("sk-some-static-key") is None  # not ours: no lookup at all


def test_expiry_is_checked_on_every_lookup_even_when_cached(sqlite_url: str) -> None:
    wall = FakeClock(datetime(2026, 1, 1, tzinfo=UTC).timestamp())
    with repository(sqlite_url) as repo:
        issued = repo.create(KeySpec(name="short", expires_at=datetime(2026, 1, 1, 1, tzinfo=UTC)), actor=ACTOR)
        keys = VirtualKeys(repo, ttl_s=3600, wall=wall)
        assert keys.lookup(issued.key) is not None
        wall.advance(3600)
        assert keys.lookup(issued.key) is None
        assert repo.get(issued.record.id).status(datetime(2026, 1, 1, 2, tzinfo=UTC)) == "expired"


def test_naive_expiry_is_taken_as_utc() -> None:
    spec = KeySpec(name="n", expires_at=datetime(2030, 1, 1))
    assert spec.expires_at == datetime(2030, 1, 1, tzinfo=UTC)


def test_revoke_invalidates_the_cache_at_once(db_url: str) -> None:
    with repository(db_url) as repo:
        keys = VirtualKeys(repo, ttl_s=3600)
        issued = keys.create(KeySpec(name="gone"), actor=ACTOR)
        assert keys.lookup(issued.key) is not None  # now cached for an hour
        record = keys.revoke(issued.record.id, actor=ACTOR)
        assert record.status() == "revoked"
        assert keys.lookup(issued.key) is None
        again = keys.revoke(issued.record.id, actor=ACTOR)  # idempotent
        assert again.revoked_at == record.revoked_at
        with pytest.raises(errors.Conflict):
            keys.rotate(issued.record.id, actor=ACTOR)


def test_rotate_keeps_id_and_settings_and_kills_the_old_secret(db_url: str) -> None:
    with repository(db_url) as repo:
        keys = VirtualKeys(repo, ttl_s=3600)
        issued = keys.create(KeySpec(name="rot", team="t", rpm=7), actor=ACTOR)
        assert keys.lookup(issued.key) is not None
        rotated = keys.rotate(issued.record.id, actor=ACTOR)
        assert rotated.key != issued.key
        assert rotated.record.id == issued.record.id and rotated.record.rpm == 7
        assert rotated.record.rotated_at is not None
        assert keys.lookup(issued.key) is None
        principal = keys.lookup(rotated.key)
        assert principal is not None and principal.key_id == issued.record.id


def test_another_replica_keeps_a_revoked_key_only_until_its_ttl(sqlite_url: str) -> None:
    clock = FakeClock(0)
    with repository(sqlite_url) as repo:
        replica_a, replica_b = VirtualKeys(repo, ttl_s=5), VirtualKeys(repo, ttl_s=5, clock=clock)
        issued = replica_a.create(KeySpec(name="k"), actor=ACTOR)
        assert replica_b.lookup(issued.key) is not None
        replica_a.revoke(issued.record.id, actor=ACTOR)
        assert replica_b.lookup(issued.key) is not None  # cached: the documented staleness
        clock.advance(5)
        assert replica_b.lookup(issued.key) is None


def test_redis_tells_other_replicas_to_forget_at_once(sqlite_url: str, redis_url: str, redis_prefix: str) -> None:
    from prompts.redis_channel import RedisInvalidation

    channel = GovernanceSettings(redis_prefix=redis_prefix).keys_channel
    with repository(sqlite_url) as repo:
        replicas = [VirtualKeys(repo, ttl_s=3600) for _ in range(2)]
        buses = [RedisInvalidation(redis_url, channel, r.invalidate, listen=True) for r in replicas]
        for replica, bus in zip(replicas, buses, strict=True):
            replica.attach(bus)
        try:
            assert all(bus.wait_ready(10) for bus in buses)
            issued = replicas[0].create(KeySpec(name="k"), actor=ACTOR)
            assert all(r.lookup(issued.key) is not None for r in replicas)
            replicas[0].revoke(issued.record.id, actor=ACTOR)
            wait_until(lambda: replicas[1].lookup(issued.key) is None, what="replica 2 to drop the revoked key")
        finally:
            for r in replicas:
                r.close()


async def test_async_lookup_coalesces_misses(sqlite_url: str) -> None:
    with repository(sqlite_url) as repo:
        issued = repo.create(KeySpec(name="k"), actor=ACTOR)
        calls = 0
        original = repo.find_active

        def counting(key_hash: str):  # type: ignore[no-untyped-def]
            nonlocal calls
            calls += 1
            return original(key_hash)

        repo.find_active = counting  # type: ignore[method-assign]
        keys = VirtualKeys(repo, ttl_s=60)
        found = await asyncio.gather(*(keys.alookup(issued.key) for _ in range(20)))
        assert all(p is not None and p.key_id == issued.record.id for p in found)
        assert calls == 1


def test_every_change_is_audited_without_secrets(db_url: str) -> None:
    from gateway.governance.audit import AuditLog

    with opened(db_url) as engine:
        repo = KeyRepository(engine)
        issued = repo.create(KeySpec(name="a", metadata={"x": "y"}), actor=ACTOR)
        rotated, _ = repo.rotate(issued.record.id, actor="someone-else")
        repo.revoke(issued.record.id, actor=ACTOR)
        page = AuditLog(engine).list()
    actions = [(e["action"], e["actor"], e["target_id"]) for e in page.data]
    assert actions == [
        ("key.revoke", ACTOR, issued.record.id),
        ("key.rotate", "someone-else", issued.record.id),
        ("key.create", ACTOR, issued.record.id),
    ]
    assert page.data[2]["detail"]["name"] == "a"
    text = str(page.data)
    assert issued.key not in text and rotated.key not in text


def test_listing_pages_and_hides_revoked(sqlite_url: str) -> None:
    with repository(sqlite_url) as repo:
        ids = [repo.create(KeySpec(name=f"k{i}", team="t" if i % 2 else None), actor=ACTOR).record.id for i in range(5)]
        repo.revoke(ids[0], actor=ACTOR)
        first, cursor = repo.list_keys(limit=2)
        second, cursor2 = repo.list_keys(limit=2, cursor=cursor)
        assert [k.id for k in first + second] == ids[:0:-1]
        assert cursor2 is None
        assert len(repo.list_keys(include_revoked=True)[0]) == 5
        assert {k.id for k in repo.list_keys(team="t")[0]} == {ids[1], ids[3]}


def test_get_unknown_key_is_404(sqlite_url: str) -> None:
    with repository(sqlite_url) as repo, pytest.raises(errors.NotFound):
        repo.get("vk-missing")


def test_spec_rejects_unknown_fields_and_bad_routes() -> None:
    with pytest.raises(ValueError):
        KeySpec.model_validate({"name": "x", "rpm_limit": 3})
    with pytest.raises(ValueError):
        KeySpec(name="x", routes=["v1/chat"])
    assert KeySpec(name="x", expires_at=datetime.now(UTC) + timedelta(days=1)).expires_at is not None
