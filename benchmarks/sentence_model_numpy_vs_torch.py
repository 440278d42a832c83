"""The shipped sentence model (numpy forward pass) against transformers' float32 model with the same
merged adapter, side by side on one thread, alternating rounds: the top 3 sentences (as document
mode picks them) of 150 test-split long benign documents.

    python benchmarks/sentence_model_numpy_vs_torch.py
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import statistics  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402


def torch_model() -> Callable[[list[str]], np.ndarray]:
    import torch
    from safetensors.torch import load_file
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from guardrails.injection.sentence_data import SENTENCE_ADAPTER
    from guardrails.injection.sentence_model import LORA_A, LORA_B, MAX_LEN, base_model_dir

    torch.set_num_threads(1)
    base = base_model_dir()
    model: Any = AutoModelForSequenceClassification.from_pretrained(base, num_labels=1).eval()
    adapter = load_file(SENTENCE_ADAPTER)
    params = dict(model.named_parameters())
    with torch.no_grad():
        for name, value in adapter.items():
            if name.endswith(LORA_A):
                continue
            target = name.removesuffix(LORA_B)
            p = params[target] if target in params else params["bert." + target]
            if name.endswith(LORA_B):
                p.add_(value.float() @ adapter[target + LORA_A].float())
            else:
                p.copy_(value.float())
    tok = AutoTokenizer.from_pretrained(base)

    def run(texts: list[str]) -> np.ndarray:
        with torch.inference_mode():
            enc = tok(texts, padding=True, truncation=True, max_length=MAX_LEN, return_tensors="pt")
            return model(**enc).logits[:, 0].numpy()

    return run


def main() -> int:
    from guardrails.injection.dataset import DEFAULT_SEED, build_dataset
    from guardrails.injection.detector import InjectionDetector
    from guardrails.injection.evaluation import LONG_BENIGN

    det = InjectionDetector.load()
    assert det.sentence is not None
    docs = [ex.text for ex in build_dataset(DEFAULT_SEED) if ex.split == "test" and ex.source in LONG_BENIGN][:150]
    tops = [found[1] for t in docs if (found := det.document_summary(t, 0.0)) is not None]
    runners = {"numpy (shipped)": det.sentence.logits, "torch float32": torch_model()}
    for r in range(2):
        for name, fn in runners.items():
            samples = []
            for top in tops:
                t0 = time.perf_counter()
                fn(top)
                samples.append((time.perf_counter() - t0) * 1000)
            samples.sort()
            print(f"round {r} {name:<16} p50 {statistics.median(samples):6.1f} ms  p99 {samples[int(0.99 * (len(samples) - 1))]:6.1f} ms")
    a = np.concatenate([runners["numpy (shipped)"](t) for t in tops[:50]])
    b = np.concatenate([runners["torch float32"](t) for t in tops[:50]])
    print(f"max |numpy - torch| over {len(a)} sentences: {float(np.abs(a - b).max()):.2e}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
