"""Shared helpers for the prompt registry tests.

A plain module (not conftest) so that spawned worker processes can import the
worker functions by name.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable
from typing import Any

from prompts.registry import PromptRegistry

OpenRegistry = Callable[..., PromptRegistry]


def make_spec(name: str = "greet", system: str = "You are helpful.", **extra: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "name": name,
        "messages": [
            {"role": "system", "content": system},
            {"role": "user", "content": "Hello {{ who }}, {{ question }}"},
        ],
        "variables": {
            "who": {"type": "string", "default": "there"},
            "question": {"type": "string", "description": "what the user asks"},
        },
        "defaults": {"model": "test-model", "temperature": 0.1},
    }
    spec.update(extra)
    return spec


def wait_until(predicate: Callable[[], bool], timeout: float = 15.0, what: str = "condition") -> None:
    """Wait for an asynchronous effect; the deadline only guards against hangs."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)


def push_in_process(url: str, index: int, barrier: Any, results: Any) -> None:
    """Worker for multiprocessing (spawn): open a registry, wait for all peers, then push
    distinct content to prompt 'race' and identical content to prompt 'same'."""
    registry = None
    try:
        registry = PromptRegistry(url, cache_labels=False, poll_interval_s=0)
        barrier.wait(timeout=120)
        pushes = [("race", f"variant {index}"), ("same", "shared content")]
        if index % 2:
            pushes.reverse()  # so both prompts see contention from the first instant
        outcome = {}
        for name, system in pushes:
            result = registry.push(make_spec(name, system=system), actor=f"proc-{index}")
            outcome[name] = (result.version.version, result.created)
        results.put(("ok", index, outcome))
    except BaseException:
        results.put(("error", index, traceback.format_exc()))
    finally:
        if registry is not None:
            registry.close()


def warm_imports() -> None:
    """Run once in a child so later children find compiled bytecode (see the concurrency tests)."""
    import psycopg  # noqa: F401
    import sqlalchemy.dialects.postgresql  # noqa: F401
    import sqlalchemy.dialects.sqlite  # noqa: F401
