"""Baseline regressions and comparison mode (two targets in one run), over real HTTP targets."""

from __future__ import annotations

import json
from pathlib import Path

from tests.unit.evals.conftest import FAKE_KEY, Cli, WriteSuite, reset, stats


def results(path: Path) -> dict:  # type: ignore[type-arg]
    return json.loads(path.read_text())["suites"][0]  # type: ignore[no-any-return]


def rows(expectations: list[str]) -> list[dict[str, str]]:
    return [{"id": f"i{n}", "input": f"question {n}", "expected": e} for n, e in enumerate(expectations)]


def test_regression_against_baseline(fake_provider: str, write_suite: WriteSuite, run_cli: Cli, tmp_path: Path) -> None:
    spec = {"name": "reg", "target": {"model": "good"}, "metrics": ["contains", "latency"]}
    path = write_suite(spec, rows(["Hello"] * 4))
    assert run_cli(path, "--base-url", fake_provider, "--json", tmp_path / "base.json") == 0
    # same suite, two items now fail: contains.mean 1.0 → 0.5, a regression (no threshold is set)
    write_suite(spec, rows(["Hello", "Hello", "Goodbye", "Ciao"]))
    assert run_cli(path, "--base-url", fake_provider, "--baseline", tmp_path / "base.json",
                   "--json", tmp_path / "now.json") == 1
    doc = results(tmp_path / "now.json")
    check = next(c for c in doc["regression_checks"] if c["metric"] == "contains")
    assert not check["passed"] and check["items"] == ["i2", "i3"]
    assert "too few to conclude" in check["message"]  # 2 discordant items
    diff = doc["baseline"]["diffs"][0]
    assert diff["baseline"] == 1.0 and diff["current"] == 0.5 and diff["newly_failing"] == ["i2", "i3"]
    assert not any(c["metric"] == "latency" for c in doc["regression_checks"])  # timings are not gated by default
    # the same drop within a tolerance passes; with require_significance too (n is too small to conclude)
    write_suite({**spec, "baseline": {"path": str(tmp_path / "base.json"), "tolerance": 0.5}},
                rows(["Hello", "Hello", "Goodbye", "Ciao"]))
    assert run_cli(path, "--base-url", fake_provider) == 0
    write_suite({**spec, "baseline": {"path": str(tmp_path / "base.json"), "require_significance": True}},
                rows(["Hello", "Hello", "Goodbye", "Ciao"]))
    assert run_cli(path, "--base-url", fake_provider, "--json", tmp_path / "sig.json") == 0
    assert "require_significance" in results(tmp_path / "sig.json")["regression_checks"][0]["message"]
    # no drop, no regression
    write_suite(spec, rows(["Hello"] * 4))
    assert run_cli(path, "--base-url", fake_provider, "--baseline", tmp_path / "base.json") == 0


def test_baseline_for_another_suite_is_a_broken_suite(fake_provider: str, write_suite: WriteSuite, run_cli: Cli,
                                                      tmp_path: Path) -> None:
    path = write_suite({"name": "one", "target": {"model": "good"}, "metrics": ["contains"]}, rows(["Hello"]))
    assert run_cli(path, "--base-url", fake_provider, "--json", tmp_path / "one.json") == 0
    other = write_suite({"name": "two", "target": {"model": "good"}, "metrics": ["contains"]}, rows(["Hello"]), "two.yaml")
    assert run_cli(other, "--base-url", fake_provider, "--baseline", tmp_path / "one.json") == 2


def prompt_rows(n: int) -> list[dict[str, object]]:
    return [{"id": f"q{i}", "variables": {"answer": f"answer {i}"}, "expected": f"answer {i}"} for i in range(n)]


def compare_suite(**extra: object) -> dict[str, object]:
    return {"name": "prompt-ab", "targets": [
        {"name": "v1", "kind": "prompt", "model": "echo", "prompt": {"name": "qa", "version": 1}},
        {"name": "v2", "kind": "prompt", "model": "echo", "prompt": {"name": "qa", "version": 2}},
    ], "metrics": ["contains"], **extra}


def test_comparison_two_prompt_versions(fake_gateway: str, write_suite: WriteSuite, run_cli: Cli, tmp_path: Path) -> None:
    path = write_suite(compare_suite(), prompt_rows(8))
    assert run_cli(path, "--base-url", fake_gateway, "--api-key", FAKE_KEY, "--json", tmp_path / "r.json") == 0
    doc = results(tmp_path / "r.json")
    v1, v2 = doc["targets"]
    assert v1["prompt_version"] == "1" and v2["prompt_version"] == "2"
    assert v1["metrics"]["contains"]["value"] == 1.0 and v2["metrics"]["contains"]["value"] == 0.0
    (comp,) = doc["comparisons"]
    assert comp["a"] == "v1" and comp["b"] == "v2" and comp["n_diffs"] == 8
    assert comp["diffs"][0]["a_output"].startswith("v1: answer") and comp["diffs"][0]["b_output"] == "v2: I don't know"
    assert comp["paired"]["significant"] and "significantly worse" in comp["paired"]["note"]
    # with three items the same flip is too few to conclude
    write_suite(compare_suite(), prompt_rows(3))
    assert run_cli(path, "--base-url", fake_gateway, "--api-key", FAKE_KEY, "--json", tmp_path / "s.json") == 0
    assert "too few to conclude" in results(tmp_path / "s.json")["comparisons"][0]["paired"]["note"]


def test_comparison_thresholds_gate_unless_told_not_to(fake_gateway: str, write_suite: WriteSuite, run_cli: Cli) -> None:
    spec = compare_suite(metrics=[{"metric": "contains", "threshold": 0.9}])
    path = write_suite(spec, prompt_rows(4))
    assert run_cli(path, "--base-url", fake_gateway, "--api-key", FAKE_KEY) == 1  # v2 misses it
    targets = spec["targets"]
    assert isinstance(targets, list)
    targets[1]["gate"] = False
    write_suite(spec, prompt_rows(4))
    assert run_cli(path, "--base-url", fake_gateway, "--api-key", FAKE_KEY) == 0  # only v1 gates


def test_prompt_label_is_resolved_and_keys_the_cache(fake_gateway: str, write_suite: WriteSuite, run_cli: Cli,
                                                     tmp_path: Path) -> None:
    reset(fake_gateway)
    spec = {"name": "label", "target": {"kind": "prompt", "model": "echo", "prompt": {"name": "qa", "label": "production"}},
            "metrics": [{"metric": "contains", "threshold": 1.0}]}
    path = write_suite(spec, prompt_rows(5))
    assert run_cli(path, "--base-url", fake_gateway, "--api-key", FAKE_KEY, "--json", tmp_path / "r.json") == 0
    assert results(tmp_path / "r.json")["targets"][0]["prompt_version"] == "1"
    assert stats(fake_gateway)["prompt-v1"] == 5
    assert run_cli(path, "--base-url", fake_gateway, "--api-key", FAKE_KEY) == 0
    assert stats(fake_gateway)["prompt-v1"] == 6  # only the one call that asks where the label points
