"""Search latency of the retrieval store at 10k and 100k chunks, against the in-process floor.

    .venv/bin/python benchmarks/rag_search.py [--sizes 10000 100000] [--queries 200]

For each size: clustered 384-d unit vectors (plus a short synthetic text per chunk, so the BM25
function runs at insert as it does in production) are inserted once through `rag.store`; then for
each index type (FLAT, IVF_FLAT at several nprobe, HNSW at several ef) the index is rebuilt and
single queries are timed one at a time. Recall@10 is measured against exact search in numpy, which
is also timed as the floor. For the default configuration it also times: a tenant filter, the
output fields, consistency levels, a fresh connection per query, the query embedding alone, and the
whole hybrid pipeline (embedding + dense + BM25 + fusion). With Milvus Lite 3.x it profiles the
engine in-process to show where a search spends its time.

Run it once per Milvus Lite version (the JSON records which); to try another without touching the
venv: `pip install --target DIR --no-deps pymilvus==2.6.17 milvus-lite==2.5.1 setuptools==80.10.2`
and run with `PYTHONPATH=DIR`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from rag.config import IndexSettings, RagSettings  # noqa: E402
from rag.store import MilvusStore  # noqa: E402

DIM = 384
K = 10
COLL = "bench"


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q)) if values else float("nan")


def summary(lat_s: list[float]) -> dict[str, float]:
    ms = [x * 1000 for x in lat_s]
    return {"n": len(ms), "p50_ms": round(pct(ms, 50), 3), "p99_ms": round(pct(ms, 99), 3),
            "mean_ms": round(float(np.mean(ms)), 3) if ms else float("nan")}


def dataset(n: int, nq: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Clustered unit vectors (about 100 per cluster) and queries near random data points."""
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((max(10, n // 100), DIM)).astype(np.float32)
    x = centers[rng.integers(0, len(centers), n)] + 0.35 * rng.standard_normal((n, DIM)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    q = x[rng.integers(0, n, nq)] + 0.1 * rng.standard_normal((nq, DIM)).astype(np.float32)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    return x, q


def texts(n: int, seed: int = 1) -> list[str]:
    rng = np.random.default_rng(seed)
    vocab = [f"w{i}" for i in range(5000)]
    return [" ".join(vocab[j] for j in rng.integers(0, len(vocab), 12)) for _ in range(n)]


def exact(x: np.ndarray, q: np.ndarray) -> tuple[np.ndarray, list[float]]:
    truth = np.zeros((len(q), K), dtype=np.int64)
    lat = []
    for i, v in enumerate(q):
        t = time.perf_counter()
        s = x @ v
        top = np.argpartition(-s, K)[:K]
        top = top[np.argsort(-s[top])]
        lat.append(time.perf_counter() - t)
        truth[i] = top
    return truth, lat


def recall(found: list[list[int]], truth: np.ndarray) -> float:
    return float(np.mean([len(set(f[:K]) & set(t.tolist())) / K for f, t in zip(found, truth, strict=True)]))


def timed_queries(fn: Any, q: np.ndarray, budget_s: float) -> tuple[list[list[int]], list[float]]:
    for v in q[:3]:  # warm-up
        fn(v)
    found, lat = [], []
    start = time.perf_counter()
    for v in q:
        t = time.perf_counter()
        ids = fn(v)
        lat.append(time.perf_counter() - t)
        found.append(ids)
        if time.perf_counter() - start > budget_s:
            break
    return found, lat


def rebuild_index(store: MilvusStore, index: IndexSettings) -> float:
    """Drop and rebuild the vector index (Milvus Lite 2.5 reloads every row into a new segment)."""
    client = store.client()
    t = time.perf_counter()
    client.release_collection(COLL)
    client.drop_index(COLL, "vector")
    params = client.prepare_index_params()
    params.add_index("vector", index_type=index.type or "FLAT", metric_type=index.metric, params=dict(index.params))
    client.create_index(COLL, params)
    client.load_collection(COLL)
    return time.perf_counter() - t


def configs() -> list[IndexSettings]:
    out = [IndexSettings(type="FLAT", params={}, search_params={}), IndexSettings(type="AUTOINDEX")]
    out += [IndexSettings(type="IVF_FLAT", params={"nlist": 1024}, search_params={"nprobe": p}) for p in (8, 16, 32)]
    out += [IndexSettings(type="HNSW", params={"M": 16, "efConstruction": 200}, search_params={"ef": e})
            for e in (32, 64)]
    return out


def bench_size(n: int, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    x, q = dataset(n, args.queries)
    truth, floor = exact(x, q)
    out: dict[str, Any] = {"n": n, "numpy_exact": summary(floor), "configs": []}
    uri = str(work / f"b{n}.db")
    # The standard analyzer: Milvus Lite 3 has no "english" one. The texts are synthetic tokens anyway.
    store = MilvusStore(RagSettings(uri=uri, insert_batch_size=args.insert_batch, bm25_analyzer=None,
                                    timeout_s=args.timeout))
    store.ensure_collection(COLL)
    words = texts(n)
    rows = [{"id": str(i), "text": words[i], "vector": x[i].tolist(), "tenant": "t" if i % 2 else "u",
             "source": f"s{i // 50}", "source_key": "0" * 32, "fingerprint": "0" * 32,
             "chunk_index": i % 50, "chunk_count": 50, "metadata": {"k": i % 7}} for i in range(n)]
    t = time.perf_counter()
    store.insert(COLL, rows)
    store.client().flush(COLL)
    out["insert_rows_per_s"] = round(n / (time.perf_counter() - t), 1)
    del rows
    print(f"[{n}] inserted at {out['insert_rows_per_s']} rows/s; numpy exact p50 {out['numpy_exact']['p50_ms']} ms",
          flush=True)

    # The default first, on the collection as created: Milvus Lite 2.5 did not always return to
    # exact search after a rebuild back to FLAT, so the default is never measured after one.
    out["default"] = variants(store, q, truth, args)
    if n == max(args.sizes):
        out["pipeline"] = pipeline(store, args)
        out["profile"] = profile_lite3(store, q)

    current: IndexSettings | None = store.settings.index.model_copy(update={"type": store.settings.index_type()})
    for cfg in configs():
        entry: dict[str, Any] = {"index": cfg.type, "build": cfg.params, "search": cfg.search_params}
        try:
            if current is None or (cfg.type, cfg.params) != (current.type, current.params):
                entry["build_s"] = round(rebuild_index(store, cfg), 2)
                current = cfg
            store.settings = store.settings.model_copy(update={"index": cfg})
            found, lat = timed_queries(
                lambda v: [int(h.id) for h in store.search_dense(COLL, v, K, None)], q, args.budget)
            entry.update(summary(lat), recall_at_10=round(recall(found, truth[: len(found)]), 4))
        except Exception as err:  # an index type this Milvus Lite does not offer
            entry["error"] = f"{type(err).__name__}: {str(err)[:160]}"
            current = None
        print(f"[{n}] {entry}", flush=True)
        out["configs"].append(entry)
    store.close()
    return out


def variants(store: MilvusStore, q: np.ndarray, truth: np.ndarray, args: argparse.Namespace) -> dict[str, Any]:
    """The default index, one change at a time, to see what each costs."""
    client = store.client()
    sp = {"metric_type": "IP", "params": dict(store.settings.index.search_params)}
    res: dict[str, Any] = {"index": store.settings.index_type(), **store.settings.index.model_dump(exclude={"type"})}

    def raw(**kw: Any) -> Any:
        return lambda v: [int(h["id"]) for h in client.search(COLL, [v.tolist()], limit=K, anns_field="vector",
                                                              search_params=sp, **kw)[0]]

    cases: dict[str, Any] = {
        "store_default": lambda v: [int(h.id) for h in store.search_dense(COLL, v, K, None)],
        "store_tenant_filter": lambda v: [int(h.id) for h in store.search_dense(COLL, v, K, 'tenant == "t"')],
        "store_with_vectors": lambda v: [int(h.id) for h in store.search_dense(COLL, v, K, None, with_vectors=True)],
        "raw_ids_only": raw(),
        "raw_all_fields": raw(output_fields=["text", "source", "metadata", "tenant", "chunk_index"]),
        "raw_strong": raw(consistency_level="Strong"),
        "raw_eventually": raw(consistency_level="Eventually"),
        "store_limit_50": lambda v: [int(h.id) for h in store.search_dense(COLL, v, 50, None)],
    }
    for name, fn in cases.items():
        found, lat = timed_queries(fn, q, args.budget / 2)
        entry = summary(lat)
        if name != "store_tenant_filter":
            entry["recall_at_10"] = round(recall(found, truth[: len(found)]), 4)
        res[name] = entry
        print(f"  {name}: {entry}", flush=True)

    from pymilvus import MilvusClient

    def fresh(v: np.ndarray) -> list[int]:
        c = MilvusClient(uri=store.uri)
        try:
            return [int(h["id"]) for h in c.search(COLL, [v.tolist()], limit=K, anns_field="vector", search_params=sp)[0]]
        finally:
            c.close()

    _, lat = timed_queries(fresh, q[:30], args.budget / 2)
    res["new_connection_per_query"] = summary(lat)
    print(f"  new_connection_per_query: {res['new_connection_per_query']}", flush=True)
    return res


QUERIES = ["how do I reset my password", "w12 w400 w77 invoice", "what is the refund policy for annual plans",
           "w3 w4", "configure the retention period of audit logs", "w999 w1000 w1001 w1002"]


def pipeline(store: MilvusStore, args: argparse.Namespace) -> dict[str, Any]:
    """Query embedding alone, then the whole pipeline with it: what a caller of /v1/rag/search waits for."""
    from rag.embedder import MiniLMEmbedder
    from rag.retrieve import Retriever

    emb = MiniLMEmbedder()
    retr = Retriever(store, emb, store.settings)
    res: dict[str, Any] = {}
    qs = [QUERIES[i % len(QUERIES)] + f" {i}" for i in range(args.queries)]
    for name, fn in {
        "embed_query": lambda s: emb.embed([s]),
        "dense_with_embedding": lambda s: retr.search(COLL, s, tenant="t", top_k=K, mode="dense"),
        "bm25": lambda s: retr.search(COLL, s, tenant="t", top_k=K, mode="bm25"),
        "hybrid_with_embedding": lambda s: retr.search(COLL, s, tenant="t", top_k=K, mode="hybrid"),
    }.items():
        for s in qs[:3]:
            fn(s)
        lat = []
        start = time.perf_counter()
        for s in qs:
            t = time.perf_counter()
            fn(s)
            lat.append(time.perf_counter() - t)
            if time.perf_counter() - start > args.budget:
                break
        res[name] = summary(lat)
        print(f"  {name}: {res[name]}", flush=True)
    return res


def profile_lite3(store: MilvusStore, q: np.ndarray) -> dict[str, Any] | None:
    """Milvus Lite 3 runs its engine in this process: time one search inside it, by function."""
    try:
        from milvus_lite import server_manager_instance as sm
        from milvus_lite.search import executor_indexed  # noqa: F401  (3.x only)
    except ImportError:
        return None
    import cProfile
    import pstats

    entry = sm._servers.get(os.path.abspath(store.uri))
    if entry is None:
        return None
    col = entry[1].get_collection(COLL)
    sp = dict(store.settings.index.search_params)
    engine = []
    for v in q[:20]:
        t = time.perf_counter()
        col.search([v.tolist()], top_k=K, anns_field="vector", metric_type="IP", search_params=sp)
        engine.append(time.perf_counter() - t)
    prof = cProfile.Profile()
    prof.enable()
    for v in q[:20]:
        col.search([v.tolist()], top_k=K, anns_field="vector", metric_type="IP", search_params=sp)
    prof.disable()
    stats = pstats.Stats(prof).stats  # type: ignore[attr-defined]
    total = sum(v[2] for v in stats.values())  # tottime summed is the profiled wall time
    by_fn: dict[str, float] = {}
    for (file, _line, fn), v in stats.items():
        by_fn[f"{Path(file).name}:{fn}"] = by_fn.get(f"{Path(file).name}:{fn}", 0.0) + v[2]
    top = sorted(by_fn.items(), key=lambda kv: -kv[1])[:8]
    res = {"engine_only": summary(engine),
           "self_time_share": {k: round(t / total, 3) for k, t in top},
           "segments": len(col._segments_snapshot()) if hasattr(col, "_segments_snapshot") else None}
    print(f"  lite3 profile: {res}", flush=True)
    return res


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--budget", type=float, default=12.0, help="seconds of queries per configuration at most")
    ap.add_argument("--insert-batch", type=int, default=256)
    ap.add_argument("--timeout", type=float, default=120.0, help="per Milvus call (Milvus Lite 3 inserts can be slow)")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()

    import milvus_lite
    import pymilvus

    versions = {"pymilvus": pymilvus.__version__, "milvus_lite": getattr(milvus_lite, "__version__", "?")}
    print(versions, flush=True)
    work = Path(tempfile.mkdtemp(prefix="rag-bench-"))
    try:
        load_start = os.getloadavg()
        results = {"versions": versions, "queries": args.queries, "cpus": os.cpu_count(),
                   "sizes": [bench_size(n, args, work) for n in args.sizes],
                   "loadavg": {"start": load_start, "end": os.getloadavg()}}
    finally:
        shutil.rmtree(work, ignore_errors=True)
    out = args.out or ROOT / "var" / "bench" / f"rag_search-lite{versions['milvus_lite']}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
