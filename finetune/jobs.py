"""Fine-tuning jobs as stored rows: create, read, list, cancel; their events and checkpoints.

The queue transitions a worker makes (claim, heartbeat, finish, reap) are in `finetune.queue`.
"""

from __future__ import annotations

import builtins
from dataclasses import dataclass
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from finetune import schema
from finetune.db import dumps, loads, new_id, now_s, page, reading, writing
from finetune.errors import Conflict, JobNotFound
from finetune.records import (
    FINISHED,
    CheckpointMetrics,
    FineTuningJob,
    Hyperparameters,
    JobCheckpoint,
    JobError,
    JobEvent,
    JobExtensions,
    Page,
)

_j, _e, _c = schema.jobs, schema.events, schema.checkpoints
Level = Literal["info", "warn", "error"]
EVENT_PREFIX = "ftevent-"


@dataclass(frozen=True)
class JobSpec:
    """What a worker needs to run a job: the resolved request."""

    id: str
    owner: str | None
    model: str
    method: str
    training_file: str
    validation_file: str | None
    hyperparameters: Hyperparameters
    extensions: JobExtensions
    suffix: str | None
    seed: int
    attempts: int


def _spec(row: Any) -> JobSpec:
    return JobSpec(
        id=row.id, owner=row.owner, model=row.model, method=row.method, training_file=row.training_file,
        validation_file=row.validation_file, hyperparameters=Hyperparameters(**loads(row.hyperparameters)),
        extensions=JobExtensions(**loads(row.extensions)), suffix=row.suffix, seed=row.seed, attempts=row.attempts,
    )


def job_object(row: Any) -> FineTuningJob:
    hp = loads(row.hyperparameters)
    method: dict[str, Any] = {"type": row.method}
    if row.method == "supervised":
        method["supervised"] = {"hyperparameters": hp}
    error = loads(row.error)
    return FineTuningJob(
        id=row.id, created_at=row.created_at, error=JobError(**error) if error else None,
        fine_tuned_model=row.fine_tuned_model, finished_at=row.finished_at, hyperparameters=Hyperparameters(**hp),
        model=row.model, result_files=loads(row.result_files), seed=row.seed, status=row.status,
        trained_tokens=row.trained_tokens, training_file=row.training_file, validation_file=row.validation_file,
        estimated_finish=row.estimated_finish if row.status == "running" else None, metadata=loads(row.metadata),
        method=method, user_provided_suffix=row.suffix, llmops=loads(row.extensions),
    )


def event_id(seq: int) -> str:
    return f"{EVENT_PREFIX}{seq:012d}"


def _event_seq(value: str) -> int | None:
    digits = value.removeprefix(EVENT_PREFIX)
    return int(digits) if value.startswith(EVENT_PREFIX) and digits.isdigit() else None


def _event(row: Any) -> dict[str, Any]:
    return JobEvent(id=event_id(row.seq), created_at=row.created_at, level=row.level, message=row.message,
                    data=loads(row.data), type=row.type).model_dump()


def _checkpoint(row: Any) -> dict[str, Any]:
    return JobCheckpoint(
        id=row.id, created_at=row.created_at, fine_tuned_model_checkpoint=row.model_name, fine_tuning_job_id=row.job_id,
        metrics=CheckpointMetrics(**loads(row.metrics)), step_number=row.step_number,
    ).model_dump()


def insert_event(conn: Connection, job_id: str, message: str, *, level: Level = "info",
                 type: Literal["message", "metrics"] = "message", data: dict[str, Any] | None = None) -> None:
    conn.execute(_e.insert().values(job_id=job_id, created_at=now_s(), level=level, type=type, message=message,
                                    data=dumps(data) if data is not None else None))


class JobStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # ------------------------------------------------------------------------------ jobs
    def create(self, *, owner: str | None, model: str, method: str, training_file: str, validation_file: str | None,
               hyperparameters: Hyperparameters, extensions: JobExtensions, suffix: str | None, seed: int,
               metadata: dict[str, str] | None) -> FineTuningJob:
        job_id = new_id("ftjob")
        row = {
            "id": job_id, "owner": owner, "created_at": now_s(), "model": model, "method": method,
            "training_file": training_file, "validation_file": validation_file,
            "hyperparameters": dumps(hyperparameters.model_dump()),
            "extensions": dumps(extensions.model_dump(exclude_none=True)), "suffix": suffix, "seed": seed,
            "metadata": dumps(metadata) if metadata is not None else None, "status": "queued",
            "result_files": "[]", "attempts": 0,
        }

        def work(conn: Connection) -> Any:
            conn.execute(_j.insert().values(**row))
            insert_event(conn, job_id, f"Created fine-tuning job: {job_id}")
            insert_event(conn, job_id, f"Validating training file: {training_file}")
            insert_event(conn, job_id, "Files validated, moving job to queued state")
            return conn.execute(sa.select(_j).where(_j.c.id == job_id)).one()

        return job_object(writing(self.engine, work))

    def _scoped(self, stmt: sa.Select[Any], owner: str | None) -> sa.Select[Any]:
        return stmt if owner is None else stmt.where(_j.c.owner == owner)

    def _check_visible(self, conn: Connection, job_id: str, owner: str | None) -> None:
        if conn.execute(self._scoped(sa.select(_j.c.seq).where(_j.c.id == job_id), owner)).first() is None:
            raise JobNotFound(job_id)

    def get(self, job_id: str, *, owner: str | None = None) -> FineTuningJob:
        with reading(self.engine) as conn:
            row = conn.execute(self._scoped(sa.select(_j).where(_j.c.id == job_id), owner)).first()
        if row is None:
            raise JobNotFound(job_id)
        return job_object(row)

    def spec(self, job_id: str) -> JobSpec:
        with reading(self.engine) as conn:
            row = conn.execute(sa.select(_j).where(_j.c.id == job_id)).first()
        if row is None:
            raise JobNotFound(job_id)
        return _spec(row)

    def list(self, *, owner: str | None, after: str | None = None, limit: int = 20,
             metadata: dict[str, str] | None = None) -> Page:
        with reading(self.engine) as conn:
            if metadata:
                # Metadata is a JSON text column: filter in Python over the caller's jobs (few per owner).
                rows = conn.execute(self._scoped(sa.select(_j), owner).order_by(_j.c.seq.desc())).all()
                keep = [r.id for r in rows if all((loads(r.metadata) or {}).get(k) == v for k, v in metadata.items())]
                stmt = self._scoped(sa.select(_j), owner).where(_j.c.id.in_(keep))
            else:
                stmt = self._scoped(sa.select(_j), owner)
            return page(conn, _j, stmt, after=after, limit=limit, render=lambda r: job_object(r).model_dump())

    def cancel(self, job_id: str, *, owner: str | None = None) -> FineTuningJob:
        """Cancel at once in the database; a worker running the job sees it at its next step."""

        def work(conn: Connection) -> Any:
            row = conn.execute(self._scoped(sa.select(_j).where(_j.c.id == job_id), owner)).first()
            if row is None:
                raise JobNotFound(job_id)
            if row.status in FINISHED:
                raise Conflict(f"Job {job_id} has already {row.status}; only unfinished jobs can be cancelled.",
                               param="fine_tuning_job_id")
            updated = conn.execute(_j.update().where(_j.c.id == job_id).where(_j.c.status == row.status).values(
                status="cancelled", finished_at=now_s())).rowcount
            if not updated:  # a worker finished it between our read and our write (PostgreSQL)
                raise Conflict(f"Job {job_id} finished while it was being cancelled.", param="fine_tuning_job_id")
            insert_event(conn, job_id, "The job was cancelled" + (" (the worker stops after its current step)"
                                                                    if row.status == "running" else ""))
            return conn.execute(sa.select(_j).where(_j.c.id == job_id)).one()

        return job_object(writing(self.engine, work))

    # ------------------------------------------------------------------------------ events
    def add_event(self, job_id: str, message: str, *, level: Level = "info",
                  type: Literal["message", "metrics"] = "message", data: dict[str, Any] | None = None) -> None:
        writing(self.engine, lambda conn: insert_event(conn, job_id, message, level=level, type=type, data=data))

    def events(self, job_id: str, *, owner: str | None = None, after: str | None = None, limit: int = 20) -> Page:
        """Newest first, as OpenAI lists them."""
        with reading(self.engine) as conn:
            self._check_visible(conn, job_id, owner)
            stmt = sa.select(_e).where(_e.c.job_id == job_id)
            return page(conn, _e, stmt, after=after, limit=limit, render=_event, seq_of_id=_event_seq)

    # ------------------------------------------------------------------------------ checkpoints
    def add_checkpoint(self, job_id: str, step: int, metrics: CheckpointMetrics, path: str,
                       model_name: str) -> JobCheckpoint:
        checkpoint_id, created = new_id("ftckpt"), now_s()
        row = {"id": checkpoint_id, "job_id": job_id, "created_at": created, "step_number": step,
               "metrics": dumps(metrics.model_dump(exclude_none=True)), "path": path, "model_name": model_name}

        def work(conn: Connection) -> None:
            conn.execute(_c.insert().values(**row))
            insert_event(conn, job_id, f"Checkpoint created at step {step}", data={"step": step, "path": path})

        writing(self.engine, work)
        return JobCheckpoint(id=checkpoint_id, created_at=created, fine_tuned_model_checkpoint=model_name,
                             fine_tuning_job_id=job_id, metrics=metrics, step_number=step)

    def checkpoints(self, job_id: str, *, owner: str | None = None, after: str | None = None,
                    limit: int = 10) -> Page:
        with reading(self.engine) as conn:
            self._check_visible(conn, job_id, owner)
            return page(conn, _c, sa.select(_c).where(_c.c.job_id == job_id), after=after, limit=limit,
                        render=_checkpoint)

    def checkpoint_paths(self, job_id: str) -> builtins.list[tuple[int, str]]:
        """(step, path) of every recorded checkpoint, latest first."""
        with reading(self.engine) as conn:
            rows = conn.execute(sa.select(_c.c.step_number, _c.c.path).where(_c.c.job_id == job_id)
                                .order_by(_c.c.step_number.desc())).all()
        return [(int(r.step_number), str(r.path)) for r in rows]
