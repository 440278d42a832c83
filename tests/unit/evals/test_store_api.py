"""Runs kept: the store, `/v1/evals/runs` through the real FastAPI app pieces, and the prompt gate
with the real prompt registry."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from evals import cli
from evals.store import EvalStore, latest_passing_run, prompt_gate
from gateway.api import evals as evals_api
from gateway.app import install_error_handlers
from gateway.auth import KeyStore
from tests.unit.evals.conftest import FAKE_KEY, Cli, WriteSuite

CLIENT, ADMIN = "sk-client", "sk-admin"


def doc(suite: str = "support", status: str = "passed", version: int | str = 3, passed: bool = True,
        **extra: Any) -> dict[str, Any]:
    return {
        "suite": suite, "status": status, "exit_code": {"passed": 0, "failed": 1, "error": 2}[status], "n_items": 4,
        "duration_s": 1.5, "started_at": "2026-01-01T00:00:00+00:00",
        "targets": [{"name": f"v{version}", "kind": "prompt", "model": "m", "prompt_name": "support-answer",
                     "prompt_version": str(version), "passed": passed,
                     "metrics": {"contains": {"value": 0.9, "stats": {"mean": 0.9}}}}],
        **extra,
    }


@pytest.fixture
def store(tmp_path: Path) -> EvalStore:
    s = EvalStore(f"sqlite:///{tmp_path / 'runs.sqlite3'}")
    yield s  # type: ignore[misc]
    s.close()


def test_record_get_list_and_latest_passing(store: EvalStore) -> None:
    first = store.record(doc(version=3))
    failed = store.record(doc(version=4, status="failed", passed=False))
    other = store.record(doc(suite="other", version=4))
    assert first.targets[0].prompt_version == "3" and first.targets[0].metrics == {"contains": 0.9}
    assert store.get(first.id).results["suite"] == "support"  # type: ignore[union-attr]
    assert [r.id for r in store.list_runs()] == [other.id, failed.id, first.id]
    assert [r.id for r in store.list_runs(suite="support", prompt_version="v4")] == [failed.id]
    assert store.latest_passing_run("support", "support-answer", 3).id == first.id  # type: ignore[union-attr]
    assert store.latest_passing_run("support", "support-answer", 4) is None  # the v4 run failed
    assert store.latest_passing_run("other", "support-answer", "4").id == other.id  # type: ignore[union-attr]
    # a passing target in a run whose regression check on it failed does not count
    store.record(doc(version=5, regression_checks=[{"target": "v5", "passed": False}]))
    assert store.latest_passing_run("support", "support-answer", 5) is None
    assert latest_passing_run("support", "support-answer", 3, store=store) is not None


def test_record_rejects_what_is_not_a_run(store: EvalStore) -> None:
    from evals.store import InvalidRun

    with pytest.raises(InvalidRun, match="status"):
        store.record({"suite": "x", "status": "great", "exit_code": 0})


def test_prompt_gate_with_the_real_registry(store: EvalStore, tmp_path: Path) -> None:
    from prompts import GateRefused, PromptRegistry

    registry = PromptRegistry(f"sqlite:///{tmp_path / 'prompts.db'}", poll_interval_s=0,
                              gate=prompt_gate(store, {"support-answer": "support"}))
    try:
        spec = {"name": "support-answer", "messages": [{"role": "user", "content": "{{ q }}"}],
                "variables": {"q": {"type": "string"}}}
        registry.push(spec, actor="t")
        registry.move_label("support-answer", "staging", 1, actor="t")  # not a gated label
        with pytest.raises(GateRefused, match="no passing run of eval suite 'support'"):
            registry.move_label("support-answer", "production", 1, actor="t")
        store.record(doc(version=1))
        assert registry.move_label("support-answer", "production", 1, actor="t").moved
    finally:
        registry.close()
    strict = prompt_gate(store, {})
    with pytest.raises(Exception, match="no evaluation suite"):
        strict("unmapped", 1, "production")
    prompt_gate(store, {}, require_suite=False)("unmapped", 1, "production")


@pytest.fixture
def api(store: EvalStore) -> TestClient:
    app = FastAPI()
    install_error_handlers(app)
    app.include_router(evals_api.router)
    app.state.services = SimpleNamespace(keys=KeyStore([CLIENT], [ADMIN]), insecure=False)
    app.state.evals = store
    return TestClient(app)


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_api_record_list_get(api: TestClient) -> None:
    r = api.post("/v1/evals/runs", json=doc(), headers=auth(ADMIN))
    assert r.status_code == 201, r.text
    run = r.json()
    assert run["id"].startswith("evalrun_") and run["object"] == "eval.run" and "results" not in run
    api.post("/v1/evals/runs", json=doc(version=4, status="failed", passed=False), headers=auth(ADMIN))
    listed = api.get("/v1/evals/runs", headers=auth(CLIENT)).json()
    assert listed["object"] == "list" and len(listed["data"]) == 2 and listed["has_more"] is False
    page = api.get("/v1/evals/runs?limit=1", headers=auth(CLIENT)).json()
    assert len(page["data"]) == 1 and page["has_more"] is True
    filtered = api.get("/v1/evals/runs", params={"prompt": "support-answer", "version": "3"}, headers=auth(CLIENT)).json()
    assert [d["id"] for d in filtered["data"]] == [run["id"]]
    assert api.get("/v1/evals/runs?status=failed", headers=auth(CLIENT)).json()["data"][0]["passed"] is False
    full = api.get(f"/v1/evals/runs/{run['id']}", headers=auth(CLIENT)).json()
    assert full["results"]["targets"][0]["prompt_version"] == "3"


def test_api_errors_use_the_gateway_envelope(api: TestClient) -> None:
    assert api.post("/v1/evals/runs", json=doc()).status_code == 401
    denied = api.post("/v1/evals/runs", json=doc(), headers=auth(CLIENT))
    assert denied.status_code == 403 and denied.json()["error"]["code"] == "permission_denied"
    bad = api.post("/v1/evals/runs", json={"suite": "x"}, headers=auth(ADMIN))
    assert bad.status_code == 400 and bad.json()["error"]["type"] == "invalid_request_error"
    missing = api.get("/v1/evals/runs/evalrun_nope", headers=auth(CLIENT))
    assert missing.status_code == 404 and missing.json()["error"]["type"] == "not_found_error"
    assert api.get("/v1/evals/runs?limit=0", headers=auth(CLIENT)).status_code == 400
    assert api.get("/v1/evals/runs").status_code == 401


def test_api_without_a_store_is_503(store: EvalStore) -> None:
    app = FastAPI()
    install_error_handlers(app)
    app.include_router(evals_api.router)
    app.state.services = SimpleNamespace(keys=KeyStore([CLIENT], [ADMIN]), insecure=False)
    r = TestClient(app).get("/v1/evals/runs", headers=auth(CLIENT))
    assert r.status_code == 503 and r.json()["error"]["code"] == "service_unavailable"


def test_cli_stores_runs_and_the_gate_sees_them(fake_gateway: str, write_suite: WriteSuite, run_cli: Cli,
                                                tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path / 'cli-runs.sqlite3'}"
    rows = [{"id": "q0", "variables": {"answer": "a0"}, "expected": "a0"}]
    path = write_suite({"name": "qa-suite", "target": {"kind": "prompt", "model": "echo",
                                                       "prompt": {"name": "qa", "label": "production"}},
                        "metrics": [{"metric": "contains", "threshold": 1.0}]}, rows)
    assert run_cli(path, "--base-url", fake_gateway, "--api-key", FAKE_KEY, "--store", url, store=True) == 0
    store = EvalStore(url)
    try:
        run = store.latest_passing_run("qa-suite", "qa", 1)
        assert run is not None and run.targets[0].prompt_label == "production"
    finally:
        store.close()
    capsys.readouterr()
    assert cli.main(["runs", "--store", url, "--format", "json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert listed[0]["suite"] == "qa-suite" and listed[0]["passed"] is True
