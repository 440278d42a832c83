"""Single-thread latency of the fast rails on a ~2,000-character prompt.

    python benchmarks/guardrails_latency.py [--iters 2000]

Reports p50/p99 per rail (targets for the injection check: p50 <= 10 ms, p99 <= 25 ms). Document
mode is measured on the test split's long benign documents, and on those of them past the sentence
model's gate alone; prompt mode also on the test split's short benign prompts and on its long
documents pasted as prompts, with and without the prompt stage (v9), and on those past its gate.
Thread pools are pinned to one thread *before* numpy is imported so the figure is what
one gateway worker sees.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

# Run as a script, sys.path[0] is benchmarks/; put the repo root first so the checkout's
# guardrails package wins over whatever an (possibly stale) editable install maps.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import random  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402

from guardrails import DenyList, InjectionDetector, PromptLeakDetector, check_sensitive_data  # noqa: E402
from guardrails.canary import make_canary  # noqa: E402
from guardrails.pii.entity import ALL_TYPES, NER_TYPES  # noqa: E402

BASE = (
    "I'm migrating our billing service from Flask to FastAPI and I'm stuck on a few things. "
    "First, our old code used a before_request hook to open a DB session and teardown_request "
    "to close it; what's the idiomatic dependency-injection equivalent, and how do I make sure "
    "the session is closed even when the handler raises? Second, we have a background job that "
    "retries failed webhooks with exponential backoff. Should that live in a BackgroundTasks call "
    "or in a separate worker, given that a retry can take up to an hour? Third, our tests mock "
    "requests.post everywhere; with httpx.AsyncClient what's the cleanest way to stub outbound "
    "calls? Customer contact for the pilot is jane.doe@example.com, phone +1 415 555 0134. "
)


def prompt_of(n_chars: int, seed: int) -> str:
    rng = random.Random(seed)
    words = BASE.split()
    out: list[str] = []
    while sum(len(w) + 1 for w in out) < n_chars:
        out.append(rng.choice(words))
    return " ".join(out)[:n_chars]


def measure(fn: Callable[[str], object], texts: list[str], iters: int) -> dict[str, float]:
    for t in texts[:50]:
        fn(t)  # warm caches / lazy imports
    samples = []
    for i in range(iters):
        t = texts[i % len(texts)]
        t0 = time.perf_counter()
        fn(t)
        samples.append((time.perf_counter() - t0) * 1000.0)
    samples.sort()
    return {
        "p50_ms": round(statistics.median(samples), 3),
        "p99_ms": round(samples[int(0.99 * (len(samples) - 1))], 3),
        "mean_ms": round(statistics.fmean(samples), 3),
    }


def benign_test_texts() -> tuple[list[str], list[str]]:
    """The test split's long benign documents and its short benign prompts."""
    from guardrails.injection.dataset import DEFAULT_SEED, build_dataset
    from guardrails.injection.evaluation import LONG_BENIGN, SHORT_BENIGN

    test = [ex for ex in build_dataset(DEFAULT_SEED) if ex.split == "test"]
    return [ex.text for ex in test if ex.source in LONG_BENIGN], [ex.text for ex in test if ex.source in SHORT_BENIGN]


def _past_prompt_gate(detector: InjectionDetector, text: str) -> bool:
    """Whether prompt mode runs the prompt stage's MiniLM on ``text``."""
    if detector.prompt_stage is None:
        return False
    first, _, whole = detector.prompt_parts(text)
    return detector.prompt_stage.reads(first, whole)


