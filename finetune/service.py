"""`FineTuning`: the package's facade, what the gateway's routers, the CLI and workers hold.

    ft = FineTuning(settings, database_url, root)
    ft.files.create(...), ft.create_job(JobCreate(...), owner=...), ft.jobs.get/list/cancel/events/checkpoints
    ft.feedback.add(...), ft.models.list("chat"), ft.queue.reap(...)
"""

from __future__ import annotations

import logging
import secrets
from pathlib import Path
from typing import Any

from finetune.db import open_engine
from finetune.errors import Forbidden, InvalidJob
from finetune.feedback import FeedbackStore
from finetune.files import TRAINING, FileStore
from finetune.jobs import JobStore
from finetune.queue import JobQueue, Reaped
from finetune.records import FineTuningJob, Hyperparameters, HyperparametersIn, JobCreate, JobExtensions
from finetune.registry import ModelRegistry
from finetune.settings import FinetuneSettings

log = logging.getLogger("finetune")

DETECTOR_MODEL = "guardrail-injection"
METHODS = ("supervised", "guardrail_detector")


class FineTuning:
    def __init__(self, settings: FinetuneSettings, database_url: str, root: Path) -> None:
        self.settings = settings
        self.root = root
        self.engine = open_engine(database_url)
        self.files = FileStore(self.engine, min_examples=settings.min_examples)
        self.jobs = JobStore(self.engine)
        self.queue = JobQueue(self.engine)
        self.feedback = FeedbackStore(self.engine)
        self.models = ModelRegistry(self.engine)
        self.data_dir = settings.resolve(settings.data_dir, root)
        self.models_dir = settings.resolve(settings.models_dir, root)

    def close(self) -> None:
        self.engine.dispose()

    def reap(self) -> list[Reaped]:
        return self.queue.reap(stale_after_s=self.settings.stale_after_s, max_attempts=self.settings.max_attempts)

    def job_dir(self, job_id: str) -> Path:
        return self.data_dir / job_id

    # ------------------------------------------------------------------------------ job creation
    def trainable_models(self) -> list[str]:
        return [*self.settings.base_models, DETECTOR_MODEL]

    def _method(self, req: JobCreate) -> str:
        method = req.method.type if req.method is not None else "supervised"
        if req.model == DETECTOR_MODEL and req.method is None:
            method = "guardrail_detector"
        if method not in METHODS:
            raise InvalidJob(f"Method '{method}' is not supported; use one of: {', '.join(METHODS)}.",
                             param="method.type")
        wanted = DETECTOR_MODEL if method == "guardrail_detector" else None
        if (wanted and req.model != wanted) or (not wanted and req.model not in self.settings.base_models):
            raise InvalidJob(
                f"Model '{req.model}' is not available for {method} fine-tuning; available: "
                + (wanted or ", ".join(self.settings.base_models)) + ".",
                param="model", code="model_not_available")
        return method

    def _hyperparameters(self, req: JobCreate) -> Hyperparameters:
        raw: Any = req.hyperparameters
        if req.method is not None and req.method.supervised:
            raw = req.method.supervised.get("hyperparameters") or raw
        given = raw if isinstance(raw, HyperparametersIn) else HyperparametersIn.model_validate(raw or {})
        d = self.settings.hyperparameters

        def pick(value: Any, default: Any) -> Any:
            return default if value in (None, "auto") else value

        return Hyperparameters(batch_size=pick(given.batch_size, d.batch_size),
                               learning_rate_multiplier=float(pick(given.learning_rate_multiplier,
                                                                   d.learning_rate_multiplier)),
                               n_epochs=pick(given.n_epochs, d.n_epochs))

    def _extensions(self, req: JobCreate, method: str, owner: str | None) -> JobExtensions:
        ext = req.llmops or JobExtensions()
        if ext.eval_suite is not None and owner is not None:
            # A suite is a server-side file that names datasets and plugin modules to import.
            raise Forbidden("Only admin keys may name an eval suite; configured gates "
                            "(finetune.eval_gate) apply to every job.", param="llmops.eval_suite")
        if ext.eval_suite is not None and not self.settings.resolve(ext.eval_suite, self.root).is_file():
            raise InvalidJob(f"Eval suite '{ext.eval_suite}' not found.", param="llmops.eval_suite")
        if method != "supervised":
            return ext
        lora = self.settings.lora
        rank = ext.lora_rank or lora.rank
        targets = lora.target_modules if isinstance(lora.target_modules, str) else list(lora.target_modules)
        return ext.model_copy(update={
            "lora_rank": rank, "lora_alpha": ext.lora_alpha or lora.alpha or 2.0 * rank,
            "lora_dropout": lora.dropout if ext.lora_dropout is None else ext.lora_dropout,
            "target_modules": ext.target_modules or ([targets] if isinstance(targets, str) else targets),
            "max_seq_len": ext.max_seq_len or self.settings.max_seq_len,
            "checkpoint_every_steps": ext.checkpoint_every_steps or self.settings.checkpoint_every_steps,
            "eval_suite": ext.eval_suite or self.settings.eval_gate.get(req.model),
        })

    def _seed(self, req: JobCreate, method: str) -> int:
        if req.seed is not None:
            return req.seed
        # A detector retrain is compared with the shipped version, so by default it fits with the
        # seed that version was fit with: the only difference left is the data.
        return self.settings.detector.seed if method == "guardrail_detector" else secrets.randbelow(2**31)

    def _check_file(self, file_id: str, param: str, kind: str, owner: str | None) -> None:
        purpose, found, _ = self.files.kind(file_id, owner=owner, param=param)
        if purpose != TRAINING:
            raise InvalidJob(f"File {file_id} has purpose '{purpose}'; upload it with purpose '{TRAINING}'.",
                             param=param)
        if found != kind:
            what = {"chat": "chat examples ({\"messages\": [...]})", "labelled": "labelled text ({\"text\", \"label\"})"}
            raise InvalidJob(f"File {file_id} holds {what.get(found, found)}; this job needs {what[kind]}.",
                             param=param)

    def create_job(self, req: JobCreate, *, owner: str | None) -> FineTuningJob:
        """Validate and queue a job. `owner` None: an admin key (or local tooling)."""
        if req.model_extra:
            log.info("fine-tuning job request: ignored unknown fields %s", sorted(req.model_extra))
        if req.integrations:
            raise InvalidJob("Integrations (Weights & Biases) are not supported by this gateway.", param="integrations")
        method = self._method(req)
        kind = "chat" if method == "supervised" else "labelled"
        self._check_file(req.training_file, "training_file", kind, owner)
        if req.validation_file is not None:
            self._check_file(req.validation_file, "validation_file", kind, owner)
        return self.jobs.create(
            owner=owner, model=req.model, method=method, training_file=req.training_file,
            validation_file=req.validation_file, hyperparameters=self._hyperparameters(req),
            extensions=self._extensions(req, method, owner), suffix=req.suffix,
            seed=self._seed(req, method), metadata=req.metadata,
        )
