"""Ingest `pydoc_data.topics` (one .txt file per topic) with the shipped pipeline, then ask the
question sets of `questions.py` in dense, BM25 and hybrid mode and score the rankings.

    .venv/bin/python -m evals.rag_quality.run [--out FILE] [--chunk-size N] [--chunk-overlap N]

hit@k: a chunk of a relevant topic is among the first k results. MRR@10: mean of 1/rank of the
first relevant chunk within the first 10 (0 if none). Embeddings are cached under var/cache/, so a
rerun with the same chunking only embeds the questions it has not seen.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from evals.rag_quality.cache import CachedEmbedder  # noqa: E402
from evals.rag_quality.questions import Question, handwritten, relevant_topics, templated  # noqa: E402
from rag import MiniLMEmbedder, RagService, RagSettings  # noqa: E402

MODES = ("dense", "bm25", "hybrid")
K = 10


def wilson(hits: int, n: int, z: float = 1.96) -> tuple[float, float]:
    if n == 0:
        return (0.0, 0.0)
    p = hits / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (round(centre - half, 3), round(centre + half, 3))


def first_relevant(sources: list[str], relevant: set[str]) -> int | None:
    for rank, source in enumerate(sources, start=1):
        if Path(source).stem in relevant:
            return rank
    return None


def score(ranks: list[int | None]) -> dict[str, Any]:
    n = len(ranks)
    hit5 = sum(1 for r in ranks if r is not None and r <= 5)
    return {
        "n": n,
        "hit@1": round(sum(1 for r in ranks if r == 1) / n, 3),
        "hit@5": round(hit5 / n, 3),
        "hit@5_ci95": wilson(hit5, n),
        "hit@10": round(sum(1 for r in ranks if r is not None) / n, 3),
        "mrr@10": round(sum(1 / r for r in ranks if r is not None) / n, 3),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=ROOT / "evals" / "rag_quality" / "results.json")
    ap.add_argument("--cache", type=Path, default=ROOT / "var" / "cache" / "rag_quality" / "embeddings.npz")
    ap.add_argument("--chunk-size", type=int, default=None)
    ap.add_argument("--chunk-overlap", type=int, default=None)
    ap.add_argument("--mmr", action="store_true", help="also score hybrid + MMR")
    args = ap.parse_args()

    from pydoc_data.topics import topics

    overrides = {k: v for k, v in (("chunk_size", args.chunk_size), ("chunk_overlap", args.chunk_overlap)) if v}
    work = Path(tempfile.mkdtemp(prefix="rag-quality-"))
    embedder = CachedEmbedder(MiniLMEmbedder(), args.cache)
    settings = RagSettings(uri=str(work / "rag.db"), **overrides)
    svc = RagService(settings, embedder=embedder)
    try:
        docs = work / "topics"
        docs.mkdir()
        for name, text in topics.items():
            (docs / f"{name}.txt").write_text(text)
        t = time.perf_counter()
        report = svc.ingestor.ingest_paths([docs], "pydoc", source_root=docs, progress=True)
        ingest_s = time.perf_counter() - t
        embedder.save()
        assert not report.errors, report.errors

        relevant = relevant_topics(topics)
        sets: dict[str, list[Question]] = {"handwritten": handwritten(), "templated": templated(topics)}
        modes: list[tuple[str, dict[str, Any]]] = [(m, {"mode": m}) for m in MODES]
        if args.mmr:
            modes.append(("hybrid+mmr", {"mode": "hybrid", "mmr": True}))
        results: dict[str, Any] = {}
        details: list[dict[str, Any]] = []
        for set_name, questions in sets.items():
            results[set_name] = {}
            for label, kw in modes:
                ranks = []
                for q in questions:
                    hits = svc.retriever.search("pydoc", q.text, tenant="", top_k=K, **kw)
                    rank = first_relevant([c.source for c in hits], relevant[q.topic])
                    ranks.append(rank)
                    details.append({"set": set_name, "mode": label, "id": q.id, "topic": q.topic, "rank": rank,
                                    "top": [Path(c.source).stem for c in hits[:3]]})
                results[set_name][label] = score(ranks)
                print(f"{set_name:12s} {label:11s} {results[set_name][label]}", flush=True)
        embedder.save()
        out = {
            "corpus": {"topics": len(topics), "characters": sum(len(v) for v in topics.values()),
                       "chunks": report.chunks, "ingest_s": round(ingest_s, 1),
                       "embedding_cache": {"hits": embedder.hits, "misses": embedder.misses}},
            "settings": {k: v for k, v in settings.model_dump().items() if k != "uri"},
            "index_type": settings.index_type(),
            "relevance": "a chunk whose topic is the question's topic or contains that topic's text",
            "results": results,
            "questions": details,
        }
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(out, indent=1))
        print(f"wrote {args.out}")
    finally:
        svc.close()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
