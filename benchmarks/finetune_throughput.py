"""Fine-tuning throughput against a bare peft loop, and time to a servable model, as markdown.

    .venv/bin/python benchmarks/finetune_throughput.py [--examples 100] [--steps 10] [--rounds 3]
                                                       [--batch-size 4] [--lora-rank 8] [--no-triton]

Throughput: three runs over the same examples, batches and LoRA configuration (SmolLM2-135M,
float32, CPU), `--steps` optimizer steps each, interleaved over `--rounds` rounds (the order
rotates) so that a busy neighbour on a shared machine slows every variant alike; medians reported:

1. `bare peft`: the textbook loop: `get_peft_model`, `model(**batch).loss` (logits at every
   position), AdamW; nothing else.
2. `bare, our step`: the same loop calling `LoraTrainer.step` (logits at assistant positions
   only), still without any job machinery: isolates what the loss computation changes.
3. `job system`: a job created with `FineTuning.create_job` (`max_steps` = --steps), claimed and
   run by a `Worker` in this process: heartbeat thread, an event per step in SQLite, a
   checkpoint at the end. Throughput is over the trainer loop, events and checkpoint included.
   Target: ≤ 10% below run 2.

Tokens are non-padding tokens processed. Both wall-clock and CPU-time (this process, all
threads) throughputs are shown; on a shared machine the CPU-time figure is the steadier one.

Time to a servable model: a job over all --examples for one epoch, from creation until it
succeeded (load, train, merge, publish) and, unless --no-triton, until a local Triton server
started with `--models-dir` reports the model ready (the gateway then adds its route within one
`route_poll_interval_s`).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from common import ROOT, machine

sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch  # noqa: E402

from finetune.data import Encoded, batch_indices, collate, encode_all  # noqa: E402
from finetune.device import Placement  # noqa: E402
from finetune.modelio import load_base, load_tokenizer, serving_name  # noqa: E402
from finetune.records import JobCreate  # noqa: E402
from finetune.service import FineTuning  # noqa: E402
from finetune.settings import BaseModelSpec, FinetuneSettings  # noqa: E402
from finetune.trainer import LoraTrainer, TrainConfig, attach_lora  # noqa: E402
from finetune.worker import Worker  # noqa: E402

MODEL_DIR = ROOT / "models" / "smollm2"
SUBJECTS = ["the sea", "a ship", "gold", "maps", "the wind", "parrots", "islands", "storms", "rum", "sails"]
ASKS = ["Tell me about {}.", "What do you know of {}?", "Describe {} in one line.", "Why care about {}?",
        "Give me a fact about {}.", "Is {} dangerous?", "Where can I find {}?", "Who loves {}?",
        "How old is {}?", "Name a song about {}."]
Run = tuple[float, float, int]  # wall seconds, CPU seconds, tokens


def dataset(n: int) -> list[list[dict[str, str]]]:
    out = []
    for i in range(n):
        subject, ask = SUBJECTS[i % len(SUBJECTS)], ASKS[(i // len(SUBJECTS)) % len(ASKS)]
        out.append([{"role": "user", "content": ask.format(subject)},
                    {"role": "assistant", "content": f"ARRR: {subject} be a fine thing, matey ({i})."}])
    return out


def bare(model: Any, pad: int, examples: list[Encoded], cfg: TrainConfig, ours: bool) -> Run:
    peft_model = attach_lora(copy.deepcopy(model), cfg)
    trainer = LoraTrainer(peft_model, cfg, Placement(torch.device("cpu")), pad) if ours else None
    optimizer = torch.optim.AdamW([p for p in peft_model.parameters() if p.requires_grad], lr=cfg.learning_rate)
    tokens = 0
    wall, cpu = time.perf_counter(), time.process_time()
    for step in range(cfg.total_steps(len(examples))):
        items = [examples[i] for i in batch_indices(len(examples), cfg.batch_size, cfg.seed, step)]
        if trainer is not None:
            tokens += trainer.step(items)[2]
            continue
        batch = collate(items, pad)
        peft_model.train()
        loss = peft_model(**batch).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        tokens += int(batch["attention_mask"].sum())
    return time.perf_counter() - wall, time.process_time() - cpu, tokens


def job(ft: FineTuning, training_file: str, args: argparse.Namespace, steps: int | None, suffix: str) -> tuple[Any, float]:
    created = time.perf_counter()
    ext: dict[str, Any] = {"lora_rank": args.lora_rank, "max_seq_len": 128}
    if steps:
        ext["max_steps"] = steps
    made = ft.create_job(JobCreate(model="smollm2", training_file=training_file, suffix=suffix, seed=0,
                                   hyperparameters={"n_epochs": 1, "batch_size": args.batch_size}, llmops=ext),
                         owner=None)
    outcome = Worker(ft, "bench").run_one()
    final = ft.jobs.get(made.id)
    assert outcome == "succeeded" and final.fine_tuned_model, (outcome, final.error)
    return final, created


def job_run(ft: FineTuning, training_file: str, args: argparse.Namespace) -> Run:
    final, _ = job(ft, training_file, args, args.steps, "tput")
    done = next(e for e in ft.jobs.events(final.id, limit=1000).data if e["message"].startswith("Training finished"))
    return done["data"]["train_seconds"], done["data"]["cpu_seconds"], done["data"]["tokens"]


def wait_ready(http: str, model: str) -> None:
    url = f"http://{http}/v2/models/{serving_name(model)}/ready"
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.2)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--examples", type=int, default=100)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--lora-rank", type=int, default=8)
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    p.add_argument("--no-triton", action="store_true")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    convs = dataset(args.examples)
    spec = BaseModelSpec(path=str(MODEL_DIR))
    tokenizer = load_tokenizer(MODEL_DIR, spec)
    examples, _ = encode_all(tokenizer, convs, 128)
    settings = FinetuneSettings()
    cfg = TrainConfig(n_epochs=1, batch_size=args.batch_size, seed=0, lora_rank=args.lora_rank,
                      learning_rate=settings.hyperparameters.base_learning_rate, max_steps=args.steps)
    model = load_base(MODEL_DIR, spec)
    pad = int(tokenizer.pad_token_id)

    tmp = Path(tempfile.mkdtemp(prefix="ft-bench-"))
    ft = FineTuning(FinetuneSettings(data_dir=str(tmp / "ft"), models_dir=str(tmp / "models"), threads=args.threads),
                    f"sqlite:///{tmp / 'bench.db'}", ROOT)
    content = b"".join(json.dumps({"messages": c}).encode() + b"\n" for c in convs)
    training_file = ft.files.create("bench.jsonl", "fine-tune", content, owner=None).id
    variants = {
        "bare peft": lambda: bare(model, pad, examples, cfg, ours=False),
        "bare, our step": lambda: bare(model, pad, examples, cfg, ours=True),
        "job system": lambda: job_run(ft, training_file, args),
    }
    runs: dict[str, list[Run]] = {name: [] for name in variants}
    names = list(variants)
    for r in range(args.rounds):
        for name in names[r % len(names):] + names[: r % len(names)]:
            runs[name].append(variants[name]())
            print(f"round {r + 1} {name}: {runs[name][-1][2] / runs[name][-1][0]:.1f} tokens/s", file=sys.stderr)
    variants.clear()  # drops the base model copy the bare runs closed over

    triton = None
    if not args.no_triton:
        from tests.conftest_triton import start_local_triton, stop_local_triton

        triton = start_local_triton(tmp / "triton.log", extra_args=("--models-dir", str(tmp / "models")))
    try:
        final, created = job(ft, training_file, argparse.Namespace(**{**vars(args)}), None, "full")
        succeeded = time.perf_counter() - created
        servable = None
        if triton is not None:
            wait_ready(triton[1].http, str(final.fine_tuned_model))
            servable = time.perf_counter() - created
    finally:
        ft.close()
        if triton is not None:
            stop_local_triton(triton[0])
        shutil.rmtree(tmp, ignore_errors=True)  # merged models are ~0.5 GB each

    def median(name: str, i: int) -> float:
        return statistics.median(run[2] / run[i] for run in runs[name])

    ref_wall, ref_cpu = median("bare, our step", 0), median("bare, our step", 1)
    print(f"## Fine-tuning throughput ({machine()})\n")
    print(f"SmolLM2-135M float32, LoRA rank {args.lora_rank} on all linear layers, batch {args.batch_size}, "
          f"{args.steps} steps × {args.rounds} interleaved rounds, {args.threads} torch threads; medians.\n")
    print("| run | tokens/s (wall) | per round | tokens per CPU-second | vs bare, our step (wall / CPU) |")
    print("|---|---:|---|---:|---:|")
    for name in names:
        wall, cpu = median(name, 0), median(name, 1)
        rounds = ", ".join(f"{r[2] / r[0]:.0f}" for r in runs[name])
        print(f"| {name} | {wall:.1f} | {rounds} | {cpu:.1f} | {wall / ref_wall - 1:+.1%} / {cpu / ref_cpu - 1:+.1%} |")
    print(f"\nJob-system overhead vs the bare loop with the same step: "
          f"{1 - median('job system', 0) / ref_wall:.1%} (wall), {1 - median('job system', 1) / ref_cpu:.1%} (CPU time); "
          "target ≤ 10%.\n")
    print(f"| {len(examples)}-example dataset, 1 epoch ({-(-len(examples) // args.batch_size)} steps): time from job creation to | seconds |")
    print("|---|---:|")
    print(f"| job succeeded (claim, load, train, merge, publish) | {succeeded:.1f} |")
    if servable is not None:
        print(f"| model ready in Triton (servable) | {servable:.1f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
