"""Schemathesis against the live gateway's OpenAPI schema (issue 9): every public operation, as an
admin key and as a client key, valid and invalid inputs alike.

What must hold for every response: no 5xx, no stack trace in the body, and every error in OpenAI's
envelope. Schema conformance of successful answers is not checked here (the schema does not declare
response bodies; the SDK tests cover the OpenAI shapes).

Each operation gets up to `EXAMPLES[key]` schema-valid and as many schema-violating cases from
schemathesis' strategies, under Hypothesis with derandomised generation (the same cases on every
run); the client key's run is shorter, as most admin operations answer it 403 before validating.
A problem is recorded, not raised, so that one run lists every problem instead of shrinking the first.
(schemathesis' own pytest integration, `from_fixture(...).parametrize()`, fails on pytest 9.2.)

The session's gateway is shared with the other live tests, so the schema is narrowed before fuzzing:
- `model` takes only fake models (instant answers, no upstream failure that would legitimately be a
  502/503/504), the local embedding model, a chat model on the embeddings endpoint and an unknown
  name. Negative cases still send any other string.
- prompt names and RAG collections in paths are `fuzz-...`, so label moves, rollbacks and source
  deletions never touch the prompts and collections other tests use.
Fine-tuning jobs are fuzzed too: a job needs an uploaded training file's id, which generated data
never names (cases are independent: nothing chains an upload into a job), so only validation runs
and no training starts. Key revocation and rotation only meet random key ids.
"""

from __future__ import annotations

import copy
from typing import Any

import httpx
import hypothesis
import orjson
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase
from schemathesis import Case, GenerationMode

from tests.conftest import ADMIN_KEY, CLIENT_KEY, Gateway

pytestmark = pytest.mark.timeout(900)

EXAMPLES = {ADMIN_KEY: 12, CLIENT_KEY: 5}
FUZZ_MODELS = ["fake-good", "fake-echo", "text-embedding-minilm", "no-such-model"]
OWN_NAME = {"type": "string", "pattern": "^fuzz-[a-z0-9]{1,12}$"}
TRACE_MARKERS = ("Traceback (most recent call last)", 'File "/')
ERROR_FIELDS = {"message", "type", "param", "code"}
# `/ready` answers 503 with its own status document while a configured model has no live deployment
# (the session config has deliberately broken ones): a readiness report, not an error.
READINESS = "/ready"


def narrowed(schema: dict[str, Any]) -> dict[str, Any]:
    schema = copy.deepcopy(schema)
    components = schema["components"]["schemas"]
    for name in ("ChatCompletionRequest", "CompletionRequest", "EmbeddingRequest"):
        components[name]["properties"]["model"] = {"type": "string", "enum": FUZZ_MODELS}
    for path, ops in schema["paths"].items():
        for op in ops.values():
            for param in op.get("parameters", []):
                if param["in"] == "path" and (
                    (path.startswith("/v1/prompts/") and param["name"] == "name")
                    or (path.startswith("/v1/rag/collections/") and param["name"] == "collection")
                ):
                    param["schema"] = OWN_NAME
    return schema


def load(gateway: Gateway) -> schemathesis.BaseSchema:
    raw = httpx.get(f"{gateway.url}/openapi.json").json()
    config = schemathesis.Config.from_dict({"base-url": gateway.url, "request-timeout": 60})
    return schemathesis.openapi.from_dict(narrowed(raw), config=config)


def problems(path: str, status: int, content_type: str, text: str) -> list[str]:
    """What is wrong with one response (empty: nothing)."""
    found: list[str] = []
    if status >= 500 and path != READINESS:
        found.append(f"server error {status}")
    if any(marker in text for marker in TRACE_MARKERS):
        found.append("stack trace in the body")
    if status >= 400 and path != READINESS:
        found += _shape_problems(text)
    elif content_type.startswith("text/event-stream"):
        for line in text.splitlines():
            if line.startswith("data: {") and '"error"' in line:
                found += _shape_problems(line[len("data: "):])
    return found


def _shape_problems(text: str) -> list[str]:
    try:
        body = orjson.loads(text)
    except orjson.JSONDecodeError:
        return [f"error body is not JSON: {text[:200]!r}"]
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict) or set(error) != ERROR_FIELDS or not isinstance(error["message"], str):
        return [f"error body is not OpenAI-shaped: {text[:300]}"]
    return []


def fuzz(schema: schemathesis.BaseSchema, key: str) -> tuple[dict[str, int], dict[str, str]]:
    """Every operation, both modes; returns (requests per operation, first failing request per problem)."""
    headers = {"authorization": f"Bearer {key}"}
    sent: dict[str, int] = {}
    failures: dict[str, str] = {}
    for result in schema.get_all_operations():
        operation = result.ok()
        modes = [GenerationMode.POSITIVE, GenerationMode.NEGATIVE] if negatable(operation) else [GenerationMode.POSITIVE]
        for mode in modes:

            @hypothesis.settings(max_examples=EXAMPLES[key], derandomize=True, database=None, deadline=None,
                                 phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
            @hypothesis.given(case=operation.as_strategy(mode))
            def run(case: Case) -> None:
                sent[case.operation.label] = sent.get(case.operation.label, 0) + 1
                try:
                    response = case.call(headers=headers, timeout=60)
                except requests.RequestException as exc:  # e.g. a stream cut short by a server error
                    found = [f"no complete response: {type(exc).__name__}"]
                else:
                    content_type = response.headers.get("content-type", [""])[0]
                    found = problems(case.operation.path, response.status_code, content_type, response.text)
                for problem in found:
                    where = f"{case.operation.label}: {problem.split(':')[0]}"
                    failures.setdefault(where, f"{problem}\n  {case.as_curl_command(headers=headers)}")

            try:
                run()
            except hypothesis.errors.Unsatisfiable:
                assert mode is GenerationMode.NEGATIVE  # no input of this operation could break its schema
    return sent, failures


def negatable(operation: schemathesis.APIOperation) -> bool:
    """Whether anything can violate the schema: not so for an operation whose only inputs are
    free strings (Hypothesis would spend seconds proving it)."""
    definition = operation.definition.raw
    free = [p for p in definition.get("parameters", [])
            if set(p["schema"]) <= {"type", "title", "description"} and p["schema"].get("type") == "string"]
    return "requestBody" in definition or len(free) < len(definition.get("parameters", []))


def report(failures: dict[str, str]) -> str:
    return "\n".join(f"{where}\n  {detail}" for where, detail in sorted(failures.items()))


@pytest.mark.parametrize("key", [ADMIN_KEY, CLIENT_KEY], ids=["admin", "client"])
def test_fuzz_every_operation(gateway: Gateway, key: str) -> None:
    schema = load(gateway)
    operations = {(m.upper(), p) for p, ops in httpx.get(f"{gateway.url}/openapi.json").json()["paths"].items()
                  for m in ops}
    sent, failures = fuzz(schema, key)
    assert not failures, f"{len(failures)} problems in {sum(sent.values())} requests:\n{report(failures)}"
    assert {tuple(label.split(" ", 1)) for label in sent} == operations  # the narrowing dropped none
