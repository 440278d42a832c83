"""Time to first token and tokens/s of the local model: through Triton (gRPC stream, the gateway's
TritonChatBackend), the same engine in-process, and plain transformers `model.generate`.

    .venv/bin/python benchmarks/triton_local_model.py [--runs 3] [--max-tokens 48] [--streams 8]

Starts its own Triton server (`python -m gateway.localmodel.server`) on free ports unless `--url`
names a running one. Greedy decoding; prompts ask for long answers so most streams run to
max_tokens. Reports medians over `--runs` runs as markdown on stdout (progress on stderr).

Metrics, per run:
- TTFT: submit -> first non-empty text delta (median over the streams of the run).
- decode tok/s per stream: (completion tokens - 1) / (last delta - first delta).
- aggregate tok/s: all completion tokens of the run / wall time of the run.
For `model.generate` (no streaming here): TTFT = time of a 1-token generate; tok/s = new tokens /
total time; 8 streams = one left-padded batch of 8.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.conftest_triton import start_local_triton, stop_local_triton  # noqa: E402  (the tests' server start)

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
if "OMP_WAIT_POLICY" not in os.environ:  # as gateway.localmodel.engine does, before torch loads
    os.environ.setdefault("GOMP_SPINCOUNT", "10000")

QUESTIONS = [
    "Write a short story about a lighthouse keeper.",
    "Explain how a bicycle works, step by step.",
    "Describe the water cycle in detail.",
    "Write a letter to a friend about a trip to the mountains.",
    "Explain what a computer network is to a child.",
    "Describe a busy market in the morning.",
    "Give advice to someone learning to cook.",
    "Tell me about the history of the printing press.",
]


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------------ measurements
class Stream:
    def __init__(self) -> None:
        self.t0 = time.perf_counter()
        self.first: float | None = None
        self.last: float | None = None
        self.tokens = 0

    def delta(self, text: str) -> None:
        if text:
            now = time.perf_counter()
            self.first = self.first or now
            self.last = now

    @property
    def ttft(self) -> float:
        return (self.first or time.perf_counter()) - self.t0

    @property
    def decode_tps(self) -> float | None:
        if self.first is None or self.last is None or self.last <= self.first or self.tokens < 2:
            return None
        return (self.tokens - 1) / (self.last - self.first)


def summarise(runs: list[tuple[list[Stream], float]]) -> dict[str, float]:
    ttfts, tps, aggs = [], [], []
    for streams, wall in runs:
        ttfts.append(statistics.median(s.ttft for s in streams))
        per = [s.decode_tps for s in streams if s.decode_tps]
        if per:
            tps.append(statistics.median(per))
        aggs.append(sum(s.tokens for s in streams) / wall)
    return {
        "ttft_ms": statistics.median(ttfts) * 1000,
        "stream_tps": statistics.median(tps) if tps else float("nan"),
        "agg_tps": statistics.median(aggs),
        "tokens": statistics.median(sum(s.tokens for s in st) for st, _ in runs),
    }


async def via_triton(url: str, model: str, tokenizer: Any, n: int, max_tokens: int) -> tuple[list[Stream], float]:
    from gateway.backends.base import GenerationRequest
    from gateway.backends.triton import TritonChatBackend

    backend = TritonChatBackend(url, model, tokenizer=tokenizer, timeout_s=300, context_length=8192)

    async def one(q: str) -> Stream:
        st = Stream()
        req = GenerationRequest(
            model=model, messages=[{"role": "user", "content": q}], max_tokens=max_tokens, temperature=0.0
        )
        async for d in backend.stream(req):
            st.delta(d.text)
            if d.usage is not None:
                st.tokens = d.usage.completion_tokens
        return st

    t = time.perf_counter()
    try:
        streams = await asyncio.gather(*(one(q) for q in QUESTIONS[:n]))
    finally:
        await backend.aclose()
    return list(streams), time.perf_counter() - t


async def in_process(engine: Any, tokenizer: Any, n: int, max_tokens: int) -> tuple[list[Stream], float]:
    from gateway.localmodel.engine import SamplingParams

    async def one(q: str) -> Stream:
        st = Stream()
        prompt = tokenizer.apply_chat_template(
            [{"role": "user", "content": q}], tokenize=False, add_generation_prompt=True
        )
        async for ev in engine.astream(prompt, SamplingParams(max_tokens=max_tokens)):
            st.delta(ev.text)
            if ev.finish_reason is not None:
                st.tokens = ev.completion_tokens
        return st

    t = time.perf_counter()
    streams = await asyncio.gather(*(one(q) for q in QUESTIONS[:n]))
    return list(streams), time.perf_counter() - t


def hf_generate(model: Any, tokenizer: Any, n: int, max_tokens: int) -> tuple[list[Stream], float]:
    import torch

    prompts = [
        tokenizer.apply_chat_template([{"role": "user", "content": q}], tokenize=False, add_generation_prompt=True)
        for q in QUESTIONS[:n]
    ]
    tokenizer.padding_side = "left"
    enc = tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
    with torch.inference_mode():
        t = time.perf_counter()
        model.generate(**enc, max_new_tokens=1, do_sample=False, pad_token_id=tokenizer.pad_token_id)
        ttft = time.perf_counter() - t
        t = time.perf_counter()
        out = model.generate(**enc, max_new_tokens=max_tokens, do_sample=False, pad_token_id=tokenizer.pad_token_id)
        wall = time.perf_counter() - t
    streams = []
    eos = {tokenizer.eos_token_id, tokenizer.pad_token_id}
    for row in out[:, enc["input_ids"].shape[1] :].tolist():
        st = Stream()
        st.tokens = next((i + 1 for i, tok in enumerate(row) if tok in eos), len(row))
        st.t0, st.first, st.last = 0.0, ttft, ttft + (wall - ttft) * st.tokens / max(1, len(row))
        streams.append(st)
    return streams, wall


def decode_steps(engine: Any, batches: tuple[int, ...], n: int = 30) -> dict[tuple[int, int], float]:
    """Median ms of one bare decode forward pass (no scheduler, sampling, detokenising), per
    batch size and thread count; the engine's thread must be stopped."""
    import torch

    model = engine.model
    out: dict[tuple[int, int], float] = {}
    with torch.inference_mode():
        for threads in sorted({1, engine.threads}):
            torch.set_num_threads(threads)
            for b in batches:
                model.ensure_cache(b, 300)
                for i in range(5):
                    model.decode([100] * b, [100 + i] * b)
                ts = []
                for i in range(n):
                    t = time.perf_counter()
                    model.decode([100] * b, [100 + i] * b)
                    ts.append(time.perf_counter() - t)
                out[(threads, b)] = statistics.median(ts) * 1000
    torch.set_num_threads(engine.threads)
    return out


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} logical CPUs, {platform.system()} {platform.release()}"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model-dir", default=str(ROOT / "models" / "smollm2"))
    ap.add_argument("--model-name", default="smollm2")
    ap.add_argument("--url", help="gRPC host:port of a running server (default: start one)")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--max-tokens", type=int, default=48)
    ap.add_argument("--streams", type=int, default=8)
    ap.add_argument("--weight-format", default="auto")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--hf-max-tokens", type=int, default=24, help="max_tokens for transformers generate")
    ap.add_argument("--skip-hf", action="store_true", help="skip plain transformers generate")
    args = ap.parse_args()

    import torch

    from gateway.localmodel.engine import Engine, load_tokenizer

    load_before = os.getloadavg()
    t_start = time.perf_counter()
    server = None
    extra = ["--weight-format", args.weight_format] + (["--threads", str(args.threads)] if args.threads else [])
    if args.url is None:
        log("starting Triton server ...")
        server, triton = start_local_triton(Path(os.devnull), Path(args.model_dir), args.model_name, tuple(extra))
        url = triton.grpc
    else:
        url = args.url
    rows: list[tuple[str, int, dict[str, float]]] = []
    try:
        tokenizer = load_tokenizer(args.model_dir)
        for n in (1, args.streams):
            asyncio.run(via_triton(url, args.model_name, tokenizer, n, 4))  # warm-up
            runs = []
            for r in range(args.runs):
                runs.append(asyncio.run(via_triton(url, args.model_name, tokenizer, n, args.max_tokens)))
                log(f"triton n={n} run {r + 1}/{args.runs}")
            rows.append(("Triton gRPC stream (TritonChatBackend)", n, summarise(runs)))
    finally:
        if server is not None:
            stop_local_triton(server)

    log("loading the engine in-process ...")
    engine = Engine.load(args.model_dir, weight_format=args.weight_format, threads=args.threads)
    try:
        for n in (1, args.streams):
            asyncio.run(in_process(engine, tokenizer, n, 4))
            runs = [asyncio.run(in_process(engine, tokenizer, n, args.max_tokens)) for _ in range(args.runs)]
            log(f"in-process n={n} done")
            rows.append((f"engine in-process ({engine.weight_format})", n, summarise(runs)))
    finally:
        engine.close()
    steps = decode_steps(engine, (1, args.streams))

    if not args.skip_hf:
        from transformers import AutoModelForCausalLM

        from gateway.localmodel.engine import _fast_gguf_parsing

        log("plain transformers generate ...")
        gguf = sorted(Path(args.model_dir).glob("*.gguf"))[0].name
        with _fast_gguf_parsing():
            model = AutoModelForCausalLM.from_pretrained(args.model_dir, gguf_file=gguf, dtype=torch.float32)
        model.eval()
        torch.set_num_threads(engine.threads)
        for n in (1, args.streams):
            hf_generate(model, tokenizer, n, 2)
            runs = [hf_generate(model, tokenizer, n, args.hf_max_tokens) for _ in range(max(1, args.runs - 1))]
            rows.append((f"transformers model.generate (float32, max_tokens={args.hf_max_tokens})", n, summarise(runs)))

    print("## Local model: Triton vs in-process engine vs transformers generate\n")
    print(
        f"- machine: {machine()}; torch {torch.__version__}, {engine.threads} threads, "
        f"GOMP_SPINCOUNT={os.environ.get('GOMP_SPINCOUNT')}"
    )
    print(f"- command: `{' '.join([Path(sys.executable).name, *sys.argv])}`")
    print(
        f"- greedy, max_tokens={args.max_tokens}, {args.runs} runs per row (medians); "
        f"load average before {load_before[0]:.1f}, after {os.getloadavg()[0]:.1f}; "
        f"total {time.perf_counter() - t_start:.0f} s\n"
    )
    print("| path | streams | TTFT ms (median) | decode tok/s per stream | aggregate tok/s | tokens/run |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, n, s in rows:
        print(f"| {name} | {n} | {s['ttft_ms']:.0f} | {s['stream_tps']:.1f} | {s['agg_tps']:.1f} | {s['tokens']:.0f} |")
    print("\nBare decode forward pass of the engine's model (no scheduler), median of 30 steps at position ~100:\n")
    print("| threads | batch | ms/step | tokens/s |")
    print("|---:|---:|---:|---:|")
    for (threads, b), ms in sorted(steps.items()):
        print(f"| {threads} | {b} | {ms:.1f} | {b * 1000 / ms:.0f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
