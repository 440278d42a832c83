"""Wire models: OpenAI's file and fine-tuning objects (fields in OpenAI's order), our requests.

Requests mirror OpenAI and accept unknown fields as OpenAI does (the router logs them); our own
extension travels in one object, `llmops`, which is strict. Stored records are `extra="forbid"`.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

JobStatus = Literal["validating_files", "queued", "running", "succeeded", "failed", "cancelled"]
FINISHED: frozenset[str] = frozenset({"succeeded", "failed", "cancelled"})
SUFFIX = re.compile(r"^[A-Za-z0-9_-]{1,40}$")


class _Wire(BaseModel):
    model_config = ConfigDict(extra="allow")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# ----------------------------------------------------------------------------------------- files
class FileObject(_Strict):
    id: str
    object: Literal["file"] = "file"
    bytes: int
    created_at: int
    expires_at: int | None = None
    filename: str
    purpose: str
    status: Literal["uploaded", "processed", "error"] = "processed"
    status_details: str | None = None


class FileDeleted(_Strict):
    id: str
    object: Literal["file"] = "file"
    deleted: bool = True


# ----------------------------------------------------------------------------------------- jobs
class HyperparametersIn(_Wire):
    batch_size: int | Literal["auto"] | None = Field(None, description="Examples per optimizer step.")
    learning_rate_multiplier: float | Literal["auto"] | None = None
    n_epochs: int | Literal["auto"] | None = None

    @field_validator("batch_size", "n_epochs")
    @classmethod
    def _positive(cls, v: int | str | None) -> int | str | None:
        if isinstance(v, int) and not 1 <= v <= 256:
            raise ValueError("must be between 1 and 256")
        return v

    @field_validator("learning_rate_multiplier")
    @classmethod
    def _lr(cls, v: float | str | None) -> float | str | None:
        if isinstance(v, float | int) and not 0 < v <= 100:
            raise ValueError("must be greater than 0 and at most 100")
        return v


class Hyperparameters(_Strict):
    """Resolved values, as the job object reports them."""

    batch_size: int
    learning_rate_multiplier: float
    n_epochs: int


class MethodIn(_Wire):
    type: str = "supervised"
    supervised: dict[str, Any] | None = None


class JobExtensions(_Strict):
    """`llmops`: what OpenAI's request has no field for. Every field is optional."""

    lora_rank: int | None = Field(None, ge=1, le=256, description="LoRA rank (default finetune.lora.rank).")
    lora_alpha: float | None = Field(None, gt=0, description="LoRA alpha (default: twice the rank).")
    lora_dropout: float | None = Field(None, ge=0, lt=1)
    target_modules: list[str] | None = Field(None, description="Module names LoRA adapts (default all linear).")
    max_seq_len: int | None = Field(None, ge=16, le=32768, description="Longer examples are cut.")
    max_steps: int | None = Field(None, ge=1, description="Stop after this many optimizer steps.")
    checkpoint_every_steps: int | None = Field(None, ge=1, description="Default: at each epoch's end.")
    eval_suite: str | None = Field(None, description="Eval suite the candidate must pass before it is registered.")


class JobCreate(_Wire):
    model: str = Field(min_length=1, max_length=128)
    training_file: str = Field(min_length=1, max_length=64)
    hyperparameters: HyperparametersIn | None = None
    suffix: str | None = None
    validation_file: str | None = None
    integrations: list[dict[str, Any]] | None = None
    seed: int | None = Field(None, ge=0, le=2**31 - 1)
    method: MethodIn | None = None
    metadata: dict[str, str] | None = None
    llmops: JobExtensions | None = None

    @field_validator("suffix")
    @classmethod
    def _suffix(cls, v: str | None) -> str | None:
        if v is not None and not SUFFIX.match(v):
            raise ValueError("use 1 to 40 letters, digits, '-' or '_'")
        return v

    @model_validator(mode="after")
    def _metadata(self) -> JobCreate:
        for k, val in (self.metadata or {}).items():
            if len(k) > 64 or len(val) > 512:
                raise ValueError("metadata keys are at most 64 characters, values at most 512")
        return self


class JobError(_Strict):
    code: str
    message: str
    param: str | None = None


class FineTuningJob(_Strict):
    id: str
    object: Literal["fine_tuning.job"] = "fine_tuning.job"
    created_at: int
    error: JobError | None = None
    fine_tuned_model: str | None = None
    finished_at: int | None = None
    hyperparameters: Hyperparameters
    model: str
    organization_id: str = "llmops"
    result_files: list[str] = Field(default_factory=list)
    seed: int
    status: JobStatus
    trained_tokens: int | None = None
    training_file: str
    validation_file: str | None = None
    estimated_finish: int | None = None
    integrations: list[dict[str, Any]] | None = None
    metadata: dict[str, str] | None = None
    method: dict[str, Any]
    user_provided_suffix: str | None = None
    llmops: dict[str, Any] = Field(default_factory=dict, description="The extension object as the job runs it.")


class JobEvent(_Strict):
    id: str
    object: Literal["fine_tuning.job.event"] = "fine_tuning.job.event"
    created_at: int
    level: Literal["info", "warn", "error"]
    message: str
    data: dict[str, Any] | None = None
    type: Literal["message", "metrics"] = "message"


class CheckpointMetrics(_Strict):
    step: float | None = None
    train_loss: float | None = None
    train_mean_token_accuracy: float | None = None
    valid_loss: float | None = None
    valid_mean_token_accuracy: float | None = None
    full_valid_loss: float | None = None
    full_valid_mean_token_accuracy: float | None = None


class JobCheckpoint(_Strict):
    id: str
    object: Literal["fine_tuning.job.checkpoint"] = "fine_tuning.job.checkpoint"
    created_at: int
    fine_tuned_model_checkpoint: str
    fine_tuning_job_id: str
    metrics: CheckpointMetrics
    step_number: int


class Page(_Strict):
    object: Literal["list"] = "list"
    data: list[dict[str, Any]]
    has_more: bool
    first_id: str | None = None
    last_id: str | None = None


# ----------------------------------------------------------------------------------------- models
class RegisteredModel(_Strict):
    name: str
    job_id: str
    base: str
    kind: Literal["chat", "guardrail"]
    serving_name: str
    path: str
    created_at: int
    metrics: dict[str, Any] = Field(default_factory=dict)


# ----------------------------------------------------------------------------------------- feedback
FeedbackLabel = Literal["injection", "benign", "good", "bad"]


class FeedbackIn(_Strict):
    """`POST /v1/feedback`: name the answer (its completion id or request id), then judge it."""

    completion_id: str | None = Field(None, max_length=128, description="The `id` of a chat/completions response.")
    request_id: str | None = Field(None, max_length=128, description="The response's `x-request-id` header.")
    score: float | None = Field(None, ge=-1, le=1, description="-1 (bad) .. 1 (good).")
    correction: str | None = Field(None, min_length=1, max_length=100_000, description="The answer it should have given.")
    label: FeedbackLabel | None = Field(None, description="For guardrail data: was the request an injection?")
    comment: str | None = Field(None, max_length=2000)

    @model_validator(mode="after")
    def _complete(self) -> FeedbackIn:
        if (self.completion_id is None) == (self.request_id is None):
            raise ValueError("give exactly one of completion_id and request_id")
        if self.score is None and self.correction is None and self.label is None:
            raise ValueError("give a score, a correction or a label")
        return self


class Feedback(FeedbackIn):
    id: str
    object: Literal["feedback"] = "feedback"
    created_at: int
    key_id: str | None = None
