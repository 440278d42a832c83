"""Fault drills against real processes: Redis killed and restarted, the SQLite file locked by
another process, Triton killed (-9) under `llmops serve`. Each drill checks that requests fail
cleanly (OpenAI-shaped errors, never a 500), that `/ready` says what is down, that recovery needs
no manual step, and that no acknowledged write is lost.

Upstream faults (500s, hangs, cuts, malformed JSON) are drilled in test_routing.py."""

from __future__ import annotations

import os
import signal
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.conftest import ADMIN_KEY, CLIENT_KEY, MODEL_FILE, fake
from tests.support import procs

ADMIN = {"authorization": f"Bearer {ADMIN_KEY}"}
CLIENT = {"authorization": f"Bearer {CLIENT_KEY}"}
HI = [{"role": "user", "content": "hi"}]
LOCK_S = 8.0
HANG_S = 10.0  # triton.hang_restart_s for the managed gateway: short, so the drill waits seconds
ENV = {"LLMOPS_API_KEY": CLIENT_KEY, "LLMOPS_ADMIN_KEY": ADMIN_KEY}


def _base_config(tmp: Path, fake_url: str) -> dict[str, Any]:
    return {
        "triton": {"managed": False},
        "storage": {"database_url": f"sqlite:///{tmp}/llmops.db"},
        "governance": {"log_flush_interval_s": 0.05},
        "rag": {"enabled": False},
        "models": [{"name": "fake-good", "deployments": [fake("good", fake_url)]}],
    }


@pytest.fixture
def drill_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("faults")


@pytest.fixture
def serve(drill_dir: Path) -> Iterator[Callable[[dict[str, Any]], str]]:
    """Starts a gateway on `config` (stopped at the end of the test); returns its URL."""
    started = []

    def start(config: dict[str, Any]) -> str:
        path = drill_dir / f"gateway-{uuid.uuid4().hex[:6]}.yaml"
        path.write_text(yaml.safe_dump(config))
        proc, url = procs.start_gateway(path, drill_dir, ENV)
        started.append(proc)
        return url

    yield start
    for proc in started:
        procs.stop(proc)


def _chat(url: str, model: str, headers: dict[str, str], **extra: Any) -> httpx.Response:
    body = {"model": model, "messages": HI, "max_tokens": 6, **extra}
    return httpx.post(f"{url}/v1/chat/completions", headers=headers, json=body, timeout=120)


def _openai_error(resp: httpx.Response, *statuses: int) -> dict[str, Any]:
    """The response is one of `statuses` with OpenAI's error envelope, and shows no traceback."""
    assert resp.status_code in statuses, f"{resp.status_code}: {resp.text}"
    error = resp.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}, error
    assert error["message"] and "Traceback" not in resp.text
    return error  # type: ignore[no-any-return]


def _ready(url: str) -> httpx.Response:
    return httpx.get(f"{url}/ready", timeout=30)


def _wait_ready(url: str, timeout_s: float, what: str) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    last = None
    while time.monotonic() < deadline:
        last = _ready(url)
        if last.status_code == 200:
            return last.json()  # type: ignore[no-any-return]
        time.sleep(0.5)
    raise AssertionError(f"/ready did not recover after {what} within {timeout_s:.0f}s: {last and last.text}")


def _new_key(url: str, **spec: Any) -> str:
    resp = httpx.post(f"{url}/v1/admin/keys", headers=ADMIN, json={"name": f"k-{uuid.uuid4().hex[:8]}", **spec})
    assert resp.status_code == 201, resp.text
    return str(resp.json()["key"])


# -- Redis disappears and comes back -------------------------------------------------------------


