"""Micro-benchmark of the warm read path: label lookup + render of a small prompt.

    python -m prompts.bench [--iterations N] [--db URL]

Not a test: numbers depend on the machine. Target: p50 <= 0.2 ms.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from prompts.registry import PromptRegistry

NAME = "bench-support"
SPEC: dict[str, Any] = {
    "name": NAME,
    "messages": [
        {"role": "system", "content": "You are a support agent for {{ product }}. Be {{ tone }}."},
        {"role": "user", "content": "{{ question }}"},
    ],
    "variables": {
        "product": {"type": "string"},
        "question": {"type": "string"},
        "tone": {"type": "string", "default": "concise"},
    },
    "defaults": {"model": "llama-3.1-8b-instruct", "temperature": 0.2, "max_tokens": 256},
}
VARIABLES = {"product": "Acme Router", "question": "How do I reset it?"}


def _percentiles(samples_ns: list[int]) -> tuple[float, float, float]:
    ordered = sorted(samples_ns)
    p50 = ordered[len(ordered) // 2] / 1e6
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] / 1e6
    return p50, p99, statistics.fmean(ordered) / 1e6


def _measure(fn: Callable[[], object], iterations: int) -> list[int]:
    for _ in range(min(1000, iterations)):
        fn()
    samples = []
    clock = time.perf_counter_ns
    for _ in range(iterations):
        start = clock()
        fn()
        samples.append(clock() - start)
    return samples


def run(database_url: str, iterations: int) -> None:
    with PromptRegistry(database_url) as registry:
        version = registry.push(SPEC, actor="bench").version.version
        registry.move_label(NAME, "production", version, actor="bench")
        cases: dict[str, Callable[[], object]] = {
            "lookup (label -> version)": lambda: registry.get(NAME, label="production"),
            "lookup + render": lambda: registry.render(NAME, VARIABLES, label="production"),
        }
        for title, fn in cases.items():
            p50, p99, mean = _percentiles(_measure(fn, iterations))
            print(f"{title:<28} p50={p50:.4f} ms  p99={p99:.4f} ms  mean={mean:.4f} ms  (n={iterations})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--iterations", type=int, default=20_000)
    parser.add_argument("--db", help="database URL (default: a temporary SQLite file)")
    args = parser.parse_args()
    if args.db:
        run(args.db, args.iterations)
        return
    with tempfile.TemporaryDirectory() as tmp:
        run(f"sqlite:///{Path(tmp) / 'bench.db'}", args.iterations)


if __name__ == "__main__":
    main()
