"""The project's own smoke suite against the live gateway (real Triton with SmolLM2-135M): the CLI
exits 0 and writes JUnit that CI can read. Runs what CI runs: `llmops eval run SUITE --base-url ...`."""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

from tests.conftest import CLIENT_KEY, Gateway
from tests.support.procs import ROOT


def eval_command() -> list[str]:
    """`llmops eval` once gateway/cli.py wires evals.cli.add_subparser; `python -m evals.cli` until then."""
    from gateway.cli import build_parser

    sub = next(a for a in build_parser()._actions if a.dest == "command")
    if "eval" in (sub.choices or {}):
        return [sys.executable, "-m", "gateway.cli", "eval"]
    return [sys.executable, "-m", "evals.cli"]


def test_smoke_suite_passes_on_the_live_gateway(gateway: Gateway, tmp_path: Path) -> None:
    junit, results = tmp_path / "smoke.xml", tmp_path / "smoke.json"
    argv = [*eval_command(), "run", "evals/suites/smoke.yaml", "--base-url", gateway.url, "--api-key", CLIENT_KEY,
            "--junit", str(junit), "--json", str(results), "--cache-dir", str(tmp_path / "cache"), "--no-store"]
    proc = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"{proc.stdout}\n{proc.stderr}"
    root = ET.parse(junit).getroot()
    assert root.tag == "testsuites" and root.get("failures") == "0" and root.get("errors") == "0"
    (suite,) = root.findall("testsuite")
    assert suite.get("name") == "smoke[smollm2]" and int(suite.get("tests", 0)) >= 2
    assert all(case.get("name") and case.get("classname") for case in suite.iter("testcase"))
    doc = json.loads(results.read_text())["suites"][0]
    target = doc["targets"][0]
    assert target["n_items"] == 10 and target["errors"] == 0
    assert target["metrics"]["contains"]["value"] >= 0.9
    assert all(i["output"]["usage"].get("completion_tokens", 0) > 0 for i in target["items"])
