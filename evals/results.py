"""Run results: per item, per metric, per target, per suite. `to_dict()` is the JSON results format
(what `--report`/`--json` write, what `--baseline` reads back and what the runs store keeps)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from evals.metrics.base import Score
from evals.outputs import Output

FORMAT_VERSION = 1
Status = Literal["passed", "failed", "error"]
EXIT_CODES: dict[str, int] = {"passed": 0, "failed": 1, "error": 2}


@dataclass
class ItemResult:
    id: str
    category: str | None
    input: str
    expected: Any
    output: Output
    scores: dict[str, Score] = field(default_factory=dict)
    passed: dict[str, bool | None] = field(default_factory=dict)

    @property
    def error(self) -> str | None:
        return self.output.error

    def value(self, metric: str) -> float | None:
        s = self.scores.get(metric)
        return None if s is None else s.value

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "category": self.category, "input": self.input, "expected": self.expected,
            "output": self.output.to_dict(),
            "scores": {k: {"value": v.value, "detail": v.detail} for k, v in self.scores.items()},
            "passed": self.passed,
        }


@dataclass
class MetricResult:
    name: str
    metric: str
    primary: str
    higher_is_better: bool
    item_threshold: float | None
    stats: dict[str, float | None]

    @property
    def value(self) -> float | None:
        return self.stats.get(self.primary)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "metric": self.metric, "primary": self.primary,
                "higher_is_better": self.higher_is_better, "item_threshold": self.item_threshold,
                "value": self.value, "stats": self.stats}


@dataclass
class Check:
    kind: Literal["threshold", "errors", "regression"]
    target: str
    name: str  # "contains.mean >= 0.9"
    passed: bool
    message: str
    metric: str | None = None
    stat: str | None = None
    op: str | None = None
    limit: float | None = None
    actual: float | None = None
    items: list[str] = field(default_factory=list)  # failing items, for the report
    gating: bool = True

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class TargetResult:
    name: str
    spec: dict[str, Any]
    items: list[ItemResult] = field(default_factory=list)
    metrics: dict[str, MetricResult] = field(default_factory=dict)
    checks: list[Check] = field(default_factory=list)
    prompt_version: str | None = None
    cache_hits: int = 0
    calls: int = 0
    duration_s: float = 0.0
    warnings: list[str] = field(default_factory=list)

    @property
    def errors(self) -> int:
        return sum(1 for i in self.items if i.error)

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    def to_dict(self) -> dict[str, Any]:
        spec = self.spec
        prompt = spec.get("prompt") or {}
        return {
            "name": self.name, "kind": spec.get("kind"), "model": spec.get("model"),
            "prompt_name": prompt.get("name"), "prompt_label": prompt.get("label"),
            "prompt_version": self.prompt_version or (str(prompt["version"]) if prompt.get("version") else None),
            "rails": spec.get("rails"), "version": spec.get("version"), "gate": spec.get("gate", True),
            "spec": spec, "passed": self.passed, "errors": self.errors, "n_items": len(self.items),
            "cache_hits": self.cache_hits, "calls": self.calls, "duration_s": round(self.duration_s, 3),
            "warnings": self.warnings,
            "metrics": {k: m.to_dict() for k, m in self.metrics.items()},
            "checks": [c.to_dict() for c in self.checks],
            "items": [i.to_dict() for i in self.items],
        }


@dataclass
class SuiteResult:
    suite: str
    description: str = ""
    source: str | None = None
    dataset: str | None = None
    seed: int = 0
    started_at: str = ""
    duration_s: float = 0.0
    targets: list[TargetResult] = field(default_factory=list)
    comparisons: list[dict[str, Any]] = field(default_factory=list)
    baseline: dict[str, Any] | None = None
    regression_checks: list[Check] = field(default_factory=list)
    error: str | None = None
    error_type: str | None = None

    @property
    def checks(self) -> list[Check]:
        return [c for t in self.targets for c in t.checks] + self.regression_checks

    @property
    def status(self) -> Status:
        if self.error is not None:
            return "error"
        return "passed" if all(c.passed for c in self.checks if c.gating) else "failed"

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.status]

    @property
    def n_items(self) -> int:
        return max((len(t.items) for t in self.targets), default=0)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT_VERSION, "suite": self.suite, "description": self.description, "source": self.source,
            "dataset": self.dataset, "seed": self.seed, "started_at": self.started_at,
            "duration_s": round(self.duration_s, 3), "status": self.status, "exit_code": self.exit_code,
            "passed": self.status == "passed", "error": self.error, "error_type": self.error_type,
            "n_items": self.n_items,
            "targets": [t.to_dict() for t in self.targets],
            "comparisons": self.comparisons,
            "baseline": self.baseline,
            "regression_checks": [c.to_dict() for c in self.regression_checks],
        }


def overall_exit_code(results: list[SuiteResult]) -> int:
    return max((r.exit_code for r in results), default=2)
