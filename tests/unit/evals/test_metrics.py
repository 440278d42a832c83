"""Each built-in metric on hand-checked cases."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from evals.dataset import Sample
from evals.errors import SuiteError
from evals.metrics import MetricContext, Score, default_registry
from evals.metrics.guardrail import guardrail, guardrail_aggregate
from evals.metrics.ops import cost, cost_aggregate, latency, latency_aggregate, tokens, tokens_aggregate
from evals.metrics.retrieval import context_precision, hit_at_k, mrr, recall_at_k
from evals.metrics.text import contains, exact_match, json_schema, json_valid, regex
from evals.outputs import Output

REG = default_registry()


def s(**fields: object) -> Sample:
    return Sample("x", dict(fields))


def out(text: str | None = None, **kw: object) -> Output:
    return Output(text=text, **kw)  # type: ignore[arg-type]


def score(name: str, sample: Sample, output: Output, tmp: Path | None = None, **params: object) -> float | None:
    bound = REG.get(name).bind(params, tmp or Path("."))
    return asyncio.run(bound.score(sample, output, MetricContext(Path("."))) ).value


@pytest.mark.parametrize(("text", "expected", "kw", "want"), [
    ("Paris.", "paris", {}, 1.0),
    ("  Paris  ", ["Lyon", "Paris"], {}, 1.0),
    ("The capital is Paris", "Paris", {}, 0.0),
    ("paris", "Paris", {"case_sensitive": True}, 0.0),
    ("Paris.", "Paris", {"normalize": False}, 0.0),
])
def test_exact_match(text: str, expected: object, kw: dict[str, object], want: float) -> None:
    assert exact_match(s(expected=expected), out(text), **kw).value == want  # type: ignore[arg-type]


def test_exact_match_without_reference_is_not_scored() -> None:
    assert exact_match(s(), out("x")).value is None


@pytest.mark.parametrize(("text", "expected", "kw", "want"), [
    ("The capital of Japan is Tokyo.", ["Tokyo"], {}, 1.0),
    ("the capital is tokyo", "Tokyo", {}, 1.0),
    ("the capital is tokyo", "Tokyo", {"case_sensitive": True}, 0.0),
    ("H2O it is", ["H2O", "H₂O"], {}, 1.0),
    ("carbon dioxide", ["carbon", "oxygen"], {"mode": "all"}, 0.0),
    ("carbon and oxygen", ["carbon", "oxygen"], {"mode": "all"}, 1.0),
    ("", "x", {}, 0.0),
])
def test_contains(text: str, expected: object, kw: dict[str, object], want: float) -> None:
    assert contains(s(expected=expected), out(text), **kw).value == want  # type: ignore[arg-type]


def test_contains_blocked_output_scores_zero() -> None:
    assert contains(s(expected="Paris"), out(None, blocked=True)).value == 0.0


def test_regex() -> None:
    assert regex(s(), out("Order #12345 shipped"), pattern=r"#\d{5}\b").value == 1.0
    assert regex(s(), out("Order #123 shipped"), pattern=r"#\d{5}\b").value == 0.0
    assert regex(s(pattern=r"^yes$"), out(" yes "), full=True).value == 1.0
    assert regex(s(), out("YES"), pattern="yes", ignore_case=True).value == 1.0
    assert regex(s(), out("x")).value is None
    with pytest.raises(SuiteError, match="regex"):
        REG.get("regex").bind({"pattern": "("}, Path("."))


@pytest.mark.parametrize(("text", "kw", "want"), [
    ('{"a": 1}', {}, 1.0),
    ("```json\n{\"a\": [1, 2]}\n```", {}, 1.0),
    ("```json\n{\"a\": 1}\n```", {"strip_fences": False}, 0.0),
    ("[1, 2", {}, 0.0),
    ("Sure! {\"a\": 1}", {}, 0.0),
    ("42", {}, 1.0),
])
def test_json_valid(text: str, kw: dict[str, bool], want: float) -> None:
    assert json_valid(s(), out(text), **kw).value == want


SCHEMA = {"type": "object", "required": ["name", "age"],
          "properties": {"name": {"type": "string"}, "age": {"type": "integer", "minimum": 0}}}


def test_json_schema_inline_item_and_file(tmp_path: Path) -> None:
    assert json_schema(s(), out('{"name": "Ada", "age": 36}'), schema=SCHEMA).value == 1.0
    bad = json_schema(s(), out('{"name": "Ada", "age": -1}'), schema=SCHEMA)
    assert bad.value == 0.0 and "age" in bad.detail
    assert json_schema(s(), out("not json"), schema=SCHEMA).value == 0.0
    assert json_schema(s(schema=SCHEMA), out('{"name": "Ada"}')).value == 0.0  # the item's own schema
    (tmp_path / "person.json").write_text(json.dumps(SCHEMA))
    assert score("json_schema", s(), out('{"name": "Ada", "age": 3}'), tmp_path, schema="person.json") == 1.0
    with pytest.raises(SuiteError, match="not found"):
        REG.get("json_schema").bind({"schema": "missing.json"}, tmp_path)
    with pytest.raises(SuiteError, match="invalid schema"):
        REG.get("json_schema").bind({"schema": {"type": "no-such-type"}}, tmp_path)


def test_semantic_similarity_with_local_minilm() -> None:
    from evals.metrics.semantic import LocalEmbedder

    embedder = LocalEmbedder()
    ctx = MetricContext(Path("."), embed=embedder.embed)
    bound = REG.get("semantic_similarity").bind({}, Path("."))
    close = asyncio.run(bound.score(s(expected="Paris is the capital of France."),
                                    out("The capital of France is Paris."), ctx))
    far = asyncio.run(bound.score(s(expected="Paris is the capital of France."), out("I like green bananas."), ctx))
    assert close.value is not None and far.value is not None
    assert close.value > 0.85 and far.value < 0.3
    same = asyncio.run(bound.score(s(expected=["nope", "hello world"]), out("hello world"), ctx))
    assert same.value == pytest.approx(1.0, abs=1e-5)  # the best of several references


def test_guardrail_scores_and_rates() -> None:
    assert guardrail(s(expect="block"), out(blocked=True)).value == 1.0
    assert guardrail(s(expect="pass"), out(blocked=True)).value == 0.0
    assert guardrail(s(should_block=False), out("hi")).value == 1.0
    assert guardrail(s(expect="maybe"), out("hi")).value is None
    # 4 should block (3 blocked), 6 should pass (1 blocked)
    cases = [("block", True)] * 3 + [("block", False)] + [("pass", True)] + [("pass", False)] * 5
    stats = guardrail_aggregate([guardrail(s(expect=e), out(blocked=b)) for e, b in cases])
    assert stats["tpr"] == 0.75 and stats["fpr"] == pytest.approx(1 / 6)
    assert stats["precision"] == 0.75 and stats["accuracy"] == 0.8
    assert stats["tp"] == 3 and stats["fn"] == 1 and stats["fp"] == 1 and stats["tn"] == 5
    assert stats["tpr_low"] is not None and stats["tpr_low"] < 0.75 < stats["tpr_high"]  # type: ignore[operator]


def test_retrieval_metrics_by_hand() -> None:
    o = out(retrieved=[{"id": "d3"}, {"id": "d1"}, {"id": "d2"}])
    one, two = s(relevant=["d1"]), s(relevant=["d1", "d2"])
    assert hit_at_k(one, o, k=1).value == 0.0
    assert hit_at_k(one, o, k=2).value == 1.0
    assert mrr(one, o).value == 0.5
    assert context_precision(one, o).value == 0.5
    assert context_precision(two, o).value == pytest.approx((1 / 2 + 2 / 3) / 2)
    assert recall_at_k(two, o, k=2).value == 0.5
    assert mrr(s(relevant="zz"), o).value == 0.0
    assert hit_at_k(s(), o).value is None


def test_retrieval_on_citations_by_source_with_path_suffix() -> None:
    o = out(citations=[{"id": "c1", "source": "docs/a.md"}, {"id": "c2", "source": "docs/a.md"},
                       {"id": "c3", "source": "docs/b.md"}])
    # two chunks of a.md count once: b.md is the second document
    assert mrr(s(relevant=["b.md"]), o, match_on="source").value == 0.5
    assert hit_at_k(s(relevant="a.md"), o, k=1, match_on="source").value == 1.0


def test_latency_tokens_cost() -> None:
    lat = [latency(s(), out(latency_ms=v)) for v in (10.0, 20.0, 30.0, 40.0, 100.0)]
    stats = latency_aggregate(lat)
    assert stats["p50"] == 30.0 and stats["mean"] == 40.0 and stats["max"] == 100.0
    assert stats["p90"] == pytest.approx(76.0)  # linear interpolation, as numpy
    usage = {"prompt_tokens": 1000, "completion_tokens": 500, "total_tokens": 1500}
    assert tokens(s(), out(usage=usage)).value == 1500
    assert tokens(s(), out(usage=usage), kind="completion").value == 500
    assert tokens(s(), out()).value is None
    t = tokens_aggregate([tokens(s(), out(usage=usage))] * 2)
    assert t["sum"] == 3000 and t["prompt_sum"] == 2000
    c = cost(s(), out(usage=usage, model="gpt-4o-mini"), prices={"gpt-4o-mini": {"input": 0.15, "output": 0.6}})
    assert c.value == pytest.approx((1000 * 0.15 + 500 * 0.6) / 1e6)
    assert cost(s(), out(usage=usage, model="other"), prices={"gpt-4o-mini": {"input": 1, "output": 1}}).value is None
    assert cost(s(), out(usage=usage), input_per_mtok=1.0, output_per_mtok=2.0).value == pytest.approx(0.002)
    assert cost_aggregate([Score(0.1), Score(0.2), Score(None)])["total"] == pytest.approx(0.3)
    with pytest.raises(SuiteError, match="prices"):
        REG.get("cost").bind({}, Path("."))
