"""Read cache and its invalidation: local writes, generation counter, Redis pub/sub."""

from __future__ import annotations

import uuid

from prompt_test_helpers import OpenRegistry, make_spec, wait_until

from prompts.registry import PromptRegistry


def _two_versions(registry: PromptRegistry) -> None:
    registry.push(make_spec(system="v1"), actor="a")
    registry.push(make_spec(system="v2"), actor="a")
    registry.move_label("greet", "production", 1, actor="a")


def _served(registry: PromptRegistry) -> int:
    return registry.render("greet", {"question": "q"}, label="production").version


def test_local_writes_invalidate_immediately(sqlite_registry: PromptRegistry) -> None:
    _two_versions(sqlite_registry)
    assert _served(sqlite_registry) == 1
    sqlite_registry.move_label("greet", "production", 2, actor="a")
    assert _served(sqlite_registry) == 2
    sqlite_registry.rollback("greet", "production", actor="a")
    assert _served(sqlite_registry) == 1
    assert sqlite_registry.get("greet", label="latest").version == 2
    sqlite_registry.push(make_spec(system="v3"), actor="a")
    assert sqlite_registry.get("greet", label="latest").version == 3


def test_generation_counter_invalidates_another_instance(db_url: str, open_registry: OpenRegistry) -> None:
    writer = open_registry(db_url)
    reader = open_registry(db_url)  # poller thread off: we drive the check by hand
    _two_versions(writer)
    assert _served(reader) == 1

    writer.move_label("greet", "production", 2, actor="a")

    assert _served(reader) == 1  # served from the cache until the next generation check
    assert reader.refresh() is True
    assert _served(reader) == 2
    assert reader.refresh() is False  # nothing changed since


def test_generation_poller_thread_picks_up_moves(sqlite_url: str, open_registry: OpenRegistry) -> None:
    writer = open_registry(sqlite_url)
    reader = open_registry(sqlite_url, poll_interval_s=0.05)
    _two_versions(writer)
    assert _served(reader) == 1

    writer.move_label("greet", "production", 2, actor="a")

    wait_until(lambda: _served(reader) == 2, what="the poller to see the label move")


def test_redis_pubsub_invalidates_another_instance(sqlite_url: str, redis_url: str, open_registry: OpenRegistry) -> None:
    channel = f"test:prompts:{uuid.uuid4().hex}"
    # Pollers off: only a Redis message can invalidate the reader.
    writer = open_registry(sqlite_url, redis_url=redis_url, redis_channel=channel)
    reader = open_registry(sqlite_url, redis_url=redis_url, redis_channel=channel)
    assert reader.invalidation_ready(timeout=10)
    _two_versions(writer)
    assert _served(reader) == 1

    writer.move_label("greet", "production", 2, actor="a")
    wait_until(lambda: _served(reader) == 2, what="the Redis invalidation of the label move")

    writer.rollback("greet", "production", actor="a")
    wait_until(lambda: _served(reader) == 1, what="the Redis invalidation of the rollback")


def test_cli_style_registry_reads_labels_uncached(sqlite_url: str, open_registry: OpenRegistry) -> None:
    writer = open_registry(sqlite_url)
    reader = open_registry(sqlite_url, cache_labels=False)
    _two_versions(writer)
    assert _served(reader) == 1
    writer.move_label("greet", "production", 2, actor="a")
    assert _served(reader) == 2
