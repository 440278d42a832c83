"""Start the real processes the live tests talk to, on free loopback ports."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, proc: subprocess.Popen[bytes], timeout_s: float, log: Path) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode}; log:\n{log.read_text()[-4000:]}")
        try:
            with urllib.request.urlopen(url, timeout=1) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    proc.terminate()
    raise RuntimeError(f"{url} not ready after {timeout_s}s; log:\n{log.read_text()[-4000:]}")


def spawn(argv: list[str], log: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    full_env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", **(env or {})}
    return subprocess.Popen(argv, cwd=ROOT, env=full_env, stdout=log.open("wb"), stderr=subprocess.STDOUT)


def stop(proc: subprocess.Popen[bytes], grace_s: float = 15) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(grace_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def start_fake_provider(tmp: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    log = tmp / f"fake-provider-{port}.log"
    proc = spawn([sys.executable, str(ROOT / "tests/support/fake_provider.py"), "--port", str(port)], log)
    url = f"http://127.0.0.1:{port}"
    wait_http(f"{url}/stats", proc, 30, log)
    return proc, url


def start_gateway(config: Path, tmp: Path, env: dict[str, str], extra: list[str] = ()) -> tuple[subprocess.Popen[bytes], str]:  # type: ignore[assignment]
    port = free_port()
    log = tmp / f"gateway-{port}.log"
    argv = [sys.executable, "-m", "gateway.cli", "serve", "--config", str(config), "--port", str(port),
            "--no-triton", *extra]
    proc = spawn(argv, log, env)
    url = f"http://127.0.0.1:{port}"
    wait_http(f"{url}/health", proc, 180, log)
    return proc, url


def start_gateway_managed(config: Path, tmp: Path, env: dict[str, str]) -> tuple[subprocess.Popen[bytes], str]:
    """`llmops serve` as in production: it starts (and supervises) its own Triton first."""
    port = free_port()
    log = tmp / f"gateway-managed-{port}.log"
    argv = [sys.executable, "-m", "gateway.cli", "serve", "--config", str(config), "--port", str(port)]
    proc = spawn(argv, log, env)
    url = f"http://127.0.0.1:{port}"
    wait_http(f"{url}/health", proc, 600, log)  # Triton loads the model before the gateway binds
    return proc, url


def pids_with_args(*args: str) -> list[int]:
    """Processes whose command line contains every one of `args` as a whole argument."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().decode(errors="replace").split("\0")
        except OSError:
            continue  # exited meanwhile, or not ours to read
        if all(a in argv for a in args):
            found.append(int(entry.name))
    return found


REDIS_SERVER = Path("/usr/bin/redis-server")


def start_redis(port: int, tmp: Path) -> subprocess.Popen[bytes]:
    """A private, throwaway redis-server (no persistence) that a test may kill and restart."""
    import redis

    if not REDIS_SERVER.exists():
        raise RuntimeError(f"{REDIS_SERVER} is missing (apt-get install redis-server)")
    log = tmp / f"redis-{port}.log"
    argv = [str(REDIS_SERVER), "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
            "--dir", str(tmp)]
    proc = subprocess.Popen(argv, stdout=log.open("ab"), stderr=subprocess.STDOUT)
    client = redis.Redis(port=port, socket_connect_timeout=1)
    deadline = time.monotonic() + 30
    try:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"redis-server exited with {proc.returncode}; log:\n{log.read_text()[-2000:]}")
            try:
                if client.ping():
                    return proc
            except redis.RedisError:
                time.sleep(0.1)
    finally:
        client.close()
    proc.kill()
    raise RuntimeError(f"redis-server on port {port} did not answer within 30s")