def test_redis_killed_and_restarted(drill_dir: Path, fake_provider: str, serve: Callable[[dict[str, Any]], str]) -> None:
    port = procs.free_port()
    redis_proc = procs.start_redis(port, drill_dir)
    try:
        config = _base_config(drill_dir, fake_provider)
        config["storage"]["redis_url"] = f"redis://127.0.0.1:{port}/0"
        config["governance"]["redis_prefix"] = f"llmops:faults:{uuid.uuid4().hex[:8]}"
        # $1 a token: a fake-good answer is 7 + 6 tokens, $13; the budget buys two.
        config["governance"]["prices"] = {"fake-good": {"input": 1_000_000, "output": 1_000_000}}
        # Spend reaches the usage table through the batching log writer; a slow flush makes sure
        # the re-seeding below also counts spend that was still queued when Redis lost its data.
        config["governance"]["log_flush_interval_s"] = 30
        url = serve(config)
        assert _ready(url).json()["components"] == {"database": True, "redis": True}

        budgeted = {"authorization": f"Bearer {_new_key(url, budget={'amount': 35, 'period': 'day'})}"}
        limited = {"authorization": f"Bearer {_new_key(url, rpm=1000)}"}
        assert [_chat(url, "fake-good", budgeted).status_code for _ in range(2)] == [200, 200]

        redis_proc.kill()
        redis_proc.wait()
        # Fail-closed (the default): a key under a limit gets a clean 503; a key without limits
        # never needs Redis and is served.
        error = _openai_error(_chat(url, "fake-good", limited), 503)
        assert error["code"] == "rate_limiter_unavailable"
        assert _chat(url, "fake-good", CLIENT).status_code == 200
        down = _ready(url)
        assert down.status_code == 503 and down.json()["status"] == "unavailable"
        assert down.json()["components"]["redis"] is False and down.json()["components"]["database"] is True

        # The same port, empty (no persistence): recovery needs no restart of the gateway, and
        # the budget spent before the outage is seeded again from the usage table.
        redis_proc = procs.start_redis(port, drill_dir)
        assert _wait_ready(url, 30, "Redis restarted")["components"]["redis"] is True
        assert _chat(url, "fake-good", limited).status_code == 200
        error = _openai_error(_chat(url, "fake-good", budgeted), 429)
        assert error["code"] == "budget_exceeded", error
    finally:
        procs.stop(redis_proc)


# -- the SQLite file is locked by another process ------------------------------------------------


def test_sqlite_locked_by_another_process_loses_no_acknowledged_write(
    drill_dir: Path, fake_provider: str, serve: Callable[[dict[str, Any]], str]
) -> None:
    url = serve(_base_config(drill_dir, fake_provider))
    database = drill_dir / "llmops.db"
    assert _chat(url, "fake-good", CLIENT).status_code == 200  # the log table exists and is in use
    prompt = f"faults-{uuid.uuid4().hex[:6]}"

    def push(text: str) -> httpx.Response:
        return httpx.post(f"{url}/v1/prompts/{prompt}/versions", headers=ADMIN, timeout=300,
                          json={"messages": [{"role": "system", "content": text}]})

    assert push("before the lock").status_code == 201
    request_ids = [f"faults-{uuid.uuid4().hex}" for _ in range(10)]
    locker = sqlite3.connect(database, isolation_level=None, timeout=30)
    with ThreadPoolExecutor(1) as pool:
        try:
            locker.execute("BEGIN EXCLUSIVE")  # in WAL mode: every writer waits, readers go on
            locked_at = time.monotonic()
            pushed = pool.submit(push, "during the lock")
            for rid in request_ids:
                resp = _chat(url, "fake-good", {**CLIENT, "x-request-id": rid})
                assert resp.status_code == 200, resp.text
            ready = _ready(url)
            assert ready.status_code == 200 and ready.json()["components"]["database"] is True, ready.text
            # The premise: while the lock is held nothing reached the file.
            assert not pushed.done(), f"the push was not held by the lock: {pushed.result().text}"
            held = ",".join("?" * len(request_ids))
            rows = locker.execute(f"SELECT count(*) FROM request_log WHERE request_id IN ({held})", request_ids)
            assert rows.fetchone()[0] == 0
            # Held past the log writer's 5 s busy timeout, so its retry loop is what saves the records.
            time.sleep(max(0.0, LOCK_S - (time.monotonic() - locked_at)))
        finally:
            locker.execute("COMMIT")
            locker.close()
        resp = pushed.result()
    # The lock is shorter than the registry's busy timeout (30 s): the push waited, then was stored.
    assert resp.status_code == 201, resp.text
    stored = httpx.get(f"{url}/v1/prompts/{prompt}/versions/{resp.json()['version']}", headers=ADMIN)
    assert stored.status_code == 200 and "during the lock" in stored.text
    missing = set(request_ids)
    deadline = time.monotonic() + 60
    while missing and time.monotonic() < deadline:
        page = httpx.get(f"{url}/v1/admin/requests", headers=ADMIN, params={"limit": 100}).json()["data"]
        missing -= {r["request_id"] for r in page}
        time.sleep(0.2)
    assert not missing, f"request log records lost after the lock: {sorted(missing)}"


