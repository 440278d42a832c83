"""Input rails on a 2,000-character prompt: our engine vs NeMo Guardrails' own `check_async`, side
by side in one run, plus the cost the streaming output rails add per released window.

    .venv/bin/python benchmarks/guardrails_vs_nemo.py [--iters 300]

A: the `default` policy's input rails through our engine (injection, secrets, pii).
B: NeMo `check_async` over `configs/rails/topics` (one Colang flow calling one Python action).
C: NeMo `check_async` running the same detector as A as a NeMo action (what A would cost inside NeMo).
D: streaming output rails of the `default` policy, per 96-character window.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("NEMO_GUARDRAILS_NO_USAGE_STATS", "1")

from common import machine, percentile  # noqa: E402

from gateway.config import ROOT, load_settings  # noqa: E402
from guardrails.engine import Guardrails  # noqa: E402
from guardrails.nemo import NemoRails  # noqa: E402
from guardrails.rails import RailContext  # noqa: E402
from guardrails.stream_screen import StreamScreen  # noqa: E402

PARAGRAPH = (
    "Our deployment pipeline builds the service, runs the unit and integration suites, and then "
    "promotes the image to staging where a canary receives one percent of the traffic for an hour. "
    "If error rates stay flat the rollout continues in steps of ten percent. Could you review the "
    "runbook below and suggest what we should monitor during each step, and which alerts matter? "
)
PROMPT = (PARAGRAPH * 6)[:2000]

NEMO_ACTION_CONFIG = {
    "config.yml": "rails:\n  input:\n    flows:\n      - screen with detector\n",
    "rails.co": (
        "define bot refuse\n  \"I'm sorry, I can't help with that.\"\n\n"
        "define flow screen with detector\n  $ok = execute detector_passes(text=$user_message)\n"
        "  if not $ok\n    bot refuse\n    stop\n"
    ),
    "actions.py": (
        "from nemoguardrails.actions import action\n"
        "from guardrails.injection import InjectionDetector\n"
        "from guardrails.pii import find_entities\n"
        "_d = InjectionDetector.load()\n\n"
        "@action(name='detector_passes')\n"
        "async def detector_passes(text: str = '') -> bool:\n"
        "    return _d.score(text) < _d.threshold and not find_entities(text)\n"
    ),
}


def stats(samples: list[float]) -> str:
    return f"{percentile(samples, 50):.2f} | {percentile(samples, 99):.2f} | {statistics.fmean(samples):.2f}"


async def timed(fn, iters: int) -> list[float]:  # type: ignore[no-untyped-def]
    for _ in range(20):
        await fn()
    out = []
    for _ in range(iters):
        t0 = time.perf_counter()
        await fn()
        out.append((time.perf_counter() - t0) * 1000)
    return out


async def main(iters: int) -> None:
    rails = Guardrails(load_settings().guardrails, ROOT)
    policy = rails.policy("default")
    messages = [{"role": "user", "content": PROMPT}]

    async def ours() -> None:
        await rails.screen_messages(policy, messages, RailContext(stage="input"))

    topics = NemoRails(ROOT / "configs/rails/topics")
    await topics.warm()

    async def nemo_topics() -> None:
        await topics.check(messages, "input")

    folder = Path(tempfile.mkdtemp(prefix="nemo-detector-"))
    for name, text in NEMO_ACTION_CONFIG.items():
        (folder / name).write_text(text)
    detector = NemoRails(folder)
    await detector.warm()

    async def nemo_detector() -> None:
        await detector.check(messages, "input")

    answer = (PARAGRAPH * 10)[:2400]
    windows = 0

    async def stream() -> None:
        nonlocal windows
        screen = StreamScreen(policy, RailContext(stage="output"), policy.settings.stream_window_chars)
        for i in range(0, len(answer), 8):  # token-sized deltas
            await screen.feed(answer[i : i + 8])
        await screen.finish()
        windows = len([v for v in screen.screen.verdicts if v.rail == policy.output[0][1].name])

    a = await timed(ours, iters)
    b = await timed(nemo_topics, iters)
    c = await timed(nemo_detector, iters)
    d = await timed(stream, max(20, iters // 10))
    per_window = [x / max(1, windows) for x in d]
    print(f"# Guardrails latency vs NeMo Guardrails ({time.strftime('%Y-%m-%d')}, {machine()})\n")
    print(f"command: `.venv/bin/python benchmarks/guardrails_vs_nemo.py --iters {iters}`; prompt {len(PROMPT)} chars\n")
    print("| path | p50 ms | p99 ms | mean ms |")
    print("|---|---|---|---|")
    print(f"| A. our input rails (injection + secrets + pii) | {stats(a)} |")
    print(f"| B. NeMo check_async, topics config (1 flow, 1 action) | {stats(b)} |")
    print(f"| C. NeMo check_async running A's detector as an action | {stats(c)} |")
    print(f"| D. streaming output rails, per {policy.settings.stream_window_chars}-char window ({windows} windows) | {stats(per_window)} |")
    print(f"\nNeMo's own overhead per check (C − A, medians): {percentile(c, 50) - percentile(a, 50):.2f} ms. "
          "LLM Guard publishes 213 ms on CPU for its prompt-injection scanner.")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--iters", type=int, default=300)
    asyncio.run(main(parser.parse_args().iters))
