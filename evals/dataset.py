"""Datasets: JSONL (one object a line) or CSV (a header row). Every item becomes a `Sample`.

Conventional fields (all optional; metrics take the field names as parameters):
`id`, `input` or `messages`, `expected` (string or list), `category`, `variables` (prompt targets),
`expect` ("block"/"pass", guardrail metrics), `relevant` (ids or sources, retrieval metrics).
CSV cells holding a JSON list or object (`["a", "b"]`) are decoded; other cells stay strings.
"""

from __future__ import annotations

import csv
import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evals.errors import SuiteError


@dataclass(frozen=True)
class Sample:
    id: str
    fields: dict[str, Any] = field(default_factory=dict)

    @property
    def category(self) -> str | None:
        value = self.fields.get("category")
        return None if value in (None, "") else str(value)

    def get(self, key: str, default: Any = None) -> Any:
        return self.fields.get(key, default)


def _decode_cell(value: str) -> Any:
    text = value.strip()
    if text[:1] in "[{":
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            return value
    return value


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    rows = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise SuiteError(f"dataset {path} line {lineno} is not valid JSON: {err.msg}") from None
        if not isinstance(row, dict):
            raise SuiteError(f"dataset {path} line {lineno}: each line must be a JSON object")
        rows.append(row)
    return rows


def _read_csv(path: Path) -> list[dict[str, Any]]:
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        if not reader.fieldnames:
            raise SuiteError(f"dataset {path} has no header row")
        return [{k: _decode_cell(v or "") for k, v in row.items() if k is not None} for row in reader]


def load_dataset(path: Path, fmt: str | None = None, *, limit: int | None = None, sample: int | None = None,
                 seed: int = 0) -> list[Sample]:
    if not path.is_file():
        raise SuiteError(f"dataset not found: {path}")
    fmt = fmt or {".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv"}.get(path.suffix.lower())
    if fmt is None:
        raise SuiteError(f"dataset {path}: unknown format; name a .jsonl or .csv file or set dataset.format")
    rows = _read_jsonl(path) if fmt == "jsonl" else _read_csv(path)
    if not rows:
        raise SuiteError(f"dataset {path} has no items")
    samples = []
    seen: set[str] = set()
    for i, row in enumerate(rows, 1):
        sid = str(row.get("id") if row.get("id") not in (None, "") else f"item-{i}")
        if sid in seen:
            raise SuiteError(f"dataset {path}: duplicate id {sid!r}")
        seen.add(sid)
        samples.append(Sample(sid, row))
    if sample is not None and sample < len(samples):
        picked = sorted(random.Random(seed).sample(range(len(samples)), sample))
        samples = [samples[i] for i in picked]
    if limit is not None:
        samples = samples[:limit]
    return samples