# -- Triton is killed under `llmops serve` and comes back by itself ------------------------------


@pytest.fixture
def managed_gateway(drill_dir: Path) -> Iterator[tuple[str, dict[str, int]]]:
    if not MODEL_FILE.exists():
        pytest.fail(f"local model file missing: {MODEL_FILE} (run scripts/setup.sh)")
    ports = {k: procs.free_port() for k in ("http_port", "grpc_port", "metrics_port")}
    config = {
        "triton": {"managed": True, "hang_restart_s": HANG_S, **ports},
        "storage": {"database_url": f"sqlite:///{drill_dir}/llmops.db"},
        "rag": {"enabled": False},
        "data_dir": str(drill_dir / "var"),
        "models": [{"name": "smollm2", "deployments": [
            {"kind": "triton", "url": f"127.0.0.1:{ports['grpc_port']}", "model": "smollm2",
             "tokenizer": "models/smollm2", "timeout_s": 120}]}],
    }
    path = drill_dir / "managed.yaml"
    path.write_text(yaml.safe_dump(config))
    proc, url = procs.start_gateway_managed(path, drill_dir, ENV)
    try:
        yield url, ports
    finally:
        procs.stop(proc, grace_s=60)
        left = _tritons(ports)
        for pid in left:  # never leave a model server behind, even when the assertion below fails
            os.killpg(pid, signal.SIGKILL)
        assert not left, f"`llmops serve` exited and left Triton running: {left}"


def _tritons(ports: dict[str, int]) -> list[int]:
    return procs.pids_with_args("gateway.localmodel.server", "--http-port", str(ports["http_port"]))


def test_triton_killed_or_hung_is_restarted_by_the_gateway(managed_gateway: tuple[str, dict[str, int]]) -> None:
    url, ports = managed_gateway
    assert _ready(url).json()["models"] == {"smollm2": True}
    assert _chat(url, "smollm2", CLIENT, max_tokens=4).status_code == 200
    [pid] = _tritons(ports)

    os.killpg(pid, signal.SIGKILL)  # the server and everything it started (tritonserver, stubs)
    _openai_error(_chat(url, "smollm2", CLIENT, max_tokens=4), 503)
    _openai_error(_chat(url, "smollm2", CLIENT, max_tokens=4, stream=True), 503)
    down = _ready(url)
    assert down.status_code == 503 and down.json()["models"] == {"smollm2": False}, down.text

    _wait_ready(url, 540, "Triton was killed")
    resp = _chat(url, "smollm2", CLIENT, max_tokens=4)
    assert resp.status_code == 200, resp.text
    assert resp.json()["choices"][0]["message"]["content"] is not None
    restarted = _tritons(ports)
    assert restarted and pid not in restarted

    # Alive but silent: a stopped Triton never exits, so only the readiness probe can tell.
    [stopped] = restarted
    os.killpg(stopped, signal.SIGSTOP)
    deadline = time.monotonic() + 60
    while _ready(url).status_code == 200:  # /ready's own probe is bounded (3 s): it turns 503
        assert time.monotonic() < deadline, "/ready kept saying 200 for a stopped Triton"
        time.sleep(0.5)
    _wait_ready(url, 540, "Triton was stopped (SIGSTOP)")
    again = _tritons(ports)
    assert again and stopped not in again, "the stopped Triton was not replaced"
    resp = _chat(url, "smollm2", CLIENT, max_tokens=4)
    assert resp.status_code == 200, resp.text
