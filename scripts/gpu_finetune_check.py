"""Helper of scripts/gpu_finetune_check.sh: one LoRA job through our own fine-tuning code, four ways.

    python scripts/gpu_finetune_check.py prepare  --work DIR   # env check, tiny model, data, config, uploads
    python scripts/gpu_finetune_check.py run MODE --work DIR   # MODE: single | torchrun | ddp | oversub
    python scripts/gpu_finetune_check.py report   --work DIR --out DIR

Modes (each queues one job in the same SQLite database and runs it to the end):

- single:   `finetune.worker.Worker.run_one()` in this process (what `llmops finetune worker` does):
            claim → heartbeat → placement() → run_supervised (data, LoRA trainer, checkpoints, merge,
            publish, register). Afterwards the newest checkpoint is loaded back on the same device
            (`LoraTrainer.load_checkpoint`) and the published folder is loaded and run.
- torchrun: the worker's multi-process path, `finetune.runner.run_under_torchrun(nproc=1)`: torchrun
            starts `-m finetune.distributed` unmodified. With one process WORLD_SIZE is 1, so our code
            joins no process group (no NCCL, no DDP): this checks the launcher, env and DB hand-off.
- ddp:      the same launcher, but the child is `gpu_finetune_check.py ddp-child`, which forces the
            distributed branch at world size 1: init_process_group (NCCL on CUDA, gloo on CPU),
            DistributedDataParallel(device_ids=[i]) and the all-reduces in LoraTrainer, then calls
            `finetune.distributed.main` itself. One GPU cannot host two NCCL ranks, so this is the
            closest a one-GPU machine gets to `LLMOPS_FINETUNE_NPROC=N`.
- oversub:  `Worker.run_one()` with `LLMOPS_FINETUNE_NPROC` one above the GPU count: the worker must
            start one process per GPU (on one GPU: train in-process on cuda:0), not two NCCL ranks on
            one card. On a CPU machine it asks for 2 and must get 2 gloo processes through torchrun.

The base model is a random-initialised Llama (SmolLM2's family, 4 layers, hidden 256) built here
from a config with the SmolLM2 tokenizer, so no weights travel; the data is generated here too.
"""

from __future__ import annotations

import argparse
import atexit
import importlib
import json
import logging
import math
import os
import platform
import shutil
import signal
import subprocess
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

BASE_NAME = "smollm2-tiny"
MODES = ("single", "torchrun", "ddp", "oversub")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja")
TOKENIZER_DIRS = (ROOT / ".gpucheck" / "tokenizer", ROOT / "models" / "smollm2")
# import name → what to install (wheel in .whl/ for the ones the GPU image lacks)
MODULES = {
    "torch": "torch", "transformers": "transformers", "peft": "peft", "accelerate": "accelerate",
    "safetensors": "safetensors", "tokenizers": "tokenizers", "numpy": "numpy", "yaml": "pyyaml",
    "jinja2": "jinja2", "typing_extensions": "typing-extensions", "pydantic": "pydantic",
    "pydantic_core": "pydantic-core", "pydantic_settings": "pydantic-settings", "dotenv": "python-dotenv",
    "annotated_types": "annotated-types", "typing_inspection": "typing-inspection", "sqlalchemy": "sqlalchemy",
    "orjson": "orjson",
}
OUR_MODULES = ("finetune.worker", "finetune.distributed", "finetune.runner", "finetune.cli", "finetune.supervised")
N_TRAIN, N_VALID = 48, 8
HYPER = {"n_epochs": 3, "batch_size": 8, "learning_rate_multiplier": 4}
EXT = {"lora_rank": 8, "max_seq_len": 128}

log = logging.getLogger("gpucheck")


