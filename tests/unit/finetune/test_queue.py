"""The job queue on SQLite and PostgreSQL: atomic claims, heartbeats, cancel, the reaper."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import sqlalchemy as sa

from finetune import schema
from finetune.errors import Conflict, JobNotFound
from finetune.records import JobCreate, JobError
from finetune.service import FineTuning
from tests.unit.finetune.conftest import ROOT, chat_file, settings_for


@pytest.fixture
def fq(any_db: str, tmp_path: Path) -> Iterator[FineTuning]:
    ft = FineTuning(settings_for(tmp_path, stale_after_s=5, max_attempts=2), any_db, ROOT)
    yield ft
    ft.close()


def _job(ft: FineTuning) -> str:
    f = ft.files.create("t.jsonl", "fine-tune", chat_file(), owner="k")
    return ft.create_job(JobCreate(model="smollm2", training_file=f.id), owner="k").id


def _age_heartbeat(ft: FineTuning, job_id: str, seconds: float) -> None:
    with ft.engine.begin() as conn:
        conn.execute(schema.jobs.update().where(schema.jobs.c.id == job_id).values(
            heartbeat_at=time.time() - seconds))


def test_each_queued_job_is_claimed_by_exactly_one_worker(fq: FineTuning) -> None:
    jobs = {_job(fq) for _ in range(6)}
    with ThreadPoolExecutor(4) as pool:
        claims = list(pool.map(lambda i: [s.id for s in iter(lambda: fq.queue.claim(f"w{i}"), None)], range(4)))
    claimed = [j for per_worker in claims for j in per_worker]
    assert sorted(claimed) == sorted(jobs)  # every job once, none twice
    assert fq.queue.claim("late") is None
    job = fq.jobs.get(claimed[0])
    assert job.status == "running"
    assert [e["message"] for e in fq.jobs.events(job.id).data][0].startswith("Fine-tuning job started (worker w")


def test_cancel_stops_the_heartbeat_and_the_workers_writes(fq: FineTuning) -> None:
    job_id = _job(fq)
    spec = fq.queue.claim("w1")
    assert spec is not None and spec.attempts == 1
    assert fq.queue.heartbeat(job_id, "w1", estimated_finish=int(time.time()) + 60)
    assert fq.jobs.get(job_id).estimated_finish is not None
    assert not fq.queue.heartbeat(job_id, "intruder")
    cancelled = fq.jobs.cancel(job_id, owner="k")
    assert cancelled.status == "cancelled" and cancelled.finished_at is not None
    assert not fq.queue.heartbeat(job_id, "w1")  # the worker learns it lost the job
    assert not fq.queue.succeed(job_id, "w1", fine_tuned_model="x", trained_tokens=1, result_files=[], model=None)
    assert not fq.queue.fail(job_id, "w1", JobError(code="x", message="y"))
    assert fq.jobs.get(job_id).status == "cancelled"
    with pytest.raises(Conflict, match="already cancelled"):
        fq.jobs.cancel(job_id)
    with pytest.raises(JobNotFound):
        fq.jobs.cancel(job_id, owner="someone-else")


def test_a_queued_job_cancels_without_any_worker(fq: FineTuning) -> None:
    job_id = _job(fq)
    assert fq.jobs.cancel(job_id).status == "cancelled"
    assert fq.queue.claim("w1") is None


def test_the_reaper_requeues_then_fails_a_job_whose_worker_went_silent(fq: FineTuning) -> None:
    job_id = _job(fq)
    assert fq.queue.claim("w1") is not None
    assert fq.reap() == []  # fresh heartbeat: left alone
    _age_heartbeat(fq, job_id, 30)
    reaped = fq.reap()
    assert [(r.job_id, r.worker, r.action) for r in reaped] == [(job_id, "w1", "requeued")]
    job = fq.jobs.get(job_id)
    assert job.status == "queued"
    spec = fq.queue.claim("w2")
    assert spec is not None and spec.attempts == 2
    assert not fq.queue.heartbeat(job_id, "w1")  # the lost worker, should it wake up, owns nothing
    _age_heartbeat(fq, job_id, 30)
    assert [r.action for r in fq.reap()] == ["failed"]  # max_attempts=2 reached
    job = fq.jobs.get(job_id)
    assert job.status == "failed" and job.error is not None and job.error.code == "worker_lost"
    assert "worker w2 stopped sending heartbeats" in job.error.message and "after 2 attempt(s)" in job.error.message
    messages = [e["message"] for e in fq.jobs.events(job_id, limit=50).data]
    assert any(m.startswith("Job requeued: worker w1 stopped sending heartbeats") for m in messages)


def test_a_worker_shutting_down_requeues_without_spending_an_attempt(fq: FineTuning) -> None:
    job_id = _job(fq)
    assert fq.queue.claim("w1") is not None
    assert fq.queue.requeue(job_id, "w1", "worker w1 shut down after step 3")
    spec = fq.queue.claim("w2")
    assert spec is not None and spec.attempts == 1
    with fq.engine.connect() as conn:
        row = conn.execute(sa.select(schema.jobs.c.claimed_by).where(schema.jobs.c.id == job_id)).one()
    assert row.claimed_by == "w2"
