"""evals/README.md's example runs as written (against the fake gateway, where `smollm2` answers
"Hello from the fake gateway.", so its contains threshold fails: exit 1, never 2)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from evals import cli
from tests.support import procs
from tests.unit.evals.conftest import FAKE_KEY, Cli

README = (procs.ROOT / "evals/README.md").read_text()


def block(lang: str, n: int = 0) -> str:
    return re.findall(rf"```{lang}\n(.*?)```", README, re.S)[n]  # type: ignore[no-any-return]


def test_readme_example_suite_runs_as_written(fake_gateway: str, run_cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "capitals.jsonl").write_text(block("jsonl"))
    (tmp_path / "capitals.yaml").write_text(block("yaml"))
    code = run_cli(tmp_path / "capitals.yaml", "--base-url", fake_gateway, "--api-key", FAKE_KEY,
                   "--json", tmp_path / "r.json")
    doc = json.loads((tmp_path / "r.json").read_text())["suites"][0]
    assert code == 1 and doc["status"] == "failed", doc["error"]
    metrics = doc["targets"][0]["metrics"]
    assert set(metrics) == {"contains", "semantic_similarity", "latency", "tokens"}
    assert metrics["contains"]["value"] == 0.0 and metrics["semantic_similarity"]["value"] is not None


def test_readme_plugin_example(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "my_metrics.py").write_text(block("python", 0))
    monkeypatch.syspath_prepend(str(tmp_path))
    assert cli.main(["metrics", "--plugin", "my_metrics"]) == 0
    out = capsys.readouterr().out
    assert "polite" in out and "1 if the answer contains a polite word." in out and "contains" in out