def _say(msg: str) -> None:
    print(f"[gpucheck {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def _write_json(path: Path, obj: Any) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2, default=str) + "\n")
    tmp.rename(path)


def _read_json(path: Path) -> Any:
    return json.loads(path.read_text()) if path.exists() else None


def _version(dist: str) -> str:
    from importlib import metadata

    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "?"


# ------------------------------------------------------------------------------------------ prepare
def _check_modules() -> tuple[dict[str, str], list[str]]:
    found, missing = {}, []
    for mod, dist in MODULES.items():
        try:
            m = importlib.import_module(mod)
            found[mod] = str(getattr(m, "__version__", None) or _version(dist))
        except Exception as exc:  # noqa: BLE001 - report any reason a module does not import
            missing.append(f"{mod} (pip: {dist}; {type(exc).__name__}: {exc})")
    return found, missing


def _accelerator() -> dict[str, Any]:
    import torch
    import torch.distributed as dist

    info: dict[str, Any] = {"cuda": torch.cuda.is_available(), "torch_cuda": torch.version.cuda,
                            "nccl_available": dist.is_available() and dist.is_nccl_available(),
                            "gloo_available": dist.is_available() and dist.is_gloo_available()}
    if info["cuda"]:
        info.update(device_name=torch.cuda.get_device_name(0), device_count=torch.cuda.device_count(),
                    capability=".".join(map(str, torch.cuda.get_device_capability(0))),
                    bf16_supported=torch.cuda.is_bf16_supported())
        try:
            info["nccl_version"] = ".".join(map(str, torch.cuda.nccl.version()))
        except Exception as exc:  # noqa: BLE001
            info["nccl_version"] = f"? ({exc})"
    else:
        info["device_name"] = f"CPU ({platform.processor() or platform.machine()}, {os.cpu_count()} cores)"
    return info


def _tokenizer_source() -> Path | None:
    for d in TOKENIZER_DIRS:
        if all((d / f).is_file() for f in TOKENIZER_FILES):
            return d
    return None


def _examples(n: int, offset: int) -> list[str]:
    lines = []
    for i in range(offset, offset + n):
        a, b = 3 + i % 17, 5 + (7 * i) % 23
        lines.append(json.dumps({"messages": [
            {"role": "system", "content": "You are a pirate who answers sums."},
            {"role": "user", "content": f"What is {a} plus {b}?"},
            {"role": "assistant", "content": f"Arr, {a} plus {b} be {a + b}, matey!"},
        ]}))
    return lines


def cmd_prepare(work: Path) -> int:
    env: dict[str, Any] = {"python": sys.version.split()[0], "executable": sys.executable,
                           "platform": platform.platform()}
    found, missing = _check_modules()
    env["modules"] = found
    for mod, ver in found.items():
        _say(f"module {mod:<18} {ver}")
    if missing:
        env["missing"] = missing
        _write_json(work / "prepare.json", env)
        for m in missing:
            print(f"MISSING python module: {m}", flush=True)
        print("FAIL: the modules above do not import. Those the GPU image lacks travel as wheels in .whl/ "
              "(carry [\".whl\"]); see the header of scripts/gpu_finetune_check.sh.", flush=True)
        return 3
    for name in OUR_MODULES:
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001
            env["missing"] = [f"{name}: {traceback.format_exc(limit=3)}"]
            _write_json(work / "prepare.json", env)
            traceback.print_exc()
            print(f"FAIL: our module {name} does not import (see the traceback above for the missing piece).",
                  flush=True)
            return 3
    env["versions"] = {d: _version(d) for d in ("torch", "transformers", "peft", "accelerate", "safetensors",
                                                 "tokenizers", "pydantic", "sqlalchemy", "typing-extensions")}
    env["accelerator"] = acc = _accelerator()
    _say(f"accelerator: {json.dumps(acc)}")
    if not acc["cuda"]:
        _say("NOTICE: no CUDA device here; every mode falls back to CPU (ddp mode: gloo instead of NCCL). "
             "This run does NOT check the CUDA path.")

    src = _tokenizer_source()
    if src is None:
        env["missing"] = ["tokenizer files " + ", ".join(TOKENIZER_FILES) + " in "
                          + " or ".join(str(d) for d in TOKENIZER_DIRS)]
        _write_json(work / "prepare.json", env)
        print(f"FAIL: MISSING {env['missing'][0]}: pass carry [\".gpucheck\"] (run the script once where "
              "models/smollm2 exists to fill .gpucheck/tokenizer).", flush=True)
        return 3
    cache = ROOT / ".gpucheck" / "tokenizer"
    if src != cache:  # keep a copy in the ignored folder that travels to the GPU machine
        cache.mkdir(parents=True, exist_ok=True)
        for f in TOKENIZER_FILES:
            shutil.copy2(src / f, cache / f)

    t0 = time.perf_counter()
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    base = work / "base"
    base.mkdir(parents=True, exist_ok=True)
    for f in TOKENIZER_FILES:
        shutil.copy2(src / f, base / f)
    tok = AutoTokenizer.from_pretrained(str(base), local_files_only=True)
    config = LlamaConfig(vocab_size=len(tok), hidden_size=256, intermediate_size=640, num_hidden_layers=4,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=2048,
                         rms_norm_eps=1e-5, tie_word_embeddings=True,
                         bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                         pad_token_id=tok.pad_token_id)
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    model.save_pretrained(str(base), safe_serialization=True)
    env["base_model"] = {"path": str(base), "params": sum(p.numel() for p in model.parameters()),
                         "layers": 4, "hidden": 256, "vocab": len(tok), "tokenizer_from": str(src),
                         "build_s": round(time.perf_counter() - t0, 2)}
    _say(f"tiny base model: {env['base_model']}")
    del model

    (work / "train.jsonl").write_text("\n".join(_examples(N_TRAIN, 0)) + "\n")
    (work / "valid.jsonl").write_text("\n".join(_examples(N_VALID, 1000)) + "\n")
    import yaml

    ft_settings = {"data_dir": str(work / "ft"), "models_dir": str(work / "models"),
                   "base_models": {BASE_NAME: {"path": str(base)}},
                   "heartbeat_interval_s": 1.0, "stale_after_s": 3600.0, "poll_interval_s": 0.5}
    (work / "worker.yaml").write_text(yaml.safe_dump(
        {"storage": {"database_url": f"sqlite:///{work / 'llmops.db'}"}, "finetune": ft_settings}))

    ft = _open(work)
    try:
        train = ft.files.create("gpucheck-train.jsonl", "fine-tune", (work / "train.jsonl").read_bytes(), owner=None)
        valid = ft.files.create("gpucheck-valid.jsonl", "fine-tune", (work / "valid.jsonl").read_bytes(), owner=None)
    finally:
        ft.close()
    env["files"] = {"training_file": train.id, "validation_file": valid.id}
    _write_json(work / "prepare.json", env)
    _say(f"prepared {work} (files {train.id}, {valid.id})")
    return 0


def _open(work: Path) -> Any:
    from finetune import config
    from finetune.service import FineTuning

    settings, url = config.load(work / "worker.yaml")
    return FineTuning(settings, url, config.ROOT)


# ------------------------------------------------------------------------------------------ spies
def install_spy(rec: dict[str, Any]) -> None:
    """Record (read-only) what the trainer really ran with: device, autocast, DDP wrapping."""
    import torch

    from finetune import trainer

    orig_forward = trainer._AssistantLoss.forward
    orig_init = trainer.LoraTrainer.__init__

    def forward(self: Any, input_ids: Any, attention_mask: Any, labels: Any) -> Any:
        if "autocast" not in rec:
            dev = input_ids.device.type
            on = torch.is_autocast_enabled(dev)
            rec.update(input_device=str(input_ids.device), autocast=on,
                       autocast_dtype=str(torch.get_autocast_dtype(dev)).removeprefix("torch.") if on else None,
                       trainable_param_dtype=str(next(p for p in self.parameters() if p.requires_grad).dtype
                                                 ).removeprefix("torch."))
            lm = self.model.get_base_model()
            linear = next((m for n, m in lm.named_modules() if n.endswith("q_proj")), None)
            if linear is not None:
                def hook(_m: Any, _i: Any, out: Any) -> None:
                    rec.setdefault("q_proj_out_dtype", str(out.dtype).removeprefix("torch."))
                handle = linear.register_forward_hook(hook)
                try:
                    return orig_forward(self, input_ids, attention_mask, labels)
                finally:
                    handle.remove()
        return orig_forward(self, input_ids, attention_mask, labels)

    def init(self: Any, peft_model: Any, cfg: Any, where: Any, pad_id: int) -> None:
        orig_init(self, peft_model, cfg, where, pad_id)
        rec.update(placement=str(where.device), rank=where.rank, world_size=where.world_size,
                   distributed=where.distributed, loss_module=type(self.loss_module).__name__)
        ids = getattr(self.loss_module, "device_ids", None)
        if ids is not None:
            rec["ddp_device_ids"] = [str(i) for i in ids]

    trainer._AssistantLoss.forward = forward  # type: ignore[method-assign]
    trainer.LoraTrainer.__init__ = init  # type: ignore[method-assign]


def _gpu_mem(rec: dict[str, Any]) -> None:
    import torch

    if torch.cuda.is_available() and torch.cuda.is_initialized():
        rec["peak_gpu_mem_mib"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)


# ------------------------------------------------------------------------------------------ ddp-child
def cmd_ddp_child(argv: list[str]) -> int:
    """Under torchrun: finetune.distributed.main with the distributed branch forced at world size 1."""
    import torch
    import torch.distributed as dist

    from finetune import device as fdev
    from finetune import distributed as fdist

    rec: dict[str, Any] = {"pid": os.getpid(), "torchrun_env": {k: os.environ.get(k) for k in (
        "RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT", "TORCHELASTIC_RUN_ID")}}
    out = Path(os.environ["GPUCHECK_CHILD_JSON"])

    def dump() -> None:
        _gpu_mem(rec)
        _write_json(out, rec)

    atexit.register(dump)
    install_spy(rec)

    def forced_placement() -> Any:
        rank, world = int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))
        device = fdev.pick_device(int(os.environ.get("LOCAL_RANK", "0")))
        if device.type == "cuda":
            torch.cuda.set_device(device)
        if not dist.is_initialized():
            dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
        rec.update(backend=str(dist.get_backend()), pg_world_size=dist.get_world_size())
        probe = torch.ones(1, device=device)
        dist.all_reduce(probe)
        rec["probe_all_reduce"] = float(probe.item())
        return fdev.Placement(device, rank, world)

    # Placement.distributed is `world_size > 1`; here a joined process group counts as distributed.
    fdev.Placement.distributed = property(  # type: ignore[method-assign,assignment]
        lambda self: self.world_size > 1 or (dist.is_available() and dist.is_initialized()))
    fdist.placement = forced_placement  # type: ignore[attr-defined]
    try:
        rc = fdist.main(argv)
        rec["main_rc"] = rc
        return rc
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


