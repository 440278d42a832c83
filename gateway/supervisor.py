"""Start, watch and stop the processes of the embedded stack (the local Triton server).

`llmops serve` starts Triton, then `supervise()`s it: a watchdog thread restarts it whenever it
exits (crash, OOM kill, `kill -9`), and kills and restarts it when it is alive but has not answered
its readiness URL for `hang_s` (stopped, deadlocked), with exponential backoff, until `stop()`.
Meanwhile the gateway answers requests for the local model with 503 (or its fallbacks) and `/ready`
names the model as down; nothing in the gateway needs to be told about the restart.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

from gateway.config import ROOT, Settings

log = logging.getLogger("gateway.supervisor")


class ManagedProcess:
    def __init__(self, name: str, argv: list[str], ready_url: str, env: dict[str, str] | None = None) -> None:
        self.name = name
        self.argv = argv
        self.ready_url = ready_url
        self.env = {**os.environ, **(env or {})}
        self.proc: subprocess.Popen[bytes] | None = None
        self.restarts = 0
        self._log_path: Path | None = None
        self._stopping = threading.Event()
        self._watchdog: threading.Thread | None = None

    def start(self, timeout_s: float, log_path: Path | None = None) -> None:
        """Spawn the process in its own process group and wait until `ready_url` answers 200."""
        self._stopping.clear()
        self._log_path = log_path
        self._spawn(timeout_s)

    def _spawn(self, timeout_s: float) -> None:
        log_path = self._log_path
        out = open(log_path, "ab") if log_path else None  # noqa: SIM115 (the child holds its own copy)
        try:
            self.proc = subprocess.Popen(
                self.argv, env=self.env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT if out else None,
                start_new_session=True,
            )
        finally:
            if out is not None:
                out.close()  # one handle per restart would otherwise leak
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and not self._stopping.is_set():
            if self.proc.poll() is not None:
                where = f" (see {log_path})" if log_path else ""
                raise RuntimeError(f"{self.name} exited with code {self.proc.returncode} while starting{where}")
            if self._answers(1.0):
                log.info("%s is ready", self.name)
                return
            time.sleep(0.25)
        self._kill_group(grace_s=10.0)
        if self._stopping.is_set():
            raise RuntimeError(f"{self.name} start abandoned: stopping")
        raise RuntimeError(f"{self.name} was not ready after {timeout_s:.0f}s ({self.ready_url})")

    def supervise(
        self, timeout_s: float, *, backoff_s: float = 1.0, max_backoff_s: float = 30.0, stable_s: float = 60.0,
        hang_s: float | None = 60.0, probe_every_s: float = 5.0,
    ) -> None:
        """Restart the process whenever it exits, or when it has not answered `ready_url` for `hang_s`
        (None: never), until `stop()`. The backoff doubles while restarts keep failing or the process
        keeps dying within `stable_s`, so a crash loop cannot spin."""
        if self._watchdog is not None:
            return
        self._watchdog = threading.Thread(
            target=self._watch, args=(timeout_s, backoff_s, max_backoff_s, stable_s, hang_s, probe_every_s),
            name=f"{self.name}-watchdog", daemon=True,
        )
        self._watchdog.start()

    def _answers(self, timeout_s: float) -> bool:
        try:
            with urllib.request.urlopen(self.ready_url, timeout=timeout_s) as resp:
                return bool(resp.status == 200)
        except OSError:
            return False

    def _watch(self, timeout_s: float, backoff_s: float, max_backoff_s: float, stable_s: float,
               hang_s: float | None, probe_every_s: float) -> None:
        delay = backoff_s
        up_since = time.monotonic()
        last_answer = next_probe = time.monotonic()
        while not self._stopping.wait(0.5):
            proc = self.proc
            if proc is None:
                continue
            if proc.poll() is None and hang_s is not None and time.monotonic() >= next_probe:
                # A process that is alive but silent (SIGSTOPped, deadlocked, swapping) serves no one
                # and never exits: after `hang_s` of silence it is killed, and restarted below.
                if self._answers(min(probe_every_s, hang_s)):
                    last_answer = time.monotonic()
                elif time.monotonic() - last_answer >= hang_s:
                    log.error("%s has not answered %s for %.0fs; killing it", self.name, self.ready_url, hang_s)
                    self._kill_group(grace_s=0)
                next_probe = time.monotonic() + probe_every_s
            if proc.poll() is None:
                continue
            if time.monotonic() - up_since >= stable_s:
                delay = backoff_s
            log.error("%s is not running (exit code %s); restarting in %.0fs", self.name, proc.returncode, delay)
            # Its children (tritonserver, the Python backend stubs) may outlive the leader and hold the ports.
            self._kill_group(grace_s=0)
            if self._stopping.wait(delay):
                return
            delay = min(delay * 2, max_backoff_s)
            try:
                self._spawn(timeout_s)
            except RuntimeError as err:
                log.error("%s restart failed: %s", self.name, err)
                continue  # the dead process is seen again on the next turn, after the longer delay
            self.restarts += 1
            up_since = last_answer = next_probe = time.monotonic()
            log.warning("%s restarted (restart %d)", self.name, self.restarts)

    def stop(self, grace_s: float = 10.0) -> None:
        self._stopping.set()
        if self._watchdog is not None:
            self._watchdog.join()  # returns within a readiness poll: start() checks `_stopping`
            self._watchdog = None
        self._kill_group(grace_s)

    def _kill_group(self, grace_s: float) -> None:
        """SIGTERM the process group (SIGKILL after `grace_s`); also reaps a group whose leader died."""
        proc = self.proc
        if proc is None:
            return
        try:
            if proc.poll() is None and grace_s > 0:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(grace_s)
                except subprocess.TimeoutExpired:
                    pass
            os.killpg(proc.pid, signal.SIGKILL)  # the leader's pid stays the group id while members live
        except ProcessLookupError:
            pass  # the whole group is gone already
        proc.wait()


def triton_process(settings: Settings) -> ManagedProcess:
    t = settings.triton
    argv = [
        sys.executable, "-m", "gateway.localmodel.server",
        "--model-dir", str(settings.resolve_path(t.model_dir)),
        "--model-name", t.model_name,
        "--http-port", str(t.http_port),
        "--grpc-port", str(t.grpc_port),
        "--metrics-port", str(t.metrics_port),
        "--models-dir", str(settings.resolve_path(settings.finetune.models_dir)),  # fine-tuned models
    ]
    env = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    ready = f"http://127.0.0.1:{t.http_port}/v2/models/{t.model_name}/ready"
    return ManagedProcess("triton", argv, ready, env)
