"""Fixtures for the live Triton tests: the real local-model server (PyTriton + Triton Inference
Server + the continuous-batching engine) started once per session on free loopback ports.

Wire into tests/conftest.py with `pytest_plugins = ["tests.conftest_triton"]` (or import the
fixtures). Until then: `pytest -p tests.conftest_triton tests/live/test_triton_*.py`.

`local_triton` yields a `LocalTriton` with the same `grpc` / `http` / `model` attributes as the
`Triton` dataclass in tests/conftest.py, so a session that already runs the server can alias it
instead (`local_triton = triton` as a fixture) and skip the second start.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.procs import free_port

ROOT = Path(__file__).resolve().parents[1]
MODEL_DIR = ROOT / "models" / "smollm2"
MODEL_NAME = "smollm2"
START_TIMEOUT_S = 300.0


@dataclass(frozen=True)
class LocalTriton:
    grpc: str
    http: str
    model: str
    log: Path
    pid: int


def start_local_triton(
    log: Path, model_dir: Path = MODEL_DIR, model_name: str = MODEL_NAME, extra_args: tuple[str, ...] = ()
) -> tuple[subprocess.Popen[bytes], LocalTriton]:
    """Start `python -m gateway.localmodel.server` on free ports and wait until the model is ready."""
    if not any(model_dir.glob("*.gguf")):
        pytest.fail(f"local model missing in {model_dir} (run scripts/setup.sh)")
    http, grpc, metrics = free_port(), free_port(), free_port()
    argv = [
        sys.executable,
        "-m",
        "gateway.localmodel.server",
        "--model-dir",
        str(model_dir),
        "--model-name",
        model_name,
        "--http-port",
        str(http),
        "--grpc-port",
        str(grpc),
        "--metrics-port",
        str(metrics),
        *extra_args,
    ]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    ready = f"http://127.0.0.1:{http}/v2/models/{model_name}/ready"
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"Triton server exited with {proc.returncode}:\n{log.read_text()[-4000:]}")
        try:
            with urllib.request.urlopen(ready, timeout=1) as resp:
                if resp.status == 200:
                    return proc, LocalTriton(f"127.0.0.1:{grpc}", f"127.0.0.1:{http}", model_name, log, proc.pid)
        except OSError:
            pass
        time.sleep(0.25)
    stop_local_triton(proc)
    raise RuntimeError(f"Triton server not ready after {START_TIMEOUT_S:.0f}s:\n{log.read_text()[-4000:]}")


def stop_local_triton(proc: subprocess.Popen[bytes], grace_s: float = 20.0) -> None:
    """SIGTERM (graceful: Triton's exit timeout is 3 s), then SIGKILL the process group."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(grace_s)
        except subprocess.TimeoutExpired:
            pass
    try:  # tritonserver and the backend stub live in the same session/process group
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    if proc.poll() is None:
        proc.wait(5)


@pytest.fixture(scope="session")
def local_triton(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalTriton]:
    log = tmp_path_factory.mktemp("triton") / "local-triton.log"
    proc, endpoints = start_local_triton(log)
    try:
        yield endpoints
    finally:
        stop_local_triton(proc)


@pytest.fixture(scope="session")
def triton_tokenizer() -> Any:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from gateway.localmodel.engine import load_tokenizer

    return load_tokenizer(MODEL_DIR, "SmolLM2-135M-Instruct.Q4_1.gguf")


@pytest.fixture
def triton_backend(local_triton: LocalTriton, triton_tokenizer: Any) -> Iterator[Callable[..., Any]]:
    """Factory: `triton_backend(protocol="grpc", **kw)` -> TritonChatBackend on the local server.
    Backends are closed by the test body (`await b.aclose()`) or dropped with the event loop."""
    from gateway.backends.triton import TritonChatBackend

    def make(protocol: str = "grpc", **kw: Any) -> TritonChatBackend:
        url = local_triton.grpc if protocol == "grpc" else local_triton.http
        kw.setdefault("timeout_s", 120.0)
        kw.setdefault("context_length", 8192)
        return TritonChatBackend(url, local_triton.model, protocol=protocol, tokenizer=triton_tokenizer, **kw)  # type: ignore[arg-type]

    yield make
