"""The project's own suites against the live gateway (real Triton with SmolLM2-135M): the CLI
exits 0 and writes JUnit that CI can read. Runs what CI runs: `llmops eval run SUITE --base-url ...`."""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

from tests.conftest import CLIENT_KEY, Gateway
from tests.support.procs import ROOT

EVAL = [sys.executable, "-m", "gateway.cli", "eval"]


def test_smoke_suite_passes_on_the_live_gateway(gateway: Gateway, tmp_path: Path) -> None:
    junit, results = tmp_path / "smoke.xml", tmp_path / "smoke.json"
    argv = [*EVAL, "run", "evals/suites/smoke.yaml", "--base-url", gateway.url, "--api-key", CLIENT_KEY,
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


def test_guardrails_suite_passes_with_rails_on(gateway: Gateway, tmp_path: Path) -> None:
    junit = tmp_path / "guardrails.xml"
    argv = [*EVAL, "run", "evals/suites/guardrails.yaml", "--base-url", gateway.url, "--api-key", CLIENT_KEY,
            "--junit", str(junit), "--cache-dir", str(tmp_path / "cache"), "--no-store"]
    proc = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"{proc.stdout}\n{proc.stderr}"
    assert ET.parse(junit).getroot().get("failures") == "0"


def test_a_failing_threshold_exits_1_and_a_broken_suite_2(gateway: Gateway, tmp_path: Path) -> None:
    strict = tmp_path / "strict.yaml"
    strict.write_text((ROOT / "evals/suites/smoke.yaml").read_text().replace("threshold: 0.9", "threshold: 1.01"))
    (tmp_path / "data").symlink_to(ROOT / "evals/suites/data")
    base = ["--base-url", gateway.url, "--api-key", CLIENT_KEY, "--cache-dir", str(tmp_path / "cache"), "--no-store"]
    failed = subprocess.run([*EVAL, "run", str(strict), *base], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert failed.returncode == 1, failed.stdout + failed.stderr
    broken = subprocess.run([*EVAL, "run", "evals/suites/smoke.yaml", "--base-url", gateway.url, "--api-key", "wrong",
                             "--no-store"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert broken.returncode == 2, broken.stdout + broken.stderr
