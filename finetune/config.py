"""Settings for the processes that run without the gateway (worker, CLI): the same YAML file.

The gateway mounts `FinetuneSettings` as `finetune:` in its settings tree; a worker reads that
section and `storage.database_url` from the same file, with the same `LLMOPS_<SECTION>__<KEY>`
environment overrides. `LLMOPS_FINETUNE_DB` names the database outright.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict, YamlConfigSettingsSource

from finetune.settings import FinetuneSettings

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = ROOT / "configs" / "gateway.yaml"
DB_ENV = "LLMOPS_FINETUNE_DB"


class _Storage(BaseModel):
    model_config = ConfigDict(extra="ignore")
    database_url: str = "sqlite:///var/llmops.db"


class _Standalone(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LLMOPS_", env_nested_delimiter="__", extra="ignore")

    finetune: FinetuneSettings = FinetuneSettings()
    storage: _Storage = _Storage()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, YamlConfigSettingsSource(settings_cls))


def anchored(url: str, root: Path = ROOT) -> str:
    """A relative SQLite path is under the repo root, as the gateway reads it."""
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url.startswith(prefix + "/"):
        path = root / url[len(prefix):]
        path.parent.mkdir(parents=True, exist_ok=True)
        return f"{prefix}{path}"
    return url


def load(config: Path | None = None) -> tuple[FinetuneSettings, str]:
    """(settings, database URL) from the gateway's YAML file and the environment."""
    path = config or Path(os.environ.get("LLMOPS_CONFIG", DEFAULT_CONFIG))
    bound = type("Bound", (_Standalone,), {"model_config": {**_Standalone.model_config, "yaml_file": path}})
    loaded = bound()
    url = os.environ.get(DB_ENV) or loaded.storage.database_url
    return loaded.finetune, anchored(url)
