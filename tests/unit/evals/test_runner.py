"""The runner end to end against a real HTTP target: the project's fake OpenAI-compatible provider
(tests/support/fake_provider.py), which answers "Hello from the fake provider." and fails by model name."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support import procs
from tests.unit.evals.conftest import Cli, WriteSuite, reset, stats

ROWS = [
    {"id": "hello", "input": "Say hello", "expected": "Hello", "category": "greeting"},
    {"id": "fake", "input": "Who are you?", "expected": ["fake provider"], "category": "identity"},
    {"id": "bye", "input": "Say goodbye", "expected": "Goodbye", "category": "greeting"},
]


def suite(model: str = "good", threshold: float = 0.6, **extra: object) -> dict[str, object]:
    return {"name": "fake-smoke", "target": {"model": model},
            "metrics": [{"metric": "contains", "threshold": threshold}, "latency"],
            "run": {"retry_backoff_s": 0.01}, **extra}


def results(path: Path) -> dict:  # type: ignore[type-arg]
    return json.loads(path.read_text())["suites"][0]  # type: ignore[no-any-return]


def test_passing_suite_exits_0(fake_provider: str, write_suite: WriteSuite, run_cli: Cli, tmp_path: Path) -> None:
    path = write_suite(suite(), ROWS)
    assert run_cli(path, "--base-url", fake_provider, "--api-key", "k", "--json", tmp_path / "r.json") == 0
    doc = results(tmp_path / "r.json")
    target = doc["targets"][0]
    assert doc["status"] == "passed" and target["metrics"]["contains"]["value"] == pytest.approx(2 / 3)
    assert [i["passed"]["contains"] for i in target["items"]] == [True, True, False]
    assert target["items"][0]["output"]["text"] == "Hello from the fake provider."
    assert target["items"][0]["output"]["usage"]["total_tokens"] == 13


def test_failing_threshold_exits_1(fake_provider: str, write_suite: WriteSuite, run_cli: Cli, tmp_path: Path) -> None:
    path = write_suite(suite(threshold=0.9), ROWS)
    assert run_cli(path, "--base-url", fake_provider, "--json", tmp_path / "r.json") == 1
    doc = results(tmp_path / "r.json")
    check = next(c for c in doc["targets"][0]["checks"] if c["kind"] == "threshold")
    assert not check["passed"] and check["items"] == ["bye"] and doc["exit_code"] == 1


def test_exit_codes_from_a_real_process(fake_provider: str, write_suite: WriteSuite, tmp_path: Path) -> None:
    """`python -m evals.cli run` as CI runs it: the process's own exit status."""
    argv = [sys.executable, "-m", "evals.cli", "run", "--base-url", fake_provider, "--api-key", "k",
            "--cache-dir", str(tmp_path / "c"), "--no-store"]
    ok = subprocess.run([*argv, str(write_suite(suite(), ROWS, "ok.yaml"))], cwd=procs.ROOT, capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    assert "suite fake-smoke: PASSED" in ok.stdout and "exit 0" in ok.stdout
    bad = subprocess.run([*argv, str(write_suite(suite(threshold=1.0), ROWS, "bad.yaml"))], cwd=procs.ROOT,
                         capture_output=True, text=True)
    assert bad.returncode == 1 and "FAILED" in bad.stdout
    broken = subprocess.run([*argv, str(tmp_path / "missing.yaml")], cwd=procs.ROOT, capture_output=True, text=True)
    assert broken.returncode == 2 and "suite file not found" in broken.stdout


@pytest.mark.parametrize(("content", "message"), [
    ("name: x\ndataset: [unclosed", "not valid YAML"),
    ("name: x\ndataset: nope.jsonl\ntarget: {model: good}\nmetrics: [contains]\n", "dataset not found"),
    ("name: x\ndataset: data.jsonl\ntarget: {model: good}\nmetrics: [containz]\n", "unknown metric 'containz'"),
    ("name: x\ndataset: data.jsonl\ntarget: {model: good}\nmetrics: [{metric: contains, cases: 1}]\n", "unknown setting"),
    ("name: x\ndataset: data.jsonl\ntarget: {model: good, input: '{{ question }}'}\nmetrics: [contains]\n", "question"),
    ("name: x\ndataset: data.jsonl\nmetrics: [contains]\n", "target"),
    ("name: x\ndataset: data.jsonl\ntarget: {kind: rag, model: m}\nmetrics: [contains]\n", "needs 'retrieval'"),
    ("name: x\ndataset: data.jsonl\ntarget: {model: good}\nmetrics: [{metric: contains, threshold: {p42: 1}}]\n",
     "unknown statistic 'p42'"),
    ("name: x\ndataset: data.jsonl\ntarget: {model: good}\nmetrics: [contains]\nbaseline: none.json\n",
     "baseline file not found"),
    ("name: x\ndataset: data.jsonl\ntarget: {model: good}\nmetrics: [contains]\nsurprise: 1\n", "surprise"),
])
def test_broken_suite_exits_2(content: str, message: str, fake_provider: str, tmp_path: Path, run_cli: Cli,
                              write_suite: WriteSuite) -> None:
    write_suite({"name": "seed"}, ROWS, "seed.yaml")  # writes data.jsonl
    path = tmp_path / "broken.yaml"
    path.write_text(content)
    assert run_cli(path, "--base-url", fake_provider, "--json", tmp_path / "r.json") == 2
    doc = results(tmp_path / "r.json")
    assert doc["status"] == "error" and message in doc["error"], doc["error"]


def test_bad_dataset_line_exits_2(fake_provider: str, tmp_path: Path, run_cli: Cli) -> None:
    (tmp_path / "data.jsonl").write_text('{"input": "a", "expected": "b"}\n{not json}\n')
    (tmp_path / "s.yaml").write_text("name: x\ndataset: data.jsonl\ntarget: {model: good}\nmetrics: [contains]\n")
    assert run_cli(tmp_path / "s.yaml", "--base-url", fake_provider, "--json", tmp_path / "r.json") == 2
    assert "line 2 is not valid JSON" in results(tmp_path / "r.json")["error"]


def test_target_down_exits_2(write_suite: WriteSuite, run_cli: Cli, tmp_path: Path) -> None:
    dead = f"http://127.0.0.1:{procs.free_port()}"
    path = write_suite(suite(), ROWS)
    started = time.monotonic()
    assert run_cli(path, "--base-url", dead, "--json", tmp_path / "r.json") == 2
    assert time.monotonic() - started < 20
    assert "target down" in results(tmp_path / "r.json")["error"]


def test_some_failed_calls_fail_the_run(fake_provider: str, write_suite: WriteSuite, run_cli: Cli,
                                        tmp_path: Path) -> None:
    # flaky-2: the first two calls answer 500; with no retries and one call at a time, 2 of 3 items fail
    reset(fake_provider)
    spec = suite(model="flaky-2-errors", threshold=0.0, run={"retries": 0, "concurrency": 1})
    path = write_suite(spec, ROWS)
    assert run_cli(path, "--base-url", fake_provider, "--json", tmp_path / "r.json") == 1
    target = results(tmp_path / "r.json")["targets"][0]
    errors = next(c for c in target["checks"] if c["kind"] == "errors")
    assert not errors["passed"] and target["errors"] == 2 and "HTTP 500" in errors["message"]
    assert errors["items"] == ["hello", "fake"]
    # allowed by max_error_rate, the one scored item decides
    reset(fake_provider)
    write_suite(suite(model="flaky-2-errors", threshold=0.0,
                      run={"retries": 0, "concurrency": 1, "max_error_rate": 0.7}), ROWS)
    assert run_cli(path, "--base-url", fake_provider) == 0


def test_every_call_failing_is_a_broken_target(fake_provider: str, write_suite: WriteSuite, run_cli: Cli,
                                               tmp_path: Path) -> None:
    path = write_suite(suite(model="error-500", threshold=0.0), ROWS)
    assert run_cli(path, "--base-url", fake_provider, "--json", tmp_path / "r.json", "--retries", "1") == 2
    assert "every call failed" in results(tmp_path / "r.json")["error"]


def test_retries_recover_a_flaky_target(fake_provider: str, write_suite: WriteSuite, run_cli: Cli) -> None:
    reset(fake_provider)
    rows = ROWS[:1]
    path = write_suite(suite(model="flaky-2-evals", threshold=1.0, run={"retries": 2, "retry_backoff_s": 0.01}), rows)
    assert run_cli(path, "--base-url", fake_provider) == 0
    assert stats(fake_provider)["flaky-2-evals"] == 3


def test_cache_hits_on_rerun(fake_provider: str, write_suite: WriteSuite, run_cli: Cli, tmp_path: Path) -> None:
    reset(fake_provider)
    path = write_suite(suite(model="good-cache"), ROWS)
    assert run_cli(path, "--base-url", fake_provider, "--json", tmp_path / "1.json") == 0
    assert stats(fake_provider)["good-cache"] == 3
    assert run_cli(path, "--base-url", fake_provider, "--json", tmp_path / "2.json") == 0
    assert stats(fake_provider)["good-cache"] == 3  # no new call
    first, second = results(tmp_path / "1.json"), results(tmp_path / "2.json")
    assert second["targets"][0]["cache_hits"] == 3 and second["targets"][0]["calls"] == 0
    assert all(i["output"]["cached"] for i in second["targets"][0]["items"])
    def values(doc: dict) -> list[dict[str, float]]:  # type: ignore[type-arg]
        return [{k: v["value"] for k, v in i["scores"].items()} for i in doc["targets"][0]["items"]]

    assert values(first) == values(second)  # latency too: kept from the original call
    # a different parameter is a different request: called again
    write_suite(suite(model="good-cache", target={"model": "good-cache", "params": {"max_tokens": 7}}), ROWS)
    assert run_cli(path, "--base-url", fake_provider) == 0
    assert stats(fake_provider)["good-cache"] == 6
    # --no-cache calls every item
    assert run_cli(path, "--base-url", fake_provider, "--no-cache") == 0
    assert stats(fake_provider)["good-cache"] == 9
    # the version tag busts the cache too
    write_suite(suite(model="good-cache", target={"model": "good-cache", "params": {"max_tokens": 7}, "version": "2"}), ROWS)
    assert run_cli(path, "--base-url", fake_provider) == 0
    assert stats(fake_provider)["good-cache"] == 12


def test_concurrency(fake_provider: str, write_suite: WriteSuite, run_cli: Cli, tmp_path: Path) -> None:
    rows = [{"id": f"i{n}", "input": f"q{n}", "expected": "Hello"} for n in range(8)]
    path = write_suite(suite(model="slow-300", threshold=1.0), rows)
    started = time.monotonic()
    assert run_cli(path, "--base-url", fake_provider, "--no-cache", "--concurrency", "8") == 0
    parallel = time.monotonic() - started
    assert parallel < 8 * 0.3, f"8 items of 300 ms took {parallel:.2f}s with concurrency 8"


def test_seed_and_order_are_deterministic(fake_provider: str, write_suite: WriteSuite, run_cli: Cli,
                                          tmp_path: Path) -> None:
    rows = [{"id": f"i{n}", "input": f"q{n}", "expected": "Hello"} for n in range(10)]
    path = write_suite(suite(dataset={"path": "data.jsonl", "sample": 4}, run={"seed": 7}), rows)
    assert run_cli(path, "--base-url", fake_provider, "--json", tmp_path / "a.json") == 0
    assert run_cli(path, "--base-url", fake_provider, "--json", tmp_path / "b.json", "--no-cache") == 0
    a, b = results(tmp_path / "a.json"), results(tmp_path / "b.json")
    ids = [i["id"] for i in a["targets"][0]["items"]]
    assert len(ids) == 4 and ids == [i["id"] for i in b["targets"][0]["items"]] and a["seed"] == 7
    assert run_cli(path, "--base-url", fake_provider, "--json", tmp_path / "c.json", "--seed", "8") == 0
    assert [i["id"] for i in results(tmp_path / "c.json")["targets"][0]["items"]] != ids


def test_csv_dataset(fake_provider: str, tmp_path: Path, run_cli: Cli) -> None:
    (tmp_path / "data.csv").write_text('id,input,expected\na,hi,Hello\nb,yo,"[""nope"", ""fake""]"\n')
    (tmp_path / "s.yaml").write_text("name: csv\ndataset: data.csv\ntarget: {model: good}\n"
                                     "metrics: [{metric: contains, threshold: 1.0}]\n")
    assert run_cli(tmp_path / "s.yaml", "--base-url", fake_provider) == 0


def test_several_suites_exit_with_the_worst(fake_provider: str, write_suite: WriteSuite, run_cli: Cli,
                                            tmp_path: Path) -> None:
    ok = write_suite(suite(), ROWS, "ok.yaml")
    bad = write_suite({**suite(threshold=1.0), "name": "strict"}, ROWS, "strict.yaml")
    assert run_cli(ok, bad, "--base-url", fake_provider) == 1
    assert run_cli(ok, tmp_path / "nope.yaml", "--base-url", fake_provider) == 2
