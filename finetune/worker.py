"""The training worker: a process apart from the gateway that takes jobs off the database queue.

    llmops finetune worker [--once] [--worker-id ID]       (python -m finetune.cli worker)

Loop: reap stale jobs → claim the oldest queued job → run it with a heartbeat → repeat. Any number
of workers may share one database. SIGTERM/SIGINT: the running job stops after its current step
and goes back to the queue (it resumes from its last checkpoint wherever it is claimed next).
A worker killed outright (SIGKILL, a crashed machine) stops heartbeating; the next reaper
requeues its job, or fails it with the reason once `max_attempts` runs were lost.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
from pathlib import Path
from typing import Any

import torch

from finetune.control import JobControl
from finetune.device import placement, usable_processes, visible_gpus
from finetune.runner import NPROC_ENV, run_job, run_under_torchrun
from finetune.service import FineTuning

log = logging.getLogger("finetune.worker")


def default_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class Worker:
    def __init__(self, ft: FineTuning, worker_id: str | None = None, *, config: Path | None = None) -> None:
        self.ft = ft
        self.id = worker_id or default_worker_id()
        self.config = config
        self.shutdown = threading.Event()
        requested, gpus = int(os.environ.get(NPROC_ENV, "1")), visible_gpus()
        self.nproc = usable_processes(requested, gpus)
        if self.nproc != requested:
            log.warning("%s=%d but %d GPU(s) are visible: training on %d process(es), one per GPU",
                        NPROC_ENV, requested, gpus, self.nproc)
        if ft.settings.threads:
            torch.set_num_threads(ft.settings.threads)

    def install_signal_handlers(self) -> None:
        def stop(signum: int, _frame: Any) -> None:
            log.info("%s: finishing the current step, then stopping", signal.Signals(signum).name)
            self.shutdown.set()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)

    def run_one(self) -> str | None:
        """Reap, then claim and run one job. Returns its outcome, or None when the queue was empty."""
        for r in self.ft.reap():
            log.warning("reaped job %s of worker %s: %s", r.job_id, r.worker, r.action)
        spec = self.ft.queue.claim(self.id)
        if spec is None:
            return None
        log.info("claimed %s (%s, attempt %d)", spec.id, spec.model, spec.attempts)
        with JobControl(self.ft.queue, spec.id, self.id, self.ft.settings.heartbeat_interval_s,
                        self.shutdown) as control:
            if self.nproc > 1 and spec.method == "supervised":
                outcome = run_under_torchrun(spec, control, self.nproc, self.id, self.config,
                                             lambda: self.ft.queue.status(spec.id))
            else:
                outcome = run_job(self.ft, spec, control, placement(), self.id)
        log.info("job %s: %s", spec.id, outcome)
        return outcome

    def run(self, *, once: bool = False) -> int:
        """Work until shut down (or, with `once`, until the queue is empty)."""
        while not self.shutdown.is_set():
            outcome = self.run_one()
            if outcome is None:
                if once:
                    break
                self.shutdown.wait(self.ft.settings.poll_interval_s)
        return 0
