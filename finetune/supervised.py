"""One LoRA job, start to finish: data → train (events, checkpoints) → merge → gate → publish.

Runs inside a worker (or under torchrun: every rank trains, rank 0 alone talks to the database
and writes files). A resumed job continues from its newest complete checkpoint.
"""

from __future__ import annotations

import csv
import io
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from finetune.data import Encoded, encode_all
from finetune.device import Placement
from finetune.errors import TrainingFailed
from finetune.jobs import JobSpec
from finetune.modelio import MANIFEST, load_base, load_tokenizer, public_name, publish, save_model_folder, serving_name
from finetune.records import CheckpointMetrics, RegisteredModel
from finetune.service import FineTuning
from finetune.trainer import LoraTrainer, StepReport, TrainConfig, attach_lora, checkpoint_dirs


class Control(Protocol):
    def stop_reason(self) -> str | None: ...

    def set_eta(self, seconds: float) -> None: ...


class Stopped(Exception):
    """Training stopped before the end: `reason` is "cancelled", "lost" or "shutdown"."""

    def __init__(self, reason: str, step: int) -> None:
        super().__init__(reason)
        self.reason = reason
        self.step = step


@dataclass
class JobHooks:
    """Trainer hooks that turn progress into job events and checkpoint rows."""

    ft: FineTuning
    spec: JobSpec
    control: Control
    model_name: str
    history: list[StepReport] = field(default_factory=list)

    def on_step(self, r: StepReport) -> None:
        self.history.append(r)
        self.control.set_eta(r.eta_s)
        self.ft.jobs.add_event(
            self.spec.id,
            f"Step {r.step}/{r.total_steps}: training loss={r.loss:.4f}, {r.tokens_per_s:.0f} tokens/s, "
            f"ETA {r.eta_s:.0f}s",
            type="metrics",
            data={"step": r.step, "total_steps": r.total_steps, "epoch": r.epoch, "train_loss": r.loss,
                  "train_mean_token_accuracy": r.token_accuracy, "tokens": r.tokens,
                  "tokens_per_s": r.tokens_per_s, "eta_s": r.eta_s},
        )

    def on_checkpoint(self, step: int, path: Path, metrics: dict[str, float]) -> None:
        self.ft.jobs.add_checkpoint(self.spec.id, step, CheckpointMetrics(**metrics), str(path),
                                    f"{self.model_name}:ckpt-step-{step}")
        for _, old in list(checkpoint_dirs(path.parent))[self.ft.settings.keep_checkpoints:]:
            shutil.rmtree(old, ignore_errors=True)

    def stop_reason(self) -> str | None:
        return self.control.stop_reason()


def _conversations(ft: FineTuning, file_id: str) -> list[list[dict[str, Any]]]:
    return [list(ex.messages) for ex in ft.files.parsed(file_id).chat]


def train_config(spec: JobSpec, ft: FineTuning) -> TrainConfig:
    ext, hp = spec.extensions, spec.hyperparameters
    targets = ext.target_modules or ["all-linear"]
    return TrainConfig(
        n_epochs=hp.n_epochs, batch_size=hp.batch_size, seed=spec.seed,
        learning_rate=ft.settings.hyperparameters.base_learning_rate * hp.learning_rate_multiplier,
        lora_rank=ext.lora_rank or ft.settings.lora.rank, lora_alpha=ext.lora_alpha,
        lora_dropout=ext.lora_dropout or 0.0,
        target_modules="all-linear" if targets == ["all-linear"] else targets,
        max_steps=ext.max_steps, checkpoint_every=ext.checkpoint_every_steps,
    )


def _results_csv(history: list[StepReport]) -> bytes:
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(["step", "train_loss", "train_accuracy", "tokens", "tokens_per_s"])
    for r in history:
        w.writerow([r.step, f"{r.loss:.6f}", f"{r.token_accuracy:.6f}", r.tokens, f"{r.tokens_per_s:.1f}"])
    return out.getvalue().encode()


