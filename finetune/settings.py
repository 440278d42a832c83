"""The `finetune:` section of the gateway's settings tree (also read on its own by the worker)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BaseModelSpec(_Strict):
    """A model that jobs may fine-tune: a folder holding its weights (GGUF or safetensors) and tokenizer."""

    path: str = Field(description="Folder of the model (relative paths are under the repo root).")
    gguf_file: str | None = Field(None, description="GGUF file inside `path`; None: the first *.gguf, else safetensors.")


class LoraSettings(_Strict):
    rank: int = Field(8, ge=1, le=256)
    alpha: float | None = Field(None, gt=0, description="None: twice the rank.")
    dropout: float = Field(0.0, ge=0, lt=1)
    target_modules: list[str] | Literal["all-linear"] = "all-linear"


class HyperparameterDefaults(_Strict):
    """What `"auto"` means for OpenAI's hyper-parameters on this hardware."""

    n_epochs: int = Field(3, ge=1, le=50)
    batch_size: int = Field(4, ge=1, le=256)
    learning_rate_multiplier: float = Field(1.0, gt=0)
    base_learning_rate: float = Field(
        5e-4, gt=0, description="LoRA learning rate at multiplier 1 (AdamW, constant schedule)."
    )


class DetectorSettings(_Strict):
    baseline_metrics: str = Field(
        "guardrails/injection/artifacts/injection-v9.metrics.json",
        description="Held-out metrics a retrained injection detector must not regress from.",
    )
    tolerance: float = Field(0.01, ge=0, le=1, description="Allowed drop in a TPR (rise in an FPR), absolute.")
    seed: int = 13


class FinetuneSettings(_Strict):
    data_dir: str = Field("var/finetune", description="Job folders: checkpoints, merged candidates.")
    models_dir: str = Field(
        "var/finetune/models",
        description="Published model folders; the local model server binds each new one (shared storage "
        "when workers and Triton run on different machines).",
    )
    base_models: dict[str, BaseModelSpec] = Field(
        default_factory=lambda: {"smollm2": BaseModelSpec(path="models/smollm2")},
        description="Public model name → the weights a job fine-tunes.",
    )
    hyperparameters: HyperparameterDefaults = HyperparameterDefaults()
    lora: LoraSettings = LoraSettings()
    max_seq_len: int = Field(1024, ge=16, description="Longer examples are cut (their tail is lost).")
    min_examples: int = Field(1, ge=1, description="A training file needs at least this many examples.")
    checkpoint_every_steps: int | None = Field(None, ge=1, description="None: at the end of each epoch.")
    keep_checkpoints: int = Field(3, ge=1, description="Older checkpoint folders are deleted.")
    heartbeat_interval_s: float = Field(5.0, gt=0)
    stale_after_s: float = Field(60.0, gt=0, description="A running job without a heartbeat this long is reaped.")
    max_attempts: int = Field(2, ge=1, description="Runs of one job before a lost worker fails it for good.")
    poll_interval_s: float = Field(2.0, gt=0, description="How often an idle worker looks for queued jobs.")
    route_poll_interval_s: float = Field(2.0, gt=0, description="How often the gateway looks for new models.")
    eval_gate: dict[str, str] = Field(
        default_factory=dict,
        description="Base model → eval suite a candidate must pass before it is registered "
        "(a job's `llmops.eval_suite` wins).",
    )
    threads: int | None = Field(None, ge=1, description="torch threads in the worker (None: every CPU).")
    detector: DetectorSettings = DetectorSettings()

    def resolve(self, path: str, root: Path) -> Path:
        p = Path(path)
        return p if p.is_absolute() else root / p