def _past_gate(detector: InjectionDetector, text: str) -> bool:
    """Whether document mode runs the sentence model on ``text``."""
    if detector.sentence_trees is None or detector.doc_trees is None:
        return False
    found = detector.document_summary(text, max(detector.segment_logits(text)))
    return found is not None and detector.doc_trees.decision(found[0]) >= detector.sentence_gate


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iters", type=int, default=2000)
    parser.add_argument("--chars", type=int, default=2000)
    args = parser.parse_args()
    texts = [prompt_of(args.chars, seed) for seed in range(100)]
    t0 = time.perf_counter()
    detector = InjectionDetector.load()
    load_ms = (time.perf_counter() - t0) * 1000.0
    docs, prompts = benign_test_texts()
    past = [t for t in docs if _past_gate(detector, t)]
    prompts_past = [t for t in prompts if _past_prompt_gate(detector, t)]
    docs_as_prompts_past = [t for t in docs if _past_prompt_gate(detector, t)]
    leak = PromptLeakDetector(BASE * 2, make_canary())
    deny = DenyList(["globex corp", "project nightingale", "internal only"])
    results = {
        "injection.check": measure(detector.check, texts, args.iters),
        # What decoding base64/hex payloads adds (``guardrails.injection.encoded``): a scan, on these
        # prompts nothing to decode.
        "  score": measure(detector.score, texts, args.iters),
        "  score, payloads not decoded": measure(lambda t: detector.score(t, decode=False), texts, args.iters),
        # Prompt mode on real prompts: since v9 those the first stage scores near or above the
        # threshold also go through the prompt stage's MiniLM (64 tokens of the prompt or its top window).
        "  short benign prompts (test)": measure(detector.check, prompts, args.iters),
        "  same, prompt stage skipped": measure(lambda t: detector.check(t, last_stage=False), prompts, args.iters),
        "  short prompts past the gate": measure(detector.check, prompts_past, args.iters // 4),
        "  long docs pasted as prompts": measure(detector.check, docs, args.iters),
        "  same, prompt stage skipped ": measure(lambda t: detector.check(t, last_stage=False), docs, args.iters),
        "  docs as prompts past the gate": measure(detector.check, docs_as_prompts_past, args.iters // 4),
        # Retrieved chunks and tool results: sentence model, word vectors, rescoring trees.
        # Document mode on the test split's long benign documents (docs, code; 200-3,000 chars): since v5
        # the ~10% the trees rank high also go through the fine-tuned MiniLM (top 3 sentences).
        "injection.check (document mode)": measure(lambda t: detector.check(t, document=True), docs, args.iters),
        # A policy with params.document_last_stage: false (v4's decision and cost: numpy only).
        "  same, last stage skipped": measure(
            lambda t: detector.check(t, document=True, last_stage=False), docs, args.iters
        ),
        "injection.check (doc, past the gate)": measure(lambda t: detector.check(t, document=True), past, args.iters // 4),
        "  past the gate, last stage skipped": measure(
            lambda t: detector.check(t, document=True, last_stage=False), past, args.iters // 4
        ),
        "pii.check (all types)": measure(check_sensitive_data, texts, args.iters),
        # Opt-in NER types (spaCy en_core_web_sm): a separate row, they are not in the default set.
        "pii.check + PERSON/LOCATION": measure(
            lambda t: check_sensitive_data(t, NER_TYPES | ALL_TYPES), texts, max(50, args.iters // 10)
        ),
        "canary/leak.check": measure(leak.check, texts, args.iters),
        "denylist.check": measure(deny.check, texts, args.iters),
    }
    print(
        f"{args.chars}-char prompts, {args.iters} iterations, single thread, {platform.processor() or platform.machine()}"
    )
    print(f"injection artifact load: {load_ms:.1f} ms")
    print(f"documents past the sentence model's gate: {len(past)}/{len(docs)} benign test documents")
    print(f"prompts past the prompt stage's gate: {len(prompts_past)}/{len(prompts)} short benign test prompts, "
          f"{len(docs_as_prompts_past)}/{len(docs)} long benign documents pasted as prompts, "
          f"{sum(_past_prompt_gate(detector, t) for t in texts)}/{len(texts)} of the {args.chars}-char prompts")
    for name, r in results.items():
        print(f"  {name:<32} p50 {r['p50_ms']:7.3f} ms   p99 {r['p99_ms']:7.3f} ms   mean {r['mean_ms']:7.3f} ms")
    print(json.dumps({"chars": args.chars, "iters": args.iters, "load_ms": round(load_ms, 1), "results": results}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
