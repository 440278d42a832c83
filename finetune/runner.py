"""Run one claimed job and settle how it ended: succeeded, failed (with a reason), cancelled,
requeued (worker shutdown) or lost (a reaper took it). Nothing escapes as an exception: a job
never stays `running` because its worker raised."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from finetune.device import Placement
from finetune.errors import FinetuneError
from finetune.jobs import JobSpec
from finetune.records import JobError
from finetune.service import FineTuning
from finetune.supervised import Control, Stopped, run_supervised

log = logging.getLogger("finetune.runner")
NPROC_ENV = "LLMOPS_FINETUNE_NPROC"


def _error(exc: BaseException) -> JobError:
    if isinstance(exc, FinetuneError):
        return JobError(code=exc.code, message=exc.message, param=exc.param)
    text = " ".join(f"{type(exc).__name__}: {exc}".split())
    return JobError(code="training_error", message=text[:1000])


def run_job(ft: FineTuning, spec: JobSpec, control: Control, where: Placement, worker: str) -> str:
    """Returns the outcome: "succeeded", "failed", "cancelled", "requeued" or "lost"."""
    try:
        if spec.method == "guardrail_detector":
            from finetune.detector import run_detector

            run_detector(ft, spec, control, worker)
        else:
            run_supervised(ft, spec, control, where, worker)
        return "succeeded"
    except Stopped as stop:
        return _stopped(ft, spec, stop, where, worker)
    except Exception as exc:  # the job records why; the worker lives on for the next one
        log.exception("job %s failed", spec.id)
        if where.is_main:
            ft.queue.fail(spec.id, worker, _error(exc))
        return "failed"


def _stopped(ft: FineTuning, spec: JobSpec, stop: Stopped, where: Placement, worker: str) -> str:
    if not where.is_main:
        return stop.reason
    if stop.reason == "cancelled":
        ft.jobs.add_event(spec.id, f"Training stopped after step {stop.step}: the job was cancelled")
    elif stop.reason == "shutdown":
        ft.queue.requeue(spec.id, worker, f"worker {worker} shut down after step {stop.step}")
        return "requeued"
    else:
        log.warning("job %s is no longer ours (reaped after a stall?); dropped at step %d", spec.id, stop.step)
    return stop.reason


def run_under_torchrun(spec: JobSpec, control: Control, nproc: int, worker: str, config: Path | None,
                       status: Callable[[], str | None]) -> str:
    """Train on `nproc` processes (GPUs, or CPU processes with gloo) through torchrun.

    This worker keeps the claim (heartbeats) and watches for a stop; rank 0 of the children writes
    events, checkpoints and the outcome. Stopping sends SIGTERM to the children, which requeue.
    """
    argv = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}",
            "-m", "finetune.distributed", "--job", spec.id, "--worker", worker]
    if config is not None:
        argv += ["--config", str(config)]
    proc = subprocess.Popen(argv, start_new_session=True, env={**os.environ, NPROC_ENV: "1"})
    while proc.poll() is None:
        reason = control.stop_reason()
        if reason and status() in ("succeeded", "failed"):
            proc.wait()  # rank 0 finished the job itself; the claim ended with it
            break
        if reason:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
            return reason
        time.sleep(1.0)
    return status() or "lost"