# ------------------------------------------------------------------------------------------ run
def _create_job(ft: Any, env: dict[str, Any], mode: str) -> Any:
    from finetune.records import JobCreate

    return ft.create_job(JobCreate.model_validate({
        "model": BASE_NAME, "suffix": f"gpucheck-{mode}", "seed": 7, "hyperparameters": HYPER, "llmops": EXT,
        "training_file": env["files"]["training_file"], "validation_file": env["files"]["validation_file"]}),
        owner=None)


def _run_torchrun(ft: Any, work: Path, mode: str, worker_id: str, shutdown: threading.Event) -> str:
    """What Worker.run_one does with LLMOPS_FINETUNE_NPROC > 1, with nproc 1."""
    from finetune import runner
    from finetune.control import JobControl

    real_popen = subprocess.Popen

    def popen(argv: list[str], **kw: Any) -> Any:
        if mode == "ddp":
            i = argv.index("finetune.distributed")
            argv = [*argv[: i - 1], str(Path(__file__).resolve()), "ddp-child", *argv[i + 1:]]
            _say("torchrun command (child swapped for the forced-DDP wrapper): " + " ".join(argv))
        else:
            _say("torchrun command (as finetune.runner builds it): " + " ".join(argv))
        proc = real_popen(argv, **kw)
        # its own session: the shell script kills this group if the mode times out
        (work / f"{mode}.pgid").write_text(str(proc.pid))
        return proc

    class _Subprocess:
        Popen = staticmethod(popen)
        TimeoutExpired = subprocess.TimeoutExpired

    runner.subprocess = _Subprocess  # type: ignore[assignment]
    if mode == "ddp":
        os.environ["GPUCHECK_CHILD_JSON"] = str(work / f"{mode}.child.json")
    spec = ft.queue.claim(worker_id)
    if spec is None:
        raise RuntimeError("no queued job to claim")
    _say(f"claimed {spec.id}; starting torchrun --nproc-per-node=1 through finetune.runner.run_under_torchrun")
    with JobControl(ft.queue, spec.id, worker_id, ft.settings.heartbeat_interval_s, shutdown) as control:
        return runner.run_under_torchrun(spec, control, 1, worker_id, work / "worker.yaml",
                                         lambda: ft.queue.status(spec.id))


