"""The embedded stack (no --base-url): config relocation, and a stack that cannot start is exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from evals import cli
from evals.embedded import relocate
from tests.support import procs


def test_relocate_moves_managed_triton_and_its_deployments() -> None:
    config = yaml.safe_load((procs.ROOT / "configs/gateway.yaml").read_text())
    moved = relocate(config)
    t = moved["triton"]
    assert {t["http_port"], t["grpc_port"], t["metrics_port"]}.isdisjoint({8100, 8101, 8102})
    (dep,) = moved["models"][0]["deployments"]
    assert dep["url"] == f"127.0.0.1:{t['grpc_port']}"
    assert config["triton"]["grpc_port"] == 8101  # the original is untouched
    external = {"triton": {"managed": False}, "models": [{"name": "m", "deployments": [
        {"kind": "triton", "url": "10.0.0.5:8001", "model": "m", "tokenizer": "t"}]}]}
    assert relocate(external)["models"] == external["models"]


def test_embedded_stack_that_cannot_start_is_exit_2(tmp_path: Path) -> None:
    (tmp_path / "data.jsonl").write_text('{"input": "a", "expected": "a"}\n')
    (tmp_path / "s.yaml").write_text("name: emb\ndataset: data.jsonl\ntarget: {model: smollm2}\nmetrics: [contains]\n")
    (tmp_path / "gateway.yaml").write_text("triton: {managed: false}\nmodels: nope\n")  # invalid: serve exits 2
    code = cli.main(["run", str(tmp_path / "s.yaml"), "--config", str(tmp_path / "gateway.yaml"), "--no-store",
                     "--json", str(tmp_path / "r.json"), "-q", "--cache-dir", str(tmp_path / "c")])
    assert code == 2
    error = json.loads((tmp_path / "r.json").read_text())["suites"][0]["error"]
    assert "embedded stack" in error and "models" in error
