"""A claimed job's lifeline: heartbeats in a background thread, and the reasons to stop.

The heartbeat keeps the claim alive (a reaper requeues or fails jobs whose heartbeat goes stale)
and tells the worker when the job is no longer its own: the API cancelled it, or a reaper took it
after a stall. Training checks `stop_reason()` between steps, never mid-step.
"""

from __future__ import annotations

import logging
import threading
import time

from finetune.queue import JobQueue

log = logging.getLogger("finetune.control")


class JobControl:
    def __init__(self, queue: JobQueue, job_id: str, worker: str, interval_s: float,
                 shutdown: threading.Event | None = None) -> None:
        self.queue = queue
        self.job_id = job_id
        self.worker = worker
        self.interval_s = interval_s
        self.shutdown = shutdown or threading.Event()
        self.estimated_finish: int | None = None
        self._lost = threading.Event()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"heartbeat-{job_id}", daemon=True)

    def __enter__(self) -> JobControl:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join(timeout=self.interval_s + 5)

    def _run(self) -> None:
        while not self._done.wait(self.interval_s):
            self.beat()

    def beat(self) -> bool:
        try:
            alive = self.queue.heartbeat(self.job_id, self.worker, estimated_finish=self.estimated_finish)
        except Exception:  # a database hiccup must not kill training; the next beat retries
            log.warning("heartbeat for %s failed", self.job_id, exc_info=True)
            return True
        if not alive:
            self._lost.set()
        return alive

    def set_eta(self, seconds: float) -> None:
        self.estimated_finish = int(time.time() + seconds)

    def stop_reason(self) -> str | None:
        if self.shutdown.is_set():
            return "shutdown"
        if self._lost.is_set():
            return "cancelled" if self.queue.status(self.job_id) == "cancelled" else "lost"
        return None
