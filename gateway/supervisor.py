"""Start and stop the processes of the embedded stack (the local Triton server)."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
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

    def start(self, timeout_s: float, log_path: Path | None = None) -> None:
        out = open(log_path, "ab") if log_path else None  # noqa: SIM115 (lives as long as the process)
        self.proc = subprocess.Popen(
            self.argv, env=self.env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT if out else None,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                where = f" (see {log_path})" if log_path else ""
                raise RuntimeError(f"{self.name} exited with code {self.proc.returncode} while starting{where}")
            try:
                with urllib.request.urlopen(self.ready_url, timeout=1) as resp:
                    if resp.status == 200:
                        log.info("%s is ready", self.name)
                        return
            except OSError:
                pass
            time.sleep(0.25)
        self.stop()
        raise RuntimeError(f"{self.name} was not ready after {timeout_s:.0f}s ({self.ready_url})")

    def stop(self, grace_s: float = 10.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(grace_s)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


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
