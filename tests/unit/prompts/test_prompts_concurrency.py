"""20 concurrent pushes to one prompt, from threads and from processes, on both backends."""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from prompt_test_helpers import OpenRegistry, make_spec, push_in_process

from prompts.registry import PromptRegistry

WORKERS = 20
_warmed: set[str] = set()


def _check_distinct(registry: PromptRegistry, name: str, results: list[tuple[int, bool]]) -> None:
    assert sorted(v for v, _ in results) == list(range(1, WORKERS + 1))
    assert all(created for _, created in results)
    versions = registry.list_versions(name)
    assert [v.version for v in versions] == list(range(1, WORKERS + 1))
    assert len({v.content_hash for v in versions}) == WORKERS


def _check_identical(registry: PromptRegistry, name: str, results: list[tuple[int, bool]]) -> None:
    assert {v for v, _ in results} == {1}
    assert sum(created for _, created in results) == 1
    assert [v.version for v in registry.list_versions(name)] == [1]


@pytest.mark.parametrize("identical", [False, True], ids=["distinct", "identical"])
def test_parallel_pushes_from_threads(db_url: str, open_registry: OpenRegistry, identical: bool) -> None:
    registry = open_registry(db_url, cache_labels=False)
    barrier = threading.Barrier(WORKERS)

    def worker(index: int) -> tuple[int, bool]:
        barrier.wait(timeout=60)
        system = "shared content" if identical else f"variant {index}"
        result = registry.push(make_spec("race", system=system), actor=f"thread-{index}")
        return result.version.version, result.created

    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        results = list(pool.map(worker, range(WORKERS)))
    (_check_identical if identical else _check_distinct)(registry, "race", results)


@pytest.fixture(scope="session")
def bytecode_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("pycache")


@pytest.fixture
def spawn_context(monkeypatch: pytest.MonkeyPatch, bytecode_dir: Path) -> multiprocessing.context.SpawnContext:
    # This environment sets PYTHONDONTWRITEBYTECODE, so each of the 20 spawned
    # children would compile SQLAlchemy, pydantic & co. from source (~2.5x the
    # CPU). One plain subprocess fills a private bytecode cache outside the
    # repo; the spawned children (started with -B) only read it. What the
    # tests exercise is unchanged.
    monkeypatch.setenv("PYTHONPYCACHEPREFIX", str(bytecode_dir))
    if str(bytecode_dir) not in _warmed:
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        code = f"import sys; sys.path[:0] = {sys.path!r}; import prompt_test_helpers as h; h.warm_imports()"
        subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=300)
        _warmed.add(str(bytecode_dir))
    return multiprocessing.get_context("spawn")


def test_parallel_pushes_from_processes(
    db_url: str, open_registry: OpenRegistry, spawn_context: multiprocessing.context.SpawnContext,
) -> None:
    """Every process pushes distinct content to 'race' and identical content to 'same'.

    The workers also open (and migrate) the fresh database concurrently.
    """
    barrier = spawn_context.Barrier(WORKERS)
    queue = spawn_context.Queue()
    procs = [spawn_context.Process(target=push_in_process, args=(db_url, i, barrier, queue)) for i in range(WORKERS)]
    for proc in procs:
        proc.start()
    try:
        outcomes = [queue.get(timeout=300) for _ in procs]
    finally:
        for proc in procs:
            proc.join(timeout=60)
            if proc.is_alive():
                proc.kill()
    errors = [o[2] for o in outcomes if o[0] != "ok"]
    assert not errors, "worker failures:\n" + "\n".join(errors)
    assert all(proc.exitcode == 0 for proc in procs)

    registry = open_registry(db_url, cache_labels=False)
    _check_distinct(registry, "race", [o[2]["race"] for o in outcomes])
    _check_identical(registry, "same", [o[2]["same"] for o in outcomes])


def test_concurrent_label_moves_keep_a_consistent_history(db_url: str, open_registry: OpenRegistry) -> None:
    registry = open_registry(db_url, cache_labels=False)
    for i in range(5):
        registry.push(make_spec("race", system=f"v{i}"), actor="a")
    barrier = threading.Barrier(10)

    def mover(index: int) -> None:
        barrier.wait(timeout=60)
        registry.move_label("race", "production", index % 5 + 1, actor=f"t{index}")

    with ThreadPoolExecutor(max_workers=10) as pool:
        list(pool.map(mover, range(10)))

    history = list(reversed(registry.history("race")))
    # Each recorded move starts where the previous one ended: no lost update.
    assert history[0].from_version is None
    assert all(b.from_version == a.to_version for a, b in zip(history, history[1:], strict=False))
    assert registry.labels("race")["production"] == history[-1].to_version