def _verify_checkpoint(ft: Any, spec_id: str, work: Path, rec: dict[str, Any]) -> None:
    """Load the newest checkpoint back on this process's device and evaluate the validation file."""
    from finetune.data import encode_all
    from finetune.device import placement
    from finetune.modelio import load_base, load_tokenizer
    from finetune.supervised import _conversations, train_config
    from finetune.trainer import LoraTrainer, attach_lora, checkpoint_dirs

    spec = ft.jobs.spec(spec_id)
    newest = next(iter(checkpoint_dirs(ft.job_dir(spec_id))), None)
    if newest is None:
        raise RuntimeError("no complete checkpoint folder left under the job folder")
    base = ft.settings.base_models[spec.model]
    folder = ft.settings.resolve(base.path, ft.root)
    tok = load_tokenizer(folder, base)
    valid, _ = encode_all(tok, _conversations(ft, spec.validation_file), spec.extensions.max_seq_len or 128)
    cfg = train_config(spec, ft)
    where = placement()
    t = LoraTrainer(attach_lora(load_base(folder, base), cfg), cfg, where, int(tok.pad_token_id))
    step, tokens = t.load_checkpoint(newest[1])
    loss, acc = t.evaluate(valid)
    rec["checkpoint_reload"] = {"step": step, "tokens": tokens, "device": str(where.device),
                                "valid_loss": round(loss, 4), "valid_acc": round(acc, 4)}