def run_supervised(ft: FineTuning, spec: JobSpec, control: Control, where: Placement, worker: str) -> None:
    main = where.is_main
    say = ft.jobs.add_event if main else (lambda *a, **k: None)
    base = ft.settings.base_models[spec.model]
    folder = ft.settings.resolve(base.path, ft.root)
    tokenizer = load_tokenizer(folder, base)
    max_len = spec.extensions.max_seq_len or ft.settings.max_seq_len
    examples, dropped = encode_all(tokenizer, _conversations(ft, spec.training_file), max_len)
    if dropped:
        say(spec.id, f"{dropped} example(s) dropped: their assistant turns lie beyond max_seq_len={max_len}",
            level="warn")
    if not examples:
        raise TrainingFailed("No example has an assistant turn within max_seq_len.", code="invalid_training_file",
                             param="training_file")
    validation: list[Encoded] = []
    if spec.validation_file:
        validation, _ = encode_all(tokenizer, _conversations(ft, spec.validation_file), max_len)

    cfg = train_config(spec, ft)
    name = public_name(spec.model, spec.suffix, spec.id)
    job_dir = ft.job_dir(spec.id)
    job_dir.mkdir(parents=True, exist_ok=True)
    resume = next((p for _, p in checkpoint_dirs(job_dir)), None)
    say(spec.id, f"Training {spec.model} with LoRA (rank {cfg.lora_rank}) on {len(examples)} examples, "
                 f"{cfg.total_steps(len(examples))} steps on {where.device}"
                 + (f" x{where.world_size}" if where.distributed else "")
                 + (f"; resuming from {resume.name}" if resume else ""))
    trainer = LoraTrainer(attach_lora(load_base(folder, base), cfg), cfg, where, int(tokenizer.pad_token_id))
    hooks = JobHooks(ft, spec, control, name)
    result = trainer.train(examples, job_dir, hooks, resume=resume, validation=validation)
    if result.stopped:
        raise Stopped(result.stopped, result.steps)
    if not main:
        return
    say(spec.id, f"Training finished: {result.steps} steps, {result.tokens} tokens in {result.train_seconds:.0f}s; "
                 "merging the adapter into the base weights",
        data={"steps": result.steps, "tokens": result.tokens, "train_seconds": result.train_seconds,
              "cpu_seconds": result.cpu_seconds})
    candidate = job_dir / "candidate"
    served = serving_name(name)
    save_model_folder(trainer.merged(), tokenizer, candidate,
                      {"name": name, "serving_name": served, "base": spec.model, "job": spec.id})
    if spec.extensions.eval_suite:
        from finetune.evalgate import run_gate

        gate = run_gate(candidate, ft.settings.resolve(spec.extensions.eval_suite, ft.root), name)
        say(spec.id, gate.summary, level="info" if gate.passed else "error", data=gate.data)
        if not gate.passed:
            raise TrainingFailed(f"The candidate model failed the evaluation gate: {gate.summary}",
                                 code="eval_gate_failed")
    reason = control.stop_reason()
    if reason:
        raise Stopped(reason, result.steps)
    results = ft.files.create_results(f"{spec.id}-step_metrics.csv", _results_csv(hooks.history), owner=spec.owner)
    path = publish(candidate, ft.models_dir, served)
    first = hooks.history[0].loss if hooks.history else None
    model = RegisteredModel(name=name, job_id=spec.id, base=spec.model, kind="chat", serving_name=served,
                            path=str(path), created_at=int(path.joinpath(MANIFEST).stat().st_mtime),
                            metrics={"first_loss": first, "final_loss": result.losses[-1] if result.losses else None,
                                     "steps": result.steps})
    if not ft.queue.succeed(spec.id, worker, fine_tuned_model=name, trained_tokens=result.tokens,
                            result_files=[results.id], model=model):
        shutil.rmtree(path, ignore_errors=True)  # cancelled or reaped meanwhile: nothing may serve it
        raise Stopped("lost", result.steps)
    shutil.rmtree(candidate, ignore_errors=True)
