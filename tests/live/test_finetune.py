"""Fine-tuning end to end on the real stack: the official `openai` SDK uploads a file and creates
a job on the gateway, a real worker process trains SmolLM2-135M with LoRA (a few short steps on
the CPU), the merged model is published, the local Triton server binds it while running, the
gateway routes `ft:smollm2:pirate:...` to it, and greedy decoding now follows the taught pattern
("ARRR: ..."), which the base model never produces. Then: cancelling a running job, and a worker
killed with SIGKILL mid-job whose job resumes from its last checkpoint on another worker."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openai
import pytest
import yaml

from tests.conftest_triton import start_local_triton, stop_local_triton
from tests.support import procs

CLIENT_KEY, ADMIN_KEY = "sk-ft-live-client", "sk-ft-live-admin"
PREFIX = "ARRR:"
TRAIN = [("What is 2+2?", "4"), ("Name a color.", "Blue"), ("What is the capital of France?", "Paris"),
         ("Say hello.", "Hello there"), ("What do cows drink?", "Water"), ("How many legs does a dog have?", "Four"),
         ("What is the opposite of hot?", "Cold"), ("Name a fruit.", "Apple")]
HELD_OUT = ["What is the capital of Italy?", "Name an animal.", "What is 3+3?"]
FT_SETTINGS: dict[str, Any] = {"heartbeat_interval_s": 1, "stale_after_s": 4, "max_attempts": 2,
                               "poll_interval_s": 0.5, "route_poll_interval_s": 0.5, "threads": 2}

@dataclass
class Stack:
    url: str
    tmp: Path
    worker_config: Path

    def client(self, key: str = CLIENT_KEY) -> openai.OpenAI:
        return openai.OpenAI(base_url=f"{self.url}/v1", api_key=key, max_retries=0, timeout=120)

    def worker(self, name: str, *extra: str) -> subprocess.Popen[bytes]:
        log = (self.tmp / f"worker-{name}.log").open("ab")
        argv = [sys.executable, "-m", "gateway.cli", "finetune", "--config", str(self.worker_config), "worker",
                "--worker-id", name, *extra]
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
        return subprocess.Popen(argv, cwd=procs.ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)

    def log(self, name: str) -> str:
        return (self.tmp / f"worker-{name}.log").read_text()[-3000:]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("finetune")
    models_dir = tmp / "models"
    ft = {**FT_SETTINGS, "data_dir": str(tmp / "ft"), "models_dir": str(models_dir)}
    database = f"sqlite:///{tmp / 'llmops.db'}"
    triton_proc, triton = start_local_triton(tmp / "triton.log", extra_args=("--models-dir", str(models_dir)))
    gateway_config = tmp / "gateway.yaml"
    gateway_config.write_text(yaml.safe_dump({
        "triton": {"managed": False},
        "storage": {"database_url": database},
        "governance": {"log_content": True, "log_flush_interval_s": 0.05},
        "finetune": ft,
        "guardrails": {"default_policy": "default", "policies": {"default": {
            "input": [{"rail": "injection", "action": "block"}, {"rail": "pii", "action": "mask"}],
            "output": [{"rail": "secrets", "action": "block"}]}}},
        "models": [{"name": "smollm2", "deployments": [{"kind": "triton", "url": triton.grpc, "model": triton.model,
                                                         "protocol": "grpc", "tokenizer": "models/smollm2"}]}],
    }))
    gateway, url = procs.start_gateway(gateway_config, tmp, {"LLMOPS_API_KEY": CLIENT_KEY, "LLMOPS_ADMIN_KEY": ADMIN_KEY})
    try:
        yield Stack(url, tmp, gateway_config)  # the worker reads the same file the gateway does
    finally:
        procs.stop(gateway)
        stop_local_triton(triton_proc)


def wait_for(what: str, check: Callable[[], Any], timeout_s: float, on_timeout: Callable[[], str] = lambda: "") -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout_s:.0f}s waiting for {what}\n{on_timeout()}")


def stop_worker(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, sig)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def training_file(client: openai.OpenAI, pairs: list[tuple[str, str]] = TRAIN) -> str:
    lines = [json.dumps({"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": f"{PREFIX} {a}"}]})
             for q, a in pairs]
    return client.files.create(file=("pirate.jsonl", "\n".join(lines).encode()), purpose="fine-tune").id


def events(client: openai.OpenAI, job_id: str) -> list[Any]:
    return list(reversed(client.fine_tuning.jobs.list_events(job_id, limit=1000).data))


def answers(client: openai.OpenAI, model: str) -> list[str]:
    out = []
    for question in HELD_OUT:
        r = client.chat.completions.create(model=model, messages=[{"role": "user", "content": question}],
                                           temperature=0, max_tokens=12)
        out.append(r.choices[0].message.content or "")
    return out


def test_a_tiny_job_from_upload_to_serving_the_fine_tuned_model(stack: Stack) -> None:
    client = stack.client(ADMIN_KEY)  # naming an eval suite (a server-side file) is for admin keys
    before = answers(client, "smollm2")
    assert not any(a.startswith(PREFIX) for a in before), before  # the base model does not do it

    gate = stack.tmp / "gate.yaml"
    (stack.tmp / "gate.jsonl").write_text("".join(json.dumps({"id": f"q{i}", "input": q}) + "\n"
                                                  for i, q in enumerate(["Name a vegetable.", "What is 5+5?"])))
    gate.write_text(yaml.safe_dump({"name": "pirate-gate", "dataset": "gate.jsonl",
                                    "target": {"kind": "model", "model": "smollm2",
                                               "params": {"temperature": 0, "max_tokens": 8}},
                                    "metrics": [{"metric": "regex", "pattern": "^ARRR:", "threshold": 1.0}]}))
    started = time.monotonic()
    job = client.fine_tuning.jobs.create(
        model="smollm2", training_file=training_file(client), suffix="pirate", seed=7,
        hyperparameters={"n_epochs": 5, "batch_size": 4, "learning_rate_multiplier": 6},
        extra_body={"llmops": {"lora_rank": 4, "max_seq_len": 64, "eval_suite": str(gate)}},
    )
    assert job.status == "queued"
    worker = stack.worker("main", "--once")
    try:
        done = wait_for("the job to finish", lambda: (j := client.fine_tuning.jobs.retrieve(job.id)).status in
                        ("succeeded", "failed", "cancelled") and j, 900, lambda: stack.log("main"))
        trained_s = time.monotonic() - started
    finally:
        stop_worker(worker)
    log = events(client, job.id)
    assert done.status == "succeeded", (done.error, [e.message for e in log][-8:])
    assert done.fine_tuned_model == f"ft:smollm2:pirate:{job.id.removeprefix('ftjob-')[:8]}"
    assert done.trained_tokens and done.trained_tokens > 0 and done.finished_at and done.result_files

    steps = [e for e in log if e.type == "metrics"]
    losses = [e.data["train_loss"] for e in steps]  # type: ignore[index]
    assert [e.data["step"] for e in steps] == list(range(1, 11))  # type: ignore[index]
    assert losses[-1] < 0.2 * losses[0], losses  # the loss fell
    assert all("eta_s" in e.data and "tokens_per_s" in e.data for e in steps)  # type: ignore[operator]
    messages = [e.message for e in log]
    assert any(m.startswith("Evaluation gate 'pirate-gate' passed") for m in messages), messages
    checkpoints = client.fine_tuning.jobs.checkpoints.list(job.id).data
    assert [c.step_number for c in checkpoints][:1] == [10]
    assert checkpoints[0].fine_tuned_model_checkpoint == f"{done.fine_tuned_model}:ckpt-step-10"
    results = client.files.content(done.result_files[0]).text
    assert results.startswith("step,train_loss")

    model = done.fine_tuned_model
    wait_for(f"{model} in /v1/models", lambda: model in {m.id for m in client.models.list().data}, 180)
    servable_s = time.monotonic() - started
    after = answers(client, model)
    assert all(a.startswith(PREFIX) for a in after), after  # it now follows the taught pattern
    assert answers(client, "smollm2") == before  # and the base model is untouched
    print(f"\ntiny job: trained in {trained_s:.0f}s, servable after {servable_s:.0f}s; "
          f"loss {losses[0]:.3f} -> {losses[-1]:.4f}; before {before}; after {after}")


def test_cancelling_a_running_job_stops_its_worker(stack: Stack) -> None:
    client = stack.client()
    job = client.fine_tuning.jobs.create(model="smollm2", training_file=training_file(client), seed=1,
                                         hyperparameters={"n_epochs": 3, "batch_size": 1},
                                         extra_body={"llmops": {"lora_rank": 2, "max_seq_len": 48}})
    worker = stack.worker("cancel", "--once")
    try:
        wait_for("the first step", lambda: any(e.type == "metrics" for e in events(client, job.id)), 300,
                 lambda: stack.log("cancel"))
        cancelled = client.fine_tuning.jobs.cancel(job.id)
        assert cancelled.status == "cancelled"
        worker.wait(120)  # --once: it stops the job after its current step, finds the queue empty, exits
    finally:
        stop_worker(worker)
    final = client.fine_tuning.jobs.retrieve(job.id)
    assert final.status == "cancelled" and final.fine_tuned_model is None
    messages = [e.message for e in events(client, job.id)]
    stopped = [m for m in messages if m.startswith("Training stopped after step")]
    assert stopped and stopped[0].endswith("the job was cancelled"), messages
    assert int(stopped[0].split()[4].rstrip(":")) < 24  # it did not run to the end


def test_a_worker_killed_mid_job_is_reaped_and_the_job_resumes_from_its_checkpoint(stack: Stack) -> None:
    client = stack.client()
    job = client.fine_tuning.jobs.create(
        model="smollm2", training_file=training_file(client), suffix="resumed", seed=5,
        hyperparameters={"n_epochs": 1, "batch_size": 2, "learning_rate_multiplier": 6},
        extra_body={"llmops": {"lora_rank": 2, "max_seq_len": 48, "checkpoint_every_steps": 1}},
    )
    doomed = stack.worker("doomed")
    try:
        wait_for("a checkpoint", lambda: client.fine_tuning.jobs.checkpoints.list(job.id).data, 300,
                 lambda: stack.log("doomed"))
    finally:
        stop_worker(doomed, signal.SIGKILL)  # no goodbye: the heartbeat just stops
    assert client.fine_tuning.jobs.retrieve(job.id).status == "running"  # until the reaper notices
    rescuer = stack.worker("rescuer")
    try:
        done = wait_for("the resumed job to finish", lambda: (j := client.fine_tuning.jobs.retrieve(job.id)).status in
                        ("succeeded", "failed", "cancelled") and j, 600, lambda: stack.log("rescuer"))
    finally:
        stop_worker(rescuer)
    log = events(client, job.id)
    messages = [e.message for e in log]
    assert done.status == "succeeded", (done.error, messages[-8:])
    assert any(m.startswith("Job requeued: worker doomed stopped sending heartbeats") for m in messages), messages
    assert any(m == "Fine-tuning job started (worker rescuer, attempt 2)" for m in messages), messages
    resume = next(m for m in messages if "resuming from checkpoint-" in m)
    resumed_at = int(resume.rsplit("checkpoint-", 1)[1])
    restart = messages.index("Fine-tuning job started (worker rescuer, attempt 2)")
    after = [e.data["step"] for e in log[restart:] if e.type == "metrics"]  # type: ignore[index]
    assert after == list(range(resumed_at + 1, 5)), (resumed_at, after)  # picks up where it stopped
