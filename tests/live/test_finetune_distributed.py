"""The multi-process path: a worker with LLMOPS_FINETUNE_NPROC=2 runs the job under torchrun,
two real training processes on this CPU (gloo backend), gradients all-reduced by DDP. The same
code takes NCCL on GPUs (`torchrun --nproc-per-node N`); no GPU is faked here."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

from finetune.modelio import serving_name
from finetune.records import JobCreate
from finetune.service import FineTuning
from finetune.settings import FinetuneSettings
from tests.support.procs import ROOT


def test_a_job_trains_on_two_processes_under_torchrun(tmp_path: Path) -> None:
    ft_settings = {"data_dir": str(tmp_path / "ft"), "models_dir": str(tmp_path / "models"),
                   "heartbeat_interval_s": 1, "threads": 1}
    database = f"sqlite:///{tmp_path / 'llmops.db'}"
    config = tmp_path / "worker.yaml"
    config.write_text(yaml.safe_dump({"storage": {"database_url": database}, "finetune": ft_settings}))
    ft = FineTuning(FinetuneSettings(**ft_settings), database, ROOT)
    try:
        lines = [json.dumps({"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": f"ARRR: {a}"}]})
                 for q, a in (("2+2?", "4"), ("A color?", "Blue"), ("Hello?", "Hello"), ("A fruit?", "Apple"))]
        f = ft.files.create("d.jsonl", "fine-tune", "\n".join(lines).encode(), owner=None)
        job = ft.create_job(JobCreate(model="smollm2", training_file=f.id, seed=3,
                                      hyperparameters={"n_epochs": 1, "batch_size": 2},
                                      llmops={"lora_rank": 2, "max_seq_len": 48}), owner=None)
        env = {**os.environ, "LLMOPS_FINETUNE_NPROC": "2", "OMP_NUM_THREADS": "1",
               "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
        proc = subprocess.run([sys.executable, "-m", "finetune.cli", "--config", str(config), "worker", "--once",
                               "--worker-id", "ddp"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr[-3000:]
        done = ft.jobs.get(job.id)
        assert done.status == "succeeded", (done.error, proc.stderr[-3000:])
        messages = [e["message"] for e in reversed(ft.jobs.events(job.id, limit=100).data)]
        assert any(m.startswith("Training smollm2 with LoRA (rank 2) on 4 examples, 2 steps on cpu x2")
                   for m in messages), messages
        assert sum(m.startswith("Step ") for m in messages) == 2  # rank 0 alone reports
        assert done.fine_tuned_model is not None
        assert (tmp_path / "models" / serving_name(done.fine_tuned_model) / "config.json").exists()
    finally:
        ft.close()