def _verify_published(path: str, rec: dict[str, Any]) -> None:
    """The published folder loads as a plain transformers model and runs on the device."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from finetune.device import pick_device

    folder = Path(path)
    files = sorted(p.name for p in folder.iterdir())
    needed = {"config.json", "model.safetensors", "llmops-model.json", "tokenizer.json"}
    if not needed <= set(files):
        raise RuntimeError(f"published folder {folder} lacks {sorted(needed - set(files))} (has {files})")
    device = pick_device()
    model: Any = AutoModelForCausalLM.from_pretrained(str(folder), dtype=torch.float32, local_files_only=True)
    model = model.to(device)
    if any("lora" in k for k in model.state_dict()):
        raise RuntimeError("the published model still holds LoRA weights (not merged)")
    tok = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    text = tok.apply_chat_template([{"role": "user", "content": "What is 4 plus 6?"}], tokenize=False,
                                   add_generation_prompt=True)
    ids = tok(text, return_tensors="pt", add_special_tokens=False).to(device)
    with torch.no_grad():
        out = model.generate(**ids, max_new_tokens=12, do_sample=False, pad_token_id=tok.pad_token_id)
    answer = tok.decode(out[0, ids["input_ids"].shape[1]:], skip_special_tokens=True)
    rec["published"] = {"path": str(folder), "files": files, "device": str(device), "greedy_answer": answer}


def _collect(ft: Any, job_id: str, rec: dict[str, Any]) -> None:
    job = ft.jobs.get(job_id)
    events = list(reversed(ft.jobs.events(job_id, limit=1000).data))
    rec["job"] = {"id": job.id, "status": job.status, "fine_tuned_model": job.fine_tuned_model,
                  "trained_tokens": job.trained_tokens, "error": job.error.model_dump() if job.error else None}
    steps = [e["data"] for e in events if e["type"] == "metrics" and e["data"]]
    rec["steps"] = len(steps)
    rec["total_steps"] = steps[-1]["total_steps"] if steps else None
    rec["first_loss"] = steps[0]["train_loss"] if steps else None
    rec["final_loss"] = steps[-1]["train_loss"] if steps else None
    later = [s["tokens_per_s"] for s in steps[1:]] or [s["tokens_per_s"] for s in steps]
    rec["median_step_tokens_per_s"] = sorted(later)[len(later) // 2] if later else None
    finished = next((e["data"] for e in events if e["message"].startswith("Training finished")), None) or {}
    rec["train_seconds"] = finished.get("train_seconds")
    if finished.get("train_seconds"):
        rec["tokens_per_s"] = finished["tokens"] / finished["train_seconds"]
    started = next((e["message"] for e in events if e["message"].startswith(f"Training {BASE_NAME}")), "")
    rec["training_message"] = started
    rec["trained_on"] = started.rsplit(" on ", 1)[-1] if " on " in started else None
    cps = ft.jobs.checkpoints(job_id, limit=100).data
    rec["checkpoints"] = [{"step": c["step_number"], "metrics": c["metrics"]} for c in reversed(cps)]
    registered = ft.models.get(job.fine_tuned_model) if job.fine_tuned_model else None
    rec["registered_path"] = registered.path if registered else None
    print("---- job events", flush=True)
    for e in events:
        print(f"{e['level']:<5} {e['message']}", flush=True)


def _judge(rec: dict[str, Any], mode: str) -> list[str]:
    problems = []
    job = rec.get("job") or {}
    if job.get("status") == "queued":
        problems.append(f"stopped early ({rec.get('outcome')}): the job went back to the queue")
    elif job.get("status") != "succeeded":
        err = job.get("error") or {}
        problems.append(f"job {job.get('status')}: {err.get('code')}: {err.get('message')}")
    if rec.get("total_steps") and rec.get("steps") != rec.get("total_steps"):
        problems.append(f"{rec.get('steps')} of {rec.get('total_steps')} steps reported")
    fl, ll = rec.get("first_loss"), rec.get("final_loss")
    if ll is None or not math.isfinite(ll):
        problems.append(f"final loss {ll}")
    elif fl is not None and not ll < fl:
        problems.append(f"loss did not fall ({fl:.4f} -> {ll:.4f})")
    expect_cuda = rec.get("cuda_expected")
    where = rec.get("trained_on") or ""
    if expect_cuda and "cuda" not in where:
        problems.append(f"trained on '{where}', not CUDA")
    spy = rec.get("child") if mode == "ddp" else rec.get("spy")
    if mode == "ddp":
        if not spy:
            problems.append("the forced-DDP child left no record")
        else:
            if spy.get("loss_module") != "DistributedDataParallel":
                problems.append(f"loss module {spy.get('loss_module')}, not DistributedDataParallel")
            want = "nccl" if expect_cuda else "gloo"
            if spy.get("backend") != want:
                problems.append(f"process group backend {spy.get('backend')}, expected {want}")
            if not where.endswith("x1"):
                problems.append(f"job did not report the distributed placement ('{where}')")
    if expect_cuda and spy and mode != "torchrun" and spy.get("autocast_dtype") != "bfloat16":
        problems.append(f"autocast {spy.get('autocast')} {spy.get('autocast_dtype')}, expected bfloat16 on CUDA")
    if mode == "oversub":
        want = rec.get("gpus") or rec.get("nproc_requested")
        if rec.get("worker_nproc") != want:
            problems.append(f"asked for {rec.get('nproc_requested')} processes with {rec.get('gpus')} GPU(s): "
                            f"the worker planned {rec.get('worker_nproc')}, expected {want}")
    if not rec.get("registered_path"):
        problems.append("no model registered")
    return problems


def cmd_run(work: Path, mode: str) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        stream=sys.stdout)
    env = _read_json(work / "prepare.json") or {}
    if "files" not in env:
        print("FAIL: prepare did not finish (no files in prepare.json)", flush=True)
        return 3
    import torch

    rec: dict[str, Any] = {"mode": mode, "cuda_expected": torch.cuda.is_available()}
    started = time.perf_counter()
    ft = _open(work)
    shutdown = threading.Event()

    def on_term(signum: int, _frame: Any) -> None:
        _say(f"{signal.Signals(signum).name}: stopping after the current step")
        shutdown.set()

    try:
        job = _create_job(ft, env, mode)
        rec["job_id"] = job.id
        _say(f"mode {mode}: queued {job.id}")
        if mode in ("single", "oversub"):
            from finetune.runner import NPROC_ENV
            from finetune.worker import Worker

            os.environ.pop(NPROC_ENV, None)
            if mode == "oversub":
                gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
                rec["gpus"], rec["nproc_requested"] = gpus, gpus + 1 if gpus else 2
                os.environ[NPROC_ENV] = str(rec["nproc_requested"])
            install_spy(rec.setdefault("spy", {}))
            worker = Worker(ft, f"gpucheck-{mode}", config=work / "worker.yaml")
            rec["worker_nproc"] = worker.nproc
            worker.install_signal_handlers()
            outcome = worker.run_one()
        else:
            signal.signal(signal.SIGTERM, on_term)
            signal.signal(signal.SIGINT, on_term)
            if mode == "ddp":
                os.environ.setdefault("NCCL_DEBUG", "INFO")
                os.environ.setdefault("NCCL_DEBUG_SUBSYS", "INIT")
            outcome = _run_torchrun(ft, work, mode, f"gpucheck-{mode}", shutdown)
            rec["child"] = _read_json(work / f"{mode}.child.json")
        rec["outcome"] = outcome
        _say(f"mode {mode}: outcome {outcome}")
        _collect(ft, job.id, rec)
        if "spy" in rec:
            _gpu_mem(rec["spy"])
        if rec["job"]["status"] == "succeeded":
            try:
                if mode == "single":
                    _verify_checkpoint(ft, job.id, work, rec)
                    _say(f"checkpoint reload: {rec['checkpoint_reload']}")
                _verify_published(rec["registered_path"], rec)
                _say(f"published model: {rec['published']}")
            except Exception as exc:  # noqa: BLE001
                traceback.print_exc()
                rec["verify_error"] = f"{type(exc).__name__}: {exc}"
    except Exception as exc:  # noqa: BLE001
        traceback.print_exc()
        rec["exception"] = f"{type(exc).__name__}: {exc}"
    finally:
        ft.close()
    rec["wall_s"] = round(time.perf_counter() - started, 1)
    problems = _judge(rec, mode)
    for key in ("exception", "verify_error"):
        if rec.get(key):
            problems.insert(0, rec[key])
    rec["problems"] = problems
    rec["passed"] = not problems
    _write_json(work / f"{mode}.result.json", rec)
    _say(f"mode {mode}: {'PASS' if not problems else 'FAIL: ' + '; '.join(problems)}")
    print(json.dumps(rec, indent=2, default=str), flush=True)
    return 0 if not problems else 1


# ------------------------------------------------------------------------------------------ report
def _fmt(v: Any, spec: str = "") -> str:
    if v is None:
        return "-"
    try:
        return format(v, spec)
    except (TypeError, ValueError):
        return str(v)


def cmd_report(work: Path, out: Path, require_cuda: bool, modes: tuple[str, ...] = MODES) -> int:
    env = _read_json(work / "prepare.json") or {}
    acc = env.get("accelerator") or {}
    vers = env.get("versions") or {}
    lines = []
    device = acc.get("device_name") or "?"
    if acc.get("cuda"):
        device += (f" (sm {acc.get('capability')}, {acc.get('device_count')} GPU, CUDA {acc.get('torch_cuda')}, "
                   f"NCCL {acc.get('nccl_version')}, bf16 {acc.get('bf16_supported')})")
    lines.append(f"device       : {device}")
    lines.append(f"python       : {env.get('python', '?')}  ({env.get('executable', '?')})")
    lines.append("versions     : " + ", ".join(f"{k} {v}" for k, v in vers.items()) if vers else "versions     : ?")
    bm = env.get("base_model") or {}
    if bm:
        lines.append(f"base model   : random Llama {bm.get('layers')}x{bm.get('hidden')}, vocab {bm.get('vocab')}, "
                     f"{bm.get('params', 0) / 1e6:.1f}M params; job: {N_TRAIN} train / {N_VALID} valid chats, "
                     f"{HYPER}, {EXT}")
    if env.get("missing"):
        lines.append("MISSING      : " + " | ".join(env["missing"]))
    if acc and not acc.get("cuda"):
        lines.append("NOTICE       : no CUDA here: CPU fallback (gloo); the CUDA path was NOT exercised")
    header = (f"{'mode':<9} {'result':<6} {'trained on':<12} {'steps':>7} {'tok/s':>9} {'first':>7} {'final':>7} "
              f"{'train_s':>7} {'wall_s':>7}  notes")
    lines += ["", header, "-" * len(header)]
    all_pass = bool(env.get("files"))
    for mode in modes:
        rec = _read_json(work / f"{mode}.result.json")
        rc = (work / f"{mode}.rc").read_text().strip() if (work / f"{mode}.rc").exists() else None
        if rec is None:
            why = {"124": "timed out (killed)", "137": "killed", None: "not run"}.get(rc, f"exit {rc}, no result")
            lines.append(f"{mode:<9} {'FAIL':<6} {'-':<12} {'-':>7} {'-':>9} {'-':>7} {'-':>7} {'-':>7} {'-':>7}  {why}")
            all_pass = False
            continue
        ok = rec.get("passed") and rc in (None, "0")
        all_pass = all_pass and bool(ok)
        notes = []
        spy = rec.get("child") if mode == "ddp" else rec.get("spy")
        if spy:
            if mode == "ddp":
                notes.append(f"{spy.get('backend')} {spy.get('loss_module', '?').replace('DistributedDataParallel', 'DDP')}"
                             f" ids={spy.get('ddp_device_ids')}")
            notes.append(f"autocast={spy.get('autocast_dtype') or 'off'} q_proj={spy.get('q_proj_out_dtype')}")
            if spy.get("peak_gpu_mem_mib"):
                notes.append(f"peak {spy['peak_gpu_mem_mib']:.0f} MiB")
        if mode == "oversub":
            notes.append(f"asked {rec.get('nproc_requested')} procs on {rec.get('gpus')} GPU(s), "
                         f"worker ran {rec.get('worker_nproc')}")
        if rec.get("checkpoint_reload"):
            notes.append(f"ckpt reload ok (valid_loss {rec['checkpoint_reload']['valid_loss']})")
        if rec.get("published"):
            notes.append("published+reloaded")
        if not ok:
            notes = [("; ".join(rec.get("problems") or []) or f"exit {rc}")[:300]]
            if rc in ("124", "137"):
                notes.insert(0, "TIMED OUT")
        steps = f"{rec.get('steps')}/{rec.get('total_steps')}"
        lines.append(f"{mode:<9} {'PASS' if ok else 'FAIL':<6} {_fmt(rec.get('trained_on')):<12} {steps:>7} "
                     f"{_fmt(rec.get('tokens_per_s'), '.0f'):>9} {_fmt(rec.get('first_loss'), '.3f'):>7} "
                     f"{_fmt(rec.get('final_loss'), '.3f'):>7} {_fmt(rec.get('train_seconds'), '.1f'):>7} "
                     f"{_fmt(rec.get('wall_s'), '.1f'):>7}  {', '.join(notes)}")
    if require_cuda and not acc.get("cuda"):
        all_pass = False
        lines.append("FAIL: GPUCHECK_REQUIRE_CUDA=1 but torch sees no CUDA device")
    lines += ["", f"OVERALL: {'PASS' if all_pass else 'FAIL'}"]
    text = "\n".join(lines) + "\n"
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.txt").write_text(text)
    _write_json(out / "results.json", {"env": env, **{m: _read_json(work / f"{m}.result.json") for m in modes}})
    print(text, end="", flush=True)
    return 0 if all_pass else 1


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "ddp-child":
        return cmd_ddp_child(argv[1:])
    p = argparse.ArgumentParser(prog="gpu_finetune_check.py")
    p.add_argument("command", choices=("prepare", "run", "report"))
    p.add_argument("mode", nargs="?", choices=MODES)
    p.add_argument("--work", type=Path, required=True)
    p.add_argument("--out", type=Path, default=None)
    p.add_argument("--require-cuda", action="store_true")
    p.add_argument("--modes", default=" ".join(MODES), help="the modes the report covers")
    a = p.parse_args(argv)
    a.work.mkdir(parents=True, exist_ok=True)
    if a.command == "prepare":
        return cmd_prepare(a.work)
    if a.command == "run":
        if a.mode is None:
            p.error("run needs a mode: " + " | ".join(MODES))
        return cmd_run(a.work, a.mode)
    modes = tuple(m for m in a.modes.split() if m in MODES)
    return cmd_report(a.work, a.out or a.work, a.require_cuda, modes or MODES)


if __name__ == "__main__":
    raise SystemExit(main())
