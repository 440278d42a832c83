"""What the injection rail costs each request of a multi-turn chat, with and without its score cache.

    python benchmarks/guardrails_conversation.py [--turns 10] [--rounds 3]

Every untrusted turn is screened on every request (not just the last), so request n of a chat
re-screens the n - 1 user turns before it. The conversations are the test split's short benign
prompts taken ``--turns`` at a time (about a quarter of them go through the prompt stage's MiniLM);
each request runs the rail built as the gateway builds it, with ``cache_size: 0`` and with the
default cache, interleaved request by request so both see the same machine. One thread.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import argparse  # noqa: E402
import asyncio  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

from benchmarks.guardrails_latency import benign_test_texts  # noqa: E402
from guardrails.injection import DEFAULT_ARTIFACT  # noqa: E402
from guardrails.policy import RailSpec  # noqa: E402
from guardrails.rails import Rail, RailContext, Resources, build  # noqa: E402


async def request_ms(rail: Rail, turns: list[str], caller: str) -> float:
    t0 = time.perf_counter()
    for text in turns:
        await rail.run(text, RailContext(stage="input", caller=caller))
    return (time.perf_counter() - t0) * 1000.0


async def run(turns: int, rounds: int) -> dict[str, dict[str, float]]:
    res = Resources(nemo=None, injection_model=DEFAULT_ARTIFACT)  # type: ignore[arg-type]
    _, prompts = benign_test_texts()
    chats = [prompts[i : i + turns] for i in range(0, len(prompts) - turns + 1, turns)]
    times: dict[str, dict[int, list[float]]] = {"no cache": {}, "cache": {}}
    for r in range(rounds):
        # A new rail each round: the cached variant starts cold, as a fresh replica would.
        rails = {"no cache": build(RailSpec(rail="injection", params={"cache_size": 0}), res),
                 "cache": build(RailSpec(rail="injection"), res)}
        for c, chat in enumerate(chats):
            for n in range(1, len(chat) + 1):
                order = list(rails.items()) if (r + c + n) % 2 else list(rails.items())[::-1]
                for name, rail in order:
                    times[name].setdefault(n, []).append(await request_ms(rail, chat[:n], f"chat-{c}"))
    out = {}
    for name, by_turn in times.items():
        every = [t for ts in by_turn.values() for t in ts]
        out[name] = {"request 1 p50": statistics.median(by_turn[1]), f"request {turns} p50": statistics.median(by_turn[turns]),
                     "mean per request": statistics.fmean(every), "p99 per request": sorted(every)[int(0.99 * (len(every) - 1))],
                     "requests": len(every)}
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    out = asyncio.run(run(args.turns, args.rounds))
    print(f"{args.turns}-turn chats of the test split's short benign prompts, {args.rounds} rounds, one thread, "
          f"{platform.processor() or platform.machine()}")
    for name, r in out.items():
        print(f"  {name:<9} " + "   ".join(f"{k} {v:8.2f} ms" if k != "requests" else f"n={v}" for k, v in r.items()))
    ratio = out["no cache"]["mean per request"] / out["cache"]["mean per request"]
    print(f"  mean per request, no cache / cache: {ratio:.1f}x")
    print(json.dumps({"turns": args.turns, "rounds": args.rounds, "results": out}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
