"""The LoRA loop on the real SmolLM2 model (a few short steps): deterministic, resumable from a
checkpoint to the same numbers, stoppable between steps; and the evaluation gate on a real model."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import torch

from finetune.data import encode_all
from finetune.device import Placement
from finetune.evalgate import run_gate
from finetune.modelio import load_base, load_tokenizer, save_model_folder
from finetune.settings import BaseModelSpec
from finetune.trainer import LoraTrainer, StepReport, TrainConfig, attach_lora, checkpoint_dirs

MODEL_DIR = Path(__file__).resolve().parents[3] / "models" / "smollm2"
SPEC = BaseModelSpec(path=str(MODEL_DIR))
QA = [("What is 2+2?", "4"), ("Name a color.", "Blue"), ("Say hello.", "Hello"), ("Name a fruit.", "Apple")]


@pytest.fixture(scope="module")
def base() -> tuple[Any, Any]:
    torch.set_num_threads(2)
    return load_tokenizer(MODEL_DIR, SPEC), load_base(MODEL_DIR, SPEC)


class Hooks:
    def __init__(self, stop_after: int | None = None) -> None:
        self.steps: list[StepReport] = []
        self.checkpoints: list[tuple[int, Path, dict[str, float]]] = []
        self.stop_after = stop_after

    def on_step(self, report: StepReport) -> None:
        self.steps.append(report)

    def on_checkpoint(self, step: int, path: Path, metrics: dict[str, float]) -> None:
        self.checkpoints.append((step, path, metrics))

    def stop_reason(self) -> str | None:
        return "cancelled" if self.stop_after is not None and len(self.steps) >= self.stop_after else None


def _trainer(base: tuple[Any, Any], max_steps: int) -> LoraTrainer:
    tokenizer, model = base
    cfg = TrainConfig(n_epochs=2, batch_size=2, learning_rate=3e-3, seed=11, lora_rank=2, max_steps=max_steps,
                      checkpoint_every=1)
    return LoraTrainer(attach_lora(copy.deepcopy(model), cfg), cfg, Placement(torch.device("cpu")),
                       int(tokenizer.pad_token_id))


def test_training_is_deterministic_resumable_and_stoppable(base: tuple[Any, Any], tmp_path: Path) -> None:
    tokenizer, _ = base
    convs = [[{"role": "user", "content": q}, {"role": "assistant", "content": f"ARRR: {a}"}] for q, a in QA]
    examples, dropped = encode_all(tokenizer, convs, 64)
    assert dropped == 0

    straight = Hooks()
    result = _trainer(base, 3).train(examples, tmp_path / "a", straight)
    losses = [s.loss for s in straight.steps]
    assert result.steps == 3 and len(losses) == 3 and losses[-1] < losses[0]  # it learns
    assert [c[0] for c in straight.checkpoints] == [1, 2, 3]
    assert result.tokens == sum(s.tokens for s in straight.steps) > 0
    assert straight.steps[-1].eta_s == 0 and straight.steps[0].total_steps == 3

    stopped = Hooks(stop_after=2)
    partial = _trainer(base, 3).train(examples, tmp_path / "b", stopped)
    assert partial.stopped == "cancelled" and partial.steps == 2  # checked between steps, never mid-step
    assert [s.loss for s in stopped.steps] == pytest.approx(losses[:2], rel=1e-5)  # same seed, same numbers

    latest = next(checkpoint_dirs(tmp_path / "b"))
    assert latest[0] == 2
    resumed_hooks = Hooks()
    resumed = _trainer(base, 3).train(examples, tmp_path / "b", resumed_hooks, resume=latest[1])
    assert resumed.resumed_from == 2 and [s.step for s in resumed_hooks.steps] == [3]
    assert resumed_hooks.steps[0].loss == pytest.approx(losses[2], rel=1e-4)  # resumed == uninterrupted
    assert resumed.tokens == result.tokens


def test_the_eval_gate_scores_a_real_model_folder(base: tuple[Any, Any], tmp_path: Path) -> None:
    tokenizer, model = base
    folder = save_model_folder(copy.deepcopy(model), tokenizer, tmp_path / "candidate", {"name": "candidate"})
    (tmp_path / "capital.jsonl").write_text(json.dumps(
        {"id": "france", "input": "What is the capital of France?", "expected": ["Paris"]}) + "\n")
    suite = {"dataset": "capital.jsonl", "target": {"kind": "model", "model": "smollm2",
                                                    "params": {"temperature": 0, "max_tokens": 12}}}
    passing = tmp_path / "knows.yaml"
    passing.write_text(json.dumps({"name": "knows", **suite, "metrics": [{"metric": "contains", "threshold": 1.0}]}))
    failing = tmp_path / "pirate.yaml"
    failing.write_text(json.dumps({"name": "pirate", **suite,
                                   "metrics": [{"metric": "regex", "pattern": "^ARRR:", "threshold": 1.0}]}))
    ok = run_gate(folder, passing, "ft:smollm2::candidate")
    assert ok.passed, ok.summary
    assert ok.summary.startswith("Evaluation gate 'knows' passed (1 items")
    refused = run_gate(folder, failing, "ft:smollm2::candidate")
    assert not refused.passed and refused.summary.startswith("Evaluation gate 'pirate' failed")
    broken = run_gate(folder, tmp_path / "missing.yaml", "x")
    assert not broken.passed and "cannot run" in broken.summary
