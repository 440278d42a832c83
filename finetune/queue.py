"""The job queue in the database: what workers do to jobs.

    queued ──claim──▶ running ──succeed──▶ succeeded
       ▲                 │ ├──fail──────▶ failed
       │                 │ └──(cancel, by the API)──▶ cancelled
       └──reap / requeue─┘      (a stale heartbeat: requeued while attempts remain, else failed)

Every transition is one conditional UPDATE (`WHERE status = 'queued'`, `WHERE claimed_by = me AND
status = 'running'`), so several workers and reapers can race without a lock service: the loser's
UPDATE matches no row. A worker whose heartbeat UPDATE matches no row has lost its job (cancelled
or reaped) and stops at its next step.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from finetune import schema
from finetune.db import dumps, now_s, reading, writing
from finetune.jobs import JobSpec, _spec, insert_event
from finetune.records import JobError, RegisteredModel

_j, _m = schema.jobs, schema.models


@dataclass(frozen=True)
class Reaped:
    job_id: str
    worker: str | None
    action: str  # "requeued" | "failed"


def _mine(job_id: str, worker: str) -> Any:
    return sa.and_(_j.c.id == job_id, _j.c.claimed_by == worker, _j.c.status == "running")


class JobQueue:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def claim(self, worker: str) -> JobSpec | None:
        """Take the oldest queued job, or None. Safe against other workers doing the same."""
        with reading(self.engine) as conn:
            candidates = [r.id for r in conn.execute(
                sa.select(_j.c.id).where(_j.c.status == "queued").order_by(_j.c.seq).limit(5))]
        for job_id in candidates:
            def work(conn: Connection, job_id: str = job_id) -> Any:
                now = now_s()
                taken = conn.execute(_j.update().where(_j.c.id == job_id).where(_j.c.status == "queued").values(
                    status="running", claimed_by=worker, heartbeat_at=time.time(), attempts=_j.c.attempts + 1,
                    started_at=sa.func.coalesce(_j.c.started_at, now))).rowcount
                if not taken:
                    return None
                row = conn.execute(sa.select(_j).where(_j.c.id == job_id)).one()
                insert_event(conn, job_id, f"Fine-tuning job started (worker {worker}, attempt {row.attempts})",
                             data={"worker": worker, "attempt": row.attempts})
                return row

            row = writing(self.engine, work)
            if row is not None:
                return _spec(row)
        return None

    def heartbeat(self, job_id: str, worker: str, *, estimated_finish: int | None = None) -> bool:
        """Refresh the claim. False: the job is no longer ours (cancelled, reaped, finished)."""
        values: dict[str, Any] = {"heartbeat_at": time.time()}
        if estimated_finish is not None:
            values["estimated_finish"] = estimated_finish
        return bool(writing(self.engine, lambda conn: conn.execute(
            _j.update().where(_mine(job_id, worker)).values(**values)).rowcount))

    def status(self, job_id: str) -> str | None:
        with reading(self.engine) as conn:
            row = conn.execute(sa.select(_j.c.status).where(_j.c.id == job_id)).first()
        return None if row is None else str(row.status)

    def succeed(self, job_id: str, worker: str, *, fine_tuned_model: str, trained_tokens: int,
                result_files: list[str], model: RegisteredModel | None) -> bool:
        """Finish the job and register its model in one transaction (both or neither)."""

        def work(conn: Connection) -> bool:
            done = conn.execute(_j.update().where(_mine(job_id, worker)).values(
                status="succeeded", fine_tuned_model=fine_tuned_model, trained_tokens=trained_tokens,
                result_files=dumps(result_files), finished_at=now_s(), estimated_finish=None)).rowcount
            if not done:
                return False
            if model is not None:
                conn.execute(_m.insert().values(**{**model.model_dump(), "metrics": dumps(model.metrics)}))
                insert_event(conn, job_id, f"New fine-tuned model created: {fine_tuned_model}",
                             data={"model": fine_tuned_model})
            insert_event(conn, job_id, "The job has successfully completed")
            return True

        return bool(writing(self.engine, work))

    def fail(self, job_id: str, worker: str, error: JobError, *, trained_tokens: int | None = None) -> bool:
        def work(conn: Connection) -> bool:
            done = conn.execute(_j.update().where(_mine(job_id, worker)).values(
                status="failed", error=dumps(error.model_dump()), finished_at=now_s(), estimated_finish=None,
                trained_tokens=trained_tokens)).rowcount
            if done:
                insert_event(conn, job_id, f"The job failed: {error.message}", level="error",
                             data={"code": error.code})
            return bool(done)

        return bool(writing(self.engine, work))

    def requeue(self, job_id: str, worker: str, reason: str) -> bool:
        """Give a job back (worker shutting down): it resumes from its last checkpoint elsewhere."""

        def work(conn: Connection) -> bool:
            # The attempt did not fail, so it does not count against max_attempts.
            done = conn.execute(_j.update().where(_mine(job_id, worker)).values(
                status="queued", claimed_by=None, heartbeat_at=None, attempts=_j.c.attempts - 1)).rowcount
            if done:
                insert_event(conn, job_id, f"Job requeued: {reason}", level="warn")
            return bool(done)

        return bool(writing(self.engine, work))

    def reap(self, *, stale_after_s: float, max_attempts: int) -> list[Reaped]:
        """Requeue (attempts left) or fail (none left) running jobs whose worker stopped beating."""
        cutoff = time.time() - stale_after_s
        with reading(self.engine) as conn:
            stale = conn.execute(sa.select(_j.c.id, _j.c.claimed_by, _j.c.attempts, _j.c.heartbeat_at).where(
                _j.c.status == "running").where(_j.c.heartbeat_at < cutoff)).all()
        reaped: list[Reaped] = []
        for row in stale:
            silent = time.time() - float(row.heartbeat_at)
            lost = f"worker {row.claimed_by} stopped sending heartbeats ({silent:.0f}s without one)"
            retry = row.attempts < max_attempts

            def work(conn: Connection, row: Any = row, lost: str = lost, retry: bool = retry) -> bool:
                guard = sa.and_(_j.c.id == row.id, _j.c.status == "running", _j.c.claimed_by == row.claimed_by,
                                _j.c.heartbeat_at < cutoff)
                if retry:
                    done = conn.execute(_j.update().where(guard).values(
                        status="queued", claimed_by=None, heartbeat_at=None)).rowcount
                    message = (f"Job requeued: {lost}; attempt {row.attempts + 1} of {max_attempts} "
                               "resumes from the last checkpoint")
                else:
                    error = JobError(code="worker_lost", message=f"The job's {lost} after {row.attempts} attempt(s).")
                    done = conn.execute(_j.update().where(guard).values(
                        status="failed", error=dumps(error.model_dump()), finished_at=now_s(),
                        estimated_finish=None)).rowcount
                    message = f"The job failed: {error.message}"
                if done:
                    insert_event(conn, row.id, message, level="warn" if retry else "error")
                return bool(done)

            if writing(self.engine, work):
                reaped.append(Reaped(row.id, row.claimed_by, "requeued" if retry else "failed"))
        return reaped
