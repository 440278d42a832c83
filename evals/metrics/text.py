"""Text metrics: exact match, contains, regex, JSON validity, JSON-schema match."""

from __future__ import annotations

import json
import re
import string
from pathlib import Path
from typing import Any

from evals.dataset import Sample
from evals.errors import SuiteError
from evals.metrics.base import Score
from evals.outputs import Output

_FENCE = re.compile(r"^\s*```[A-Za-z0-9_-]*\s*\n?(.*?)\n?\s*```\s*$", re.S)
_WS = re.compile(r"\s+")


def expected_values(sample: Sample, field: str) -> list[str] | None:
    value = sample.get(field)
    if value is None or value == "" or value == []:
        return None
    if isinstance(value, list | tuple):
        return [str(v) for v in value]
    return [str(value)]


def normalise(text: str, case_sensitive: bool = False) -> str:
    text = _WS.sub(" ", text).strip().strip(string.punctuation + " ")
    return text if case_sensitive else text.casefold()


def exact_match(sample: Sample, output: Output, *, field: str = "expected", case_sensitive: bool = False,
                normalize: bool = True) -> Score:
    """1 if the answer equals an expected value (whitespace, outer punctuation and case normalised)."""
    expected = expected_values(sample, field)
    if expected is None:
        return Score(None, f"item has no '{field}'")
    text = output.text or ""
    if normalize:
        hit = normalise(text, case_sensitive) in {normalise(e, case_sensitive) for e in expected}
    else:
        hit = text in expected
    return Score(1.0 if hit else 0.0)


def contains(sample: Sample, output: Output, *, field: str = "expected", case_sensitive: bool = False,
             mode: str = "any") -> Score:
    """1 if the answer contains any (mode: all → every) expected string."""
    expected = expected_values(sample, field)
    if expected is None:
        return Score(None, f"item has no '{field}'")
    text = output.text or ""
    if not case_sensitive:
        text, expected = text.casefold(), [e.casefold() for e in expected]
    found = [e in text for e in expected]
    return Score(1.0 if (all(found) if mode == "all" else any(found)) else 0.0)


def _prepare_contains(params: dict[str, Any], _: Path) -> dict[str, Any]:
    if params.get("mode", "any") not in ("any", "all"):
        raise SuiteError(f"contains: mode must be 'any' or 'all', not {params['mode']!r}")
    return params


def regex(sample: Sample, output: Output, *, pattern: str | None = None, field: str = "pattern",
          ignore_case: bool = False, full: bool = False) -> Score:
    """1 if the answer matches `pattern` (or the item's `pattern` field); `full` anchors both ends."""
    source = pattern if pattern is not None else sample.get(field)
    if not source:
        return Score(None, f"no pattern (set 'pattern' or give items a '{field}')")
    try:
        compiled = re.compile(str(source), re.I if ignore_case else 0)
    except re.error as err:
        return Score(None, f"bad pattern: {err}")
    text = output.text or ""
    hit = compiled.fullmatch(text.strip()) if full else compiled.search(text)
    return Score(1.0 if hit else 0.0)


def _prepare_regex(params: dict[str, Any], _: Path) -> dict[str, Any]:
    if params.get("pattern") is not None:
        re.compile(str(params["pattern"]))  # a bad pattern breaks the suite, before any call
    return params


def strip_fences(text: str) -> str:
    match = _FENCE.match(text)
    return match.group(1) if match else text


def parse_json(text: str | None, fences: bool = True) -> tuple[bool, Any]:
    raw = text or ""
    if fences:
        raw = strip_fences(raw)
    try:
        return True, json.loads(raw)
    except (json.JSONDecodeError, ValueError):
        return False, None


def json_valid(sample: Sample, output: Output, *, strip_fences: bool = True) -> Score:
    """1 if the answer is a JSON document (a surrounding ``` fence is allowed unless strip_fences: false)."""
    ok, _ = parse_json(output.text, strip_fences)
    return Score(1.0 if ok else 0.0)


def json_schema(sample: Sample, output: Output, *, schema: Any = None, field: str = "schema",
                strip_fences: bool = True) -> Score:
    """1 if the answer is JSON that validates against `schema` (inline, a file, or the item's `schema`)."""
    import jsonschema

    spec = schema if schema is not None else sample.get(field)
    if spec is None:
        return Score(None, f"no schema (set 'schema' or give items a '{field}')")
    if isinstance(spec, str):
        try:
            spec = json.loads(spec)
        except json.JSONDecodeError:
            return Score(None, "the item's schema is not JSON")
    ok, doc = parse_json(output.text, strip_fences)
    if not ok:
        return Score(0.0, "not JSON")
    validator = jsonschema.validators.validator_for(spec)(spec)
    errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.path))
    if errors:
        first = errors[0]
        where = "/".join(str(p) for p in first.path) or "(root)"
        return Score(0.0, f"{where}: {first.message}"[:300])
    return Score(1.0)


def _prepare_schema(params: dict[str, Any], suite_dir: Path) -> dict[str, Any]:
    import jsonschema

    spec = params.get("schema")
    if isinstance(spec, str):
        path = Path(spec) if Path(spec).is_absolute() else suite_dir / spec
        if not path.is_file():
            raise SuiteError(f"json_schema: schema file not found: {path}")
        try:
            spec = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as err:
            raise SuiteError(f"json_schema: {path} is not JSON: {err}") from None
    if spec is not None:
        try:
            jsonschema.validators.validator_for(spec).check_schema(spec)
        except jsonschema.SchemaError as err:
            raise SuiteError(f"json_schema: invalid schema: {err.message}") from None
    return {**params, "schema": spec}
