"""The embedded stack for `llmops eval run` without `--base-url`: `llmops serve` as a subprocess.

It reads the gateway config (default configs/gateway.yaml), moves the managed Triton server and the
deployments that point at it to free ports (so it never collides with a `make serve` already
running), writes that copy to a temporary folder, and starts `python -m gateway.cli serve` on a
free loopback port with a fresh random API key. It waits for /health and then /ready (every model
answers), and stops the whole process group afterwards. A subprocess rather than an in-process app:
the evaluated path is exactly the one production runs (uvicorn, Triton, rails), and the runner's
event loop stays free of model work.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from evals.errors import TargetError

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = ROOT / "configs" / "gateway.yaml"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def relocate(config: dict[str, Any]) -> dict[str, Any]:
    """The same config with the managed Triton (and the deployments that use it) on free ports."""
    cfg = json.loads(json.dumps(config))
    triton = cfg.setdefault("triton", {})
    if triton.get("managed", True):
        old = {"grpc": triton.get("grpc_port", 8101), "http": triton.get("http_port", 8100)}
        new = {"http_port": free_port(), "grpc_port": free_port(), "metrics_port": free_port()}
        triton.update(new)
        for model in cfg.get("models") or []:
            for dep in model.get("deployments") or []:
                if dep.get("kind") != "triton":
                    continue
                host, _, port = str(dep.get("url", "")).rpartition(":")
                if host in ("127.0.0.1", "localhost") and port.isdigit():
                    proto = dep.get("protocol", "grpc")
                    if int(port) == old[proto]:
                        dep["url"] = f"{host}:{new['grpc_port' if proto == 'grpc' else 'http_port']}"
    server = cfg.setdefault("server", {})
    server["host"] = "127.0.0.1"
    return cfg


def _get(url: str, timeout: float = 2.0) -> int:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as err:
        return int(err.code)
    except OSError:
        return 0


class EmbeddedGateway:
    """`with EmbeddedGateway() as gw:` → gw.base_url, gw.api_key."""

    def __init__(self, config: Path | None = None, *, start_timeout_s: float = 600.0) -> None:
        self.config = config or Path(os.environ.get("LLMOPS_CONFIG", DEFAULT_CONFIG))
        self.start_timeout_s = start_timeout_s
        self.api_key = "sk-eval-" + secrets.token_hex(16)
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self._tmp = tempfile.TemporaryDirectory(prefix="llmops-eval-")
        self.log = Path(self._tmp.name) / "gateway.log"

    def _tail(self) -> str:
        try:
            return self.log.read_text(errors="replace")[-3000:]
        except OSError:
            return ""

    def start(self) -> None:
        if not self.config.is_file():
            raise TargetError(f"embedded stack: gateway config not found: {self.config}")
        try:
            data = yaml.safe_load(self.config.read_text()) or {}
        except yaml.YAMLError as err:
            raise TargetError(f"embedded stack: {self.config} is not valid YAML: {err}") from None
        cfg_path = Path(self._tmp.name) / "gateway.yaml"
        cfg_path.write_text(yaml.safe_dump(relocate(data)))
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
               "NEMO_GUARDRAILS_NO_USAGE_STATS": "1", "LLMOPS_API_KEY": self.api_key}
        argv = [sys.executable, "-m", "gateway.cli", "serve", "--config", str(cfg_path), "--port", str(self.port)]
        print(f"llmops eval: starting the embedded stack on {self.base_url} (log: {self.log})", file=sys.stderr)
        self.proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=self.log.open("wb"), stderr=subprocess.STDOUT,
                                     start_new_session=True)
        deadline = time.monotonic() + self.start_timeout_s
        healthy = False
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise TargetError(f"embedded stack: `llmops serve` exited with {self.proc.returncode}:\n{self._tail()}")
            if not healthy:
                healthy = _get(f"{self.base_url}/health") == 200
            elif _get(f"{self.base_url}/ready", timeout=30) == 200:
                return
            time.sleep(0.5)
        self.stop()
        raise TargetError(f"embedded stack not ready after {self.start_timeout_s:.0f}s:\n{self._tail()}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self._tmp.cleanup()

    def __enter__(self) -> EmbeddedGateway:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()
