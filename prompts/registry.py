"""PromptRegistry: the facade the gateway and the CLI use."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prompts import queries, store
from prompts.cache import RegistryCache
from prompts.db import create_engine
from prompts.diff import VersionDiff, diff_versions
from prompts.errors import GateRefused, InvalidPrompt, PromptError
from prompts.files import SyncReport, sync_folder
from prompts.invalidation import GenerationPoller
from prompts.migrations import migrate
from prompts.models import (
    PRODUCTION,
    Gate,
    LabelMove,
    MoveResult,
    PromptRef,
    PromptSpec,
    PromptSummary,
    PromptVersion,
    PushResult,
    RenderedPrompt,
    VersionSummary,
)
from prompts.rendering import CompiledPrompt
from prompts.validation import check_actor, check_label, parse_spec

if TYPE_CHECKING:
    from prompts.redis_channel import RedisInvalidation

DEFAULT_CHANNEL = "llmops:prompts:invalidate"


def _run_gate(gate: Gate, name: str, version: int, label: str) -> None:
    try:
        gate(name, version, label)
    except PromptError:
        raise
    except Exception as exc:
        raise GateRefused(f"moving label '{label}' of prompt '{name}' to v{version} was refused: {exc}") from exc


class PromptRegistry:
    """Versioned prompt store with a cached read path. Thread-safe; synchronous.

    Writes made through this instance invalidate its cache at once. Writes
    made elsewhere (other replicas, the CLI) are picked up by:

    * a background thread polling a generation counter in the database every
      ``poll_interval_s``: staleness <= ``poll_interval_s`` + one query;
    * with ``redis_url``: a pub/sub subscription, staleness ~ one round trip.
      Polling stays useful as the backstop for lost messages.

    ``poll_interval_s=0`` without Redis means only :meth:`refresh` invalidates.
    ``cache_labels=False`` resolves labels from the database on every call
    (for short-lived processes such as the CLI) and starts no threads; it
    still publishes its own writes to Redis.
    """

    def __init__(
        self,
        database_url: str,
        *,
        redis_url: str | None = None,
        redis_channel: str = DEFAULT_CHANNEL,
        poll_interval_s: float = 0.5,
        cache_labels: bool = True,
        max_compiled: int = 1024,
        gate: Gate | None = None,
        busy_timeout_ms: int = 30_000,
    ) -> None:
        self._engine = create_engine(database_url, busy_timeout_ms=busy_timeout_ms)
        self._gate = gate
        self._cache = RegistryCache(max_compiled)
        self._cache_labels = cache_labels
        self._poller: GenerationPoller | None = None
        self._redis: RedisInvalidation | None = None  # see prompts.redis_channel
        try:
            migrate(self._engine)
            if cache_labels:
                self._poller = GenerationPoller(
                    lambda: queries.generation(self._engine), self._cache.invalidate, poll_interval_s
                )
            if redis_url:
                from prompts.redis_channel import RedisInvalidation  # lazy: redis costs ~0.8 s to import

                self._redis = RedisInvalidation(redis_url, redis_channel, self._cache.invalidate, listen=cache_labels)
        except BaseException:
            self.close()
            raise

    # -- lifecycle -----------------------------------------------------------

    def close(self) -> None:
        if self._poller is not None:
            self._poller.close()
        if self._redis is not None:
            self._redis.close()
        self._engine.dispose()

    def __enter__(self) -> PromptRegistry:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def refresh(self) -> bool:
        """Check the generation counter now; True if the cache was flushed."""
        if self._poller is None:
            self._cache.invalidate()
            return True
        return self._poller.check()

    def invalidation_ready(self, timeout: float = 5.0) -> bool:
        """True once the Redis subscription is live (always True without Redis)."""
        return self._redis is None or not self._cache_labels or self._redis.wait_ready(timeout)

    # -- writes --------------------------------------------------------------

    def push(self, spec: PromptSpec | Mapping[str, Any], *, actor: str, note: str | None = None) -> PushResult:
        """Store a new version, or return the identical existing one (created=False)."""
        parsed = parse_spec(spec)
        record, created = store.push(self._engine, parsed, actor=check_actor(actor), note=note)
        if created:
            self._changed(parsed.name)  # 'latest' moved
        return PushResult(version=record, created=created)

    def move_label(
        self, name: str, label: str, version: int, *, actor: str, reason: str | None = None,
        gate: Gate | None = None,
    ) -> MoveResult:
        """Point ``label`` at ``version`` (promotion, or a manual roll back/forward)."""
        check_label(label)
        check_actor(actor)
        self.get(name, version=version)  # 404s before a gate evaluates a version that does not exist
        gate = gate or self._gate
        if gate is not None:
            _run_gate(gate, name, version, label)
        result = store.move_label(self._engine, name, label, version, actor=actor, reason=reason)
        if result.moved:
            self._changed(name)
        return result

    def rollback(
        self, name: str, label: str, *, actor: str, reason: str | None = None, gate: Gate | None = None,
    ) -> MoveResult:
        """Move ``label`` back to the version it pointed to before its last move."""
        check_actor(actor)
        gate = gate or self._gate
        expected = None
        if gate is not None:
            expected = queries.rollback_target(self._engine, name, label)
            _run_gate(gate, name, expected, label)
        result = store.rollback(self._engine, name, label, actor=actor, reason=reason, expected_target=expected)
        if result.moved:
            self._changed(name)
        return result

    def sync_folder(self, path: str | Path, *, actor: str, gate: Gate | None = None) -> SyncReport:
        return sync_folder(self, path, actor=actor, gate=gate)

    def _changed(self, name: str) -> None:
        self._cache.invalidate(name)
        if self._redis is not None:
            self._redis.publish(name)

    # -- reads ---------------------------------------------------------------

    def resolve(self, name: str, label: str) -> int:
        """The version ``label`` (or the pseudo-label 'latest') points to."""
        if not self._cache_labels:
            return queries.resolve_label(self._engine, name, label)
        version = self._cache.label(name, label)
        if version is None:
            epoch = self._cache.epoch
            version = queries.resolve_label(self._engine, name, label)
            self._cache.put_label(name, label, version, epoch)
        return version

    def compiled(self, name: str, *, version: int | None = None, label: str | None = None) -> CompiledPrompt:
        """Version by number, else by label; neither means the 'production' label."""
        if version is None:
            version = self.resolve(name, label or PRODUCTION)
        elif label is not None:
            raise InvalidPrompt("give either version or label, not both")
        compiled = self._cache.compiled(name, version)
        if compiled is None:
            compiled = CompiledPrompt(queries.get_version(self._engine, name, version))
            self._cache.put_compiled(compiled)
        return compiled

    def get(self, name: str, *, version: int | None = None, label: str | None = None) -> PromptVersion:
        return self.compiled(name, version=version, label=label).version

    def render(
        self, name: str, variables: Mapping[str, Any] | None = None, *,
        version: int | None = None, label: str | None = None,
    ) -> RenderedPrompt:
        return self.compiled(name, version=version, label=label).render(variables)

    def render_ref(self, ref: PromptRef, variables: Mapping[str, Any] | None = None) -> RenderedPrompt:
        return self.render(ref.name, variables, version=ref.version, label=ref.label)

    def list_prompts(self) -> list[PromptSummary]:
        return queries.list_prompts(self._engine)

    def list_versions(self, name: str) -> list[VersionSummary]:
        return queries.list_versions(self._engine, name)

    def labels(self, name: str) -> dict[str, int]:
        return queries.labels(self._engine, name)

    def history(self, name: str, *, label: str | None = None, limit: int = 100) -> list[LabelMove]:
        return queries.history(self._engine, name, label=label, limit=limit)

    def diff(self, name: str, from_version: int, to_version: int) -> VersionDiff:
        return diff_versions(self.get(name, version=from_version), self.get(name, version=to_version))
