"""`governance:` in the settings tree: keys, limits, prices, request log, tracing, metrics."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

BudgetPeriod = Literal["day", "week", "month", "total"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Budget(_Strict):
    """A spend cap in USD (priced from `governance.prices`) over a calendar period (UTC)."""

    amount: float = Field(ge=0, description="USD per period.")
    period: BudgetPeriod = "month"


class Price(_Strict):
    input: float = Field(default=0.0, ge=0, description="USD per 1M prompt tokens.")
    output: float = Field(default=0.0, ge=0, description="USD per 1M completion tokens.")


class TeamLimits(_Strict):
    rpm: int | None = Field(default=None, ge=0, description="Requests per minute for the whole team.")
    tpm: int | None = Field(default=None, ge=0, description="Tokens per minute for the whole team.")
    budget: Budget | None = None


class TracingSettings(_Strict):
    exporter: Literal["none", "console", "otlp", "memory"] = "none"
    endpoint: str | None = Field(default=None, description="OTLP/HTTP traces URL, e.g. http://127.0.0.1:4318/v1/traces.")
    headers: dict[str, str] = Field(default_factory=dict, description="Extra OTLP headers (auth).")
    capture_content: bool = Field(default=False, description="Put prompt and answer text in span events.")
    service_name: str = "llmops-gateway"

    @model_validator(mode="after")
    def _endpoint(self) -> TracingSettings:
        if self.exporter == "otlp" and not self.endpoint:
            raise ValueError("tracing.endpoint is required when tracing.exporter is 'otlp'")
        return self


class GovernanceSettings(_Strict):
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL for keys, audit and request log; None: SQLite file under data_dir."
    )
    redis_url: str | None = Field(default=None, description="Shared limit counters for several replicas; None: in process.")
    redis_prefix: str = Field(default="llmops:gov", description="Prefix of every Redis key and channel.")
    redis_timeout_s: float = Field(
        default=2.0, gt=0, description="Longest wait for a Redis connection, connect or reply before a check fails."
    )
    redis_max_connections: int = Field(default=32, ge=1, description="Redis connections per replica for limit checks.")
    limits_fail_open: bool = Field(
        default=False, description="Admit requests when Redis is unreachable (default: answer 503 instead)."
    )
    prices: dict[str, Price] = Field(
        default_factory=dict, description="Per-model prices; the key '*' prices models not listed."
    )
    teams: dict[str, TeamLimits] = Field(default_factory=dict, description="Limits shared by a team's keys.")
    default_max_tokens: int = Field(
        default=1024, ge=1, description="Completion tokens reserved when a request sets no max_tokens."
    )
    key_cache_ttl_s: float = Field(default=5.0, ge=0, description="How long a replica trusts a cached key lookup.")
    log_content: bool = Field(default=False, description="Store (masked) request messages and answers in the log.")
    retention_days: int = Field(default=30, ge=1, description="Request-log rows older than this are purged.")
    purge_interval_s: float = Field(default=3600.0, gt=0)
    log_queue_size: int = Field(default=10_000, ge=1, description="Records waiting to be written; more are dropped.")
    log_batch_size: int = Field(default=500, ge=1)
    log_flush_interval_s: float = Field(default=0.2, gt=0, description="Longest wait to fill a batch.")
    tracing: TracingSettings = TracingSettings()
    metrics_public: bool = Field(default=False, description="Serve /metrics without an admin key.")

    @property
    def keys_channel(self) -> str:
        """Redis pub/sub channel on which replicas announce revoked key hashes."""
        return f"{self.redis_prefix.rstrip(':')}:keys:invalidate"

    def resolved_database_url(self, data_dir: Path) -> str:
        return self.database_url or default_database_url(data_dir)


def default_database_url(data_dir: Path) -> str:
    return f"sqlite:///{(data_dir / 'governance.db').resolve()}"
