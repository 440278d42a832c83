"""Suites as files: the YAML schema (pydantic, `extra="forbid"`) and `load_suite`.

A suite names a dataset, one target (or several, to compare them), metrics with thresholds, and
optionally a baseline. Paths inside a suite are relative to the suite file. See evals/README.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from evals.errors import SuiteError

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"
TargetKind = Literal["model", "prompt", "rag", "gateway", "guardrails", "retrieval"]
CHAT_KINDS = ("model", "prompt", "rag", "gateway")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DatasetSpec(_Strict):
    path: str = Field(description="JSONL or CSV file, relative to the suite file.")
    format: Literal["jsonl", "csv"] | None = Field(None, description="Default: from the file extension.")
    limit: int | None = Field(None, ge=1, description="Use only the first N items.")
    sample: int | None = Field(None, ge=1, description="Use a random sample of N items (seeded by run.seed).")


class PromptSpec(_Strict):
    name: str
    label: str | None = None
    version: int | None = Field(None, ge=1)
    variables: dict[str, Any] | None = Field(
        None, description="Variables sent to the prompt; string values are templates over the item. "
        "Default: the item's `variables` field.",
    )

    @model_validator(mode="after")
    def _one_ref(self) -> PromptSpec:
        if (self.label is None) == (self.version is None):
            raise ValueError("give exactly one of 'label' or 'version'")
        return self


class RetrievalSpec(_Strict):
    collection: str
    top_k: int = Field(5, ge=1, le=100)
    filter: str | dict[str, Any] | None = None


class TargetSpec(_Strict):
    name: str | None = Field(None, pattern=NAME_PATTERN, description="Default: the model (or kind).")
    kind: TargetKind = "model"
    model: str | None = None
    input: str | None = Field(
        None, description="Jinja template over the item for the user message. Default '{{ input }}' "
        "(items with a `messages` list send those instead). Prompt targets send no user message unless set.",
    )
    system: str | None = Field(None, description="Optional system message (template over the item).")
    params: dict[str, Any] = Field(default_factory=dict, description="Request parameters (temperature, max_tokens, ...).")
    prompt: PromptSpec | None = None
    retrieval: RetrievalSpec | None = None
    rails: str | None = Field(None, description="Which rails configuration this target runs with (recorded).")
    version: str | None = Field(None, description="Free tag mixed into the cache key and recorded with the run.")
    body: dict[str, Any] = Field(default_factory=dict, description="Extra fields for guardrails/retrieval requests.")
    gate: bool = Field(True, description="Whether this target's thresholds decide the exit code.")

    @model_validator(mode="after")
    def _required(self) -> TargetSpec:
        need = {"model": ["model"], "gateway": ["model"], "rag": ["model", "retrieval"], "prompt": ["prompt"],
                "retrieval": ["retrieval"], "guardrails": []}[self.kind]
        missing = [k for k in need if getattr(self, k) is None]
        if missing:
            raise ValueError(f"a target of kind '{self.kind}' needs {', '.join(repr(m) for m in missing)}")
        return self

    @property
    def display_name(self) -> str:
        if self.name:
            return self.name
        if self.kind == "prompt" and self.prompt is not None:
            ref = f"v{self.prompt.version}" if self.prompt.version else self.prompt.label
            return f"{self.prompt.name}@{ref}"
        return self.model or self.kind


class MetricSpec(_Strict):
    metric: str = Field(description="Registered metric name.")
    name: str | None = Field(None, description="Display name (default: the metric); unique in a suite.")
    threshold: float | dict[str, float | dict[str, float]] | None = Field(
        None, description="A number checks the metric's primary statistic in its own direction; a mapping "
        "checks named statistics: {tpr: 0.9, fpr: 0.1} or {p95: {max: 2000}}.",
    )
    item_threshold: float | None = Field(None, description="Per-item pass mark (default 0.5, or none for "
                                         "lower-is-better metrics).")
    tolerance: float | None = Field(None, ge=0, description="Allowed drop against the baseline (default: baseline.tolerance).")
    params: dict[str, Any] = Field(default_factory=dict, description="Keyword arguments of the metric function.")

    @model_validator(mode="before")
    @classmethod
    def _collect_params(cls, data: Any) -> Any:
        if isinstance(data, str):
            return {"metric": data}
        if isinstance(data, dict):
            known = {"metric", "name", "threshold", "item_threshold", "tolerance", "params"}
            extra = {k: v for k, v in data.items() if k not in known}
            if extra:
                data = {k: v for k, v in data.items() if k in known}
                data["params"] = {**extra, **(data.get("params") or {})}
        return data

    @property
    def display_name(self) -> str:
        return self.name or self.metric


class BaselineSpec(_Strict):
    path: str
    tolerance: float = Field(0.0, ge=0, description="Allowed drop of a metric's primary statistic.")
    require_significance: bool = Field(False, description="Fail only on drops a paired test finds significant.")


class RunSpec(_Strict):
    concurrency: int = Field(4, ge=1, le=256)
    retries: int = Field(2, ge=0, le=10)
    retry_backoff_s: float = Field(0.5, ge=0)
    timeout_s: float = Field(120.0, gt=0)
    seed: int = 0
    cache: bool = True
    max_error_rate: float = Field(0.0, ge=0, le=1, description="Items whose call failed, as a fraction; above it the run fails.")


class Suite(_Strict):
    name: str = Field(pattern=NAME_PATTERN)
    description: str = ""
    dataset: DatasetSpec
    target: TargetSpec | None = None
    targets: list[TargetSpec] | None = None
    metrics: list[MetricSpec] = Field(min_length=1)
    baseline: BaselineSpec | None = None
    run: RunSpec = Field(default_factory=lambda: RunSpec.model_validate({}))
    plugins: list[str] = Field(default_factory=list, description="Modules whose register_metrics(registry) is called.")
    # Where the file was read from; dataset, schema and baseline paths resolve against it.
    source: Path | None = Field(None, exclude=True)

    @field_validator("dataset", mode="before")
    @classmethod
    def _dataset_shorthand(cls, v: Any) -> Any:
        return {"path": v} if isinstance(v, str) else v

    @field_validator("baseline", mode="before")
    @classmethod
    def _baseline_shorthand(cls, v: Any) -> Any:
        return {"path": v} if isinstance(v, str) else v

    @model_validator(mode="after")
    def _check(self) -> Suite:
        if (self.target is None) == (self.targets is None):
            raise ValueError("give either 'target' (one) or 'targets' (a list, to compare)")
        names = [t.display_name for t in self.all_targets]
        if len(set(names)) != len(names):
            raise ValueError(f"target names must be unique (got {names}); set 'name' on each target")
        metric_names = [m.display_name for m in self.metrics]
        dupes = sorted({n for n in metric_names if metric_names.count(n) > 1})
        if dupes:
            raise ValueError(f"metric names must be unique; give 'name' to the repeated {dupes}")
        return self

    @property
    def all_targets(self) -> list[TargetSpec]:
        return [self.target] if self.target is not None else list(self.targets or [])

    @property
    def base_dir(self) -> Path:
        return self.source.parent if self.source else Path.cwd()

    def resolve(self, path: str) -> Path:
        p = Path(path)
        return p if p.is_absolute() else self.base_dir / p


def _describe(err: ValidationError, where: str) -> str:
    lines = [f"invalid suite {where}:"]
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"]) or "(root)"
        lines.append(f"  {loc}: {e['msg']}")
    return "\n".join(lines)


def parse_suite(data: Any, source: Path | None = None) -> Suite:
    where = str(source) if source else "(inline)"
    if not isinstance(data, dict):
        raise SuiteError(f"invalid suite {where}: the top level must be a mapping")
    try:
        return Suite.model_validate({**data, "source": source})
    except ValidationError as err:
        raise SuiteError(_describe(err, where)) from None


def load_suite(path: str | Path) -> Suite:
    path = Path(path)
    if not path.is_file():
        raise SuiteError(f"suite file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise SuiteError(f"suite {path} is not valid YAML: {err}") from None
    return parse_suite(data, path.resolve())
