"""Eval runner overhead: the same items called directly with the openai SDK and through the runner.

    .venv/bin/python benchmarks/evals_overhead.py [--items 100] [--rounds 3] [--delay-ms 50]
    .venv/bin/python benchmarks/evals_overhead.py --base-url http://127.0.0.1:8000 --api-key KEY  # + local model

Part 1 (always): the fake provider (tests/support/fake_provider.py) with model `slow-<delay>` answers
after a fixed delay. Per item, sequentially (concurrency 1): `direct` is one
`AsyncOpenAI.chat.completions.create` per item in a loop; `runner` is `evals.runner.run_suite` over
the same items with a cold cache (so it pays cache writes, scoring of contains + latency + tokens,
result building) — everything but the reports. Rounds alternate direct/runner; medians are printed.
The target is an overhead of at most 5% per item. A warm-cache rerun is timed too.

Part 2 (with --base-url): throughput of the runner on the local model through a running gateway
(the smoke suite's questions, no cache) at concurrency 1, 4 and 8.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import openai
from common import ROOT, machine, procs

sys.path.insert(0, str(ROOT))

from evals.cache import OutputCache  # noqa: E402
from evals.runner import RunOverrides, run_suite  # noqa: E402
from evals.suite import parse_suite  # noqa: E402
from evals.targets import Transport  # noqa: E402


def write_dataset(folder: Path, n: int) -> Path:
    path = folder / "items.jsonl"
    path.write_text("".join(json.dumps({"id": f"i{i}", "input": f"Question number {i}?", "expected": "Hello"}) + "\n"
                            for i in range(n)))
    return path


def suite_for(folder: Path, dataset: Path, model: str, concurrency: int, extra_metrics: bool = True) -> object:
    metrics: list[object] = [{"metric": "contains", "threshold": 0.0}]
    if extra_metrics:
        metrics += ["latency", "tokens"]
    return parse_suite({"name": "overhead", "dataset": str(dataset), "target": {"model": model, "params": {"max_tokens": 16}},
                        "metrics": metrics, "run": {"concurrency": concurrency, "retries": 0}}, folder / "suite.yaml")


async def direct(base_url: str, key: str, model: str, n: int) -> float:
    client = openai.AsyncOpenAI(base_url=f"{base_url}/v1", api_key=key, max_retries=0)
    try:
        start = time.perf_counter()
        for i in range(n):
            await client.chat.completions.create(model=model, messages=[{"role": "user", "content": f"Question number {i}?"}],
                                                 temperature=0, seed=0, max_tokens=16)
        return time.perf_counter() - start
    finally:
        await client.close()


async def through_runner(suite: object, base_url: str, key: str, cache: OutputCache | None, concurrency: int = 1) -> float:
    transport = Transport(base_url, key, max_connections=max(8, 2 * concurrency))
    try:
        start = time.perf_counter()
        result = await run_suite(suite, transport, cache=cache, overrides=RunOverrides(concurrency=concurrency))  # type: ignore[arg-type]
        elapsed = time.perf_counter() - start
        if result.error or result.targets[0].errors:
            raise SystemExit(f"runner failed: {result.error or result.targets[0].items[0].error}")
        return elapsed
    finally:
        await transport.aclose()


async def part1(items: int, rounds: int, delay_ms: int) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="bench-evals-"))
    proc, url = procs.start_fake_provider(tmp)
    model = f"slow-{delay_ms}"
    try:
        dataset = write_dataset(tmp, items)
        suite = suite_for(tmp, dataset, model, 1)
        await direct(url, "x", model, 5)  # warm up the SDK, pools and imports
        warm = tmp / "warm"
        warm.mkdir()
        await through_runner(suite_for(warm, write_dataset(warm, 5), model, 1), url, "x", None)
        d_times, r_times, w_times = [], [], []
        for r in range(rounds):
            d_times.append(await direct(url, "x", model, items) / items * 1000)
            cache = OutputCache(tmp / f"cache-{r}.sqlite3")
            r_times.append(await through_runner(suite, url, "x", cache) / items * 1000)
            w_times.append(await through_runner(suite, url, "x", cache) / items * 1000)
            cache.close()
        d, rr, w = statistics.median(d_times), statistics.median(r_times), statistics.median(w_times)
        print(f"## Runner overhead (fake provider, `{model}`, {items} items, concurrency 1, median of {rounds} rounds)\n")
        print("| path | ms per item | overhead vs direct |")
        print("|---|---|---|")
        print(f"| direct (openai SDK loop) | {d:.2f} | — |")
        print(f"| runner, cold cache (calls + cache writes + scoring) | {rr:.2f} | {rr - d:+.2f} ms ({(rr - d) / d:+.1%}) |")
        print(f"| runner, warm cache (rerun: no calls) | {w:.2f} | — |")
        print("\nrounds (direct / runner ms per item): "
              + ", ".join(f"{a:.2f}/{b:.2f}" for a, b in zip(d_times, r_times, strict=True)))
        verdict = "within" if (rr - d) / d <= 0.05 else "OVER"
        print(f"\nOverhead target ≤ 5% per item: {verdict} ({(rr - d) / d:+.2%}).\n")
    finally:
        procs.stop(proc)


async def part2(base_url: str, key: str, model: str) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="bench-evals-live-"))
    smoke = ROOT / "evals/suites/data/smoke.jsonl"
    print(f"## Runner throughput on `{model}` through {base_url} (smoke questions, no cache, max_tokens 32)\n")
    print("| concurrency | items | seconds | items/s |")
    print("|---|---|---|---|")
    for c in (1, 4, 8):
        suite = parse_suite({"name": "throughput", "dataset": str(smoke),
                             "target": {"model": model, "params": {"temperature": 0, "max_tokens": 32}},
                             "metrics": ["contains"], "run": {"concurrency": c, "retries": 1}}, tmp / "s.yaml")
        n = sum(1 for _ in smoke.open())
        elapsed = await through_runner(suite, base_url, key, None, c)
        print(f"| {c} | {n} | {elapsed:.2f} | {n / elapsed:.2f} |")
    print()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--delay-ms", type=int, default=50)
    parser.add_argument("--base-url", help="a running gateway: also measure throughput on the local model")
    parser.add_argument("--api-key", default="")
    parser.add_argument("--model", default="smollm2")
    args = parser.parse_args()
    print(f"# Eval runner overhead ({datetime.date.today()}, {machine()})\n")
    print(f"command: `.venv/bin/python benchmarks/evals_overhead.py {' '.join(sys.argv[1:])}`\n")
    asyncio.run(part1(args.items, args.rounds, args.delay_ms))
    if args.base_url:
        asyncio.run(part2(args.base_url.rstrip("/").removesuffix("/v1"), args.api_key, args.model))


if __name__ == "__main__":
    main()
