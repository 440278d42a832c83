"""`llmops finetune`: jobs, the worker and the dataset builder from the command line.

    llmops finetune create --file data.jsonl [--model smollm2] [--suffix S] [--epochs N] [--batch-size N]
                           [--lr-multiplier X] [--lora-rank R] [--seed N] [--max-steps N] [--eval-suite FILE]
    llmops finetune create --method guardrail_detector --file labelled.jsonl
    llmops finetune list | show JOB | cancel JOB | events JOB [--follow] | checkpoints JOB
    llmops finetune worker [--once] [--worker-id ID]
    llmops finetune build-dataset [--model M] [--prompt NAME[@V]] [--min-score X] [--since T] [--until T]
                                  [--require-feedback] [--limit N] (--out FILE | --upload)

It works on the database directly (`storage.database_url` of --config, or LLMOPS_FINETUNE_DB),
like `llmops prompts`. Wire into the main CLI with `add_subparser(subparsers)`;
`python -m finetune.cli ...` works stand-alone.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from finetune import config
from finetune.errors import FinetuneError, InvalidFile
from finetune.records import FINISHED, JobCreate
from finetune.service import FineTuning


def _open(args: argparse.Namespace) -> FineTuning:
    settings, url = config.load(args.config)
    return FineTuning(settings, url, config.ROOT)


def _print(obj: Any) -> None:
    print(json.dumps(obj, indent=2, default=str))


def cmd_create(ft: FineTuning, a: argparse.Namespace) -> int:
    training = a.training_file
    if a.file is not None:
        uploaded = ft.files.create(a.file.name, "fine-tune", a.file.read_bytes(), owner=None)
        print(f"uploaded {a.file} as {uploaded.id}", file=sys.stderr)
        training = uploaded.id
    if training is None:
        print("llmops finetune create: give --file or --training-file", file=sys.stderr)
        return 2
    hp = {k: v for k, v in (("n_epochs", a.epochs), ("batch_size", a.batch_size),
                            ("learning_rate_multiplier", a.lr_multiplier)) if v is not None}
    ext = {k: v for k, v in (("lora_rank", a.lora_rank), ("max_steps", a.max_steps), ("eval_suite", a.eval_suite),
                             ("max_seq_len", a.max_seq_len)) if v is not None}
    body: dict[str, Any] = {"model": a.model, "training_file": training, "suffix": a.suffix, "seed": a.seed,
                            "hyperparameters": hp, "llmops": ext}
    if a.method:
        body["method"] = {"type": a.method}
        if a.method == "guardrail_detector" and a.model == "smollm2":
            body["model"] = "guardrail-injection"
    job = ft.create_job(JobCreate.model_validate(body), owner=None)
    _print(job.model_dump())
    return 0


def cmd_list(ft: FineTuning, a: argparse.Namespace) -> int:
    for job in ft.jobs.list(owner=None, limit=a.limit).data:
        print(f"{job['id']}  {job['status']:<10} {job['model']:<20} {job['fine_tuned_model'] or '-'}")
    return 0


def cmd_show(ft: FineTuning, a: argparse.Namespace) -> int:
    _print(ft.jobs.get(a.job).model_dump())
    return 0


def cmd_cancel(ft: FineTuning, a: argparse.Namespace) -> int:
    print(ft.jobs.cancel(a.job).status)
    return 0


def cmd_events(ft: FineTuning, a: argparse.Namespace) -> int:
    shown: set[str] = set()
    while True:
        events = list(reversed(ft.jobs.events(a.job, limit=1000).data))
        for e in events:
            if e["id"] not in shown:
                shown.add(e["id"])
                stamp = datetime.fromtimestamp(e["created_at"]).strftime("%H:%M:%S")
                print(f"{stamp} {e['level']:<5} {e['message']}", flush=True)
        if not a.follow or ft.jobs.get(a.job).status in FINISHED:
            return 0
        time.sleep(1.0)


def cmd_checkpoints(ft: FineTuning, a: argparse.Namespace) -> int:
    for c in ft.jobs.checkpoints(a.job, limit=100).data:
        print(f"step {c['step_number']:>5}  loss {c['metrics'].get('train_loss', float('nan')):.4f}  "
              f"{c['fine_tuned_model_checkpoint']}")
    return 0


def cmd_worker(ft: FineTuning, a: argparse.Namespace) -> int:
    from finetune.worker import Worker

    worker = Worker(ft, a.worker_id, config=a.config)
    worker.install_signal_handlers()
    print(f"llmops finetune worker {worker.id}: waiting for jobs", file=sys.stderr, flush=True)
    return worker.run(once=a.once)


def cmd_build_dataset(ft: FineTuning, a: argparse.Namespace) -> int:
    from finetune.flywheel import DatasetFilter, build_dataset

    name, _, version = (a.prompt or "").partition("@")
    f = DatasetFilter(model=a.model, prompt_name=name or None, prompt_version=int(version) if version else None,
                      min_score=a.min_score, require_feedback=a.require_feedback, since=a.since, until=a.until,
                      limit=a.limit)
    report = build_dataset(ft.engine, ft.feedback, f)
    print(json.dumps(report.stats()), file=sys.stderr)
    if a.out is not None:
        a.out.write_bytes(report.jsonl())
        print(f"wrote {len(report.examples)} examples to {a.out}", file=sys.stderr)
    if a.upload:
        if not report.examples:
            print("llmops finetune build-dataset: nothing to upload", file=sys.stderr)
            return 1
        uploaded = ft.files.create(a.filename, "fine-tune", report.jsonl(), owner=None)
        print(uploaded.id)
    return 0


def _configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", type=Path, default=None, help="gateway YAML (default configs/gateway.yaml)")
    sub = p.add_subparsers(dest="ft_command", required=True)
    c = sub.add_parser("create", help="create a fine-tuning job")
    c.add_argument("--file", type=Path, help="JSONL to upload as the training file")
    c.add_argument("--training-file", help="an uploaded file id")
    c.add_argument("--model", default="smollm2")
    c.add_argument("--method", choices=["supervised", "guardrail_detector"])
    c.add_argument("--suffix")
    c.add_argument("--epochs", type=int)
    c.add_argument("--batch-size", type=int)
    c.add_argument("--lr-multiplier", type=float)
    c.add_argument("--lora-rank", type=int)
    c.add_argument("--max-steps", type=int)
    c.add_argument("--max-seq-len", type=int)
    c.add_argument("--eval-suite")
    c.add_argument("--seed", type=int)
    c.set_defaults(handler=cmd_create)
    ls = sub.add_parser("list", help="list jobs, newest first")
    ls.add_argument("--limit", type=int, default=20)
    ls.set_defaults(handler=cmd_list)
    for name, handler, what in (("show", cmd_show, "a job as JSON"), ("cancel", cmd_cancel, "cancel a job"),
                                ("checkpoints", cmd_checkpoints, "a job's checkpoints")):
        s = sub.add_parser(name, help=what)
        s.add_argument("job")
        s.set_defaults(handler=handler)
    ev = sub.add_parser("events", help="a job's events, oldest first")
    ev.add_argument("job")
    ev.add_argument("--follow", "-f", action="store_true", help="keep printing until the job finishes")
    ev.set_defaults(handler=cmd_events)
    w = sub.add_parser("worker", help="run a training worker")
    w.add_argument("--once", action="store_true", help="exit when the queue is empty")
    w.add_argument("--worker-id", default=None)
    w.set_defaults(handler=cmd_worker)
    b = sub.add_parser("build-dataset", help="logged traffic + feedback → a training file")
    b.add_argument("--model")
    b.add_argument("--prompt", help="NAME or NAME@VERSION")
    b.add_argument("--min-score", type=float)
    b.add_argument("--require-feedback", action="store_true")
    b.add_argument("--since", type=datetime.fromisoformat)
    b.add_argument("--until", type=datetime.fromisoformat)
    b.add_argument("--limit", type=int)
    b.add_argument("--out", type=Path)
    b.add_argument("--upload", action="store_true", help="store it as a fine-tune file and print its id")
    b.add_argument("--filename", default="flywheel.jsonl")
    b.set_defaults(handler=cmd_build_dataset)


def run(args: argparse.Namespace) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    try:
        ft = _open(args)
    except Exception as err:  # a bad config or an unreachable database: say which
        print(f"llmops finetune: {err}", file=sys.stderr)
        return 2
    try:
        return int(args.handler(ft, args))
    except InvalidFile as err:
        print(f"llmops finetune: {err.message}", file=sys.stderr)
        for e in err.errors:
            print(f"  {e}", file=sys.stderr)
        return 1
    except FinetuneError as err:
        print(f"llmops finetune: {err.message}", file=sys.stderr)
        return 1
    finally:
        ft.close()


def add_subparser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser("finetune", help="fine-tuning jobs, the training worker, the data flywheel")
    _configure(p)
    p.set_defaults(func=run)
    return p


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    parser = argparse.ArgumentParser(prog="llmops finetune", description=__doc__.splitlines()[0])
    _configure(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
