"""One rank of a multi-process job, started by the worker through torchrun (see finetune.device):

    torchrun --standalone --nproc-per-node N -m finetune.distributed --job ftjob-... --worker W

The worker that claimed the job keeps heartbeating; here each rank polls the job's status between
steps (cancelled, or no longer claimed by W: stop), and SIGTERM from the worker means shutdown.
"""

from __future__ import annotations

import argparse
import signal
import threading
import time
from pathlib import Path
from typing import Any

from finetune import config
from finetune.device import placement
from finetune.runner import run_job
from finetune.service import FineTuning


class PollingControl:
    def __init__(self, ft: FineTuning, job_id: str, every_s: float = 2.0) -> None:
        self.ft, self.job_id, self.every_s = ft, job_id, every_s
        self.shutdown = threading.Event()
        self._checked = 0.0
        self._status: str | None = "running"

    def stop_reason(self) -> str | None:
        if self.shutdown.is_set():
            return "shutdown"
        if time.monotonic() - self._checked > self.every_s:
            self._checked = time.monotonic()
            self._status = self.ft.queue.status(self.job_id)
        if self._status == "running":
            return None
        return "cancelled" if self._status == "cancelled" else "lost"

    def set_eta(self, seconds: float) -> None:
        pass  # the claiming worker's heartbeat carries the claim; ETA shows in the step events


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m finetune.distributed")
    p.add_argument("--job", required=True)
    p.add_argument("--worker", required=True)
    p.add_argument("--config", type=Path, default=None)
    args = p.parse_args(argv)
    settings, url = config.load(args.config)
    ft = FineTuning(settings, url, config.ROOT)
    control = PollingControl(ft, args.job)

    def stop(_signum: int, _frame: Any) -> None:
        control.shutdown.set()

    signal.signal(signal.SIGTERM, stop)
    try:
        outcome = run_job(ft, ft.jobs.spec(args.job), control, placement(), args.worker)
    finally:
        ft.close()
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()  # local teardown (NCCL warns at exit without it)
    return 0 if outcome == "succeeded" else 1


if __name__ == "__main__":
    raise SystemExit(main())
