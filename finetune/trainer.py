"""LoRA supervised fine-tuning: the training loop, device-agnostic, resumable, stoppable.

The loop knows nothing of jobs or databases: it reports through `Hooks` (a step finished, a
checkpoint was written, should I stop?). Loss is the mean cross-entropy over assistant tokens
(labels != -100). Logits are computed only at those positions: the 49k-word output layer is a
fifth of the model's arithmetic, and most positions of a chat are prompt, not answer.

Determinism: LoRA weights are initialised under `torch.manual_seed(seed)`, the batch order is a
function of (seed, epoch) (see finetune.data) and dropout defaults to 0, so a run, and a run
resumed from a checkpoint, reproduces the same losses on the same hardware and thread count.
"""

from __future__ import annotations

import contextlib
import math
import shutil
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch
import torch.nn.functional as F
from torch import nn

from finetune.data import IGNORE, Encoded, batch_indices, collate, steps_per_epoch
from finetune.device import Placement

STATE_FILE = "trainer_state.pt"
ADAPTER_FILE = "adapter_model.safetensors"


@dataclass(frozen=True)
class TrainConfig:
    n_epochs: int
    batch_size: int
    learning_rate: float
    seed: int
    lora_rank: int = 8
    lora_alpha: float | None = None
    lora_dropout: float = 0.0
    target_modules: Sequence[str] | str = "all-linear"
    max_steps: int | None = None
    checkpoint_every: int | None = None  # None: at the end of each epoch
    grad_clip: float = 1.0

    def total_steps(self, n_examples: int) -> int:
        total = self.n_epochs * steps_per_epoch(n_examples, self.batch_size)
        return min(total, self.max_steps) if self.max_steps else total

    def checkpoint_due(self, step: int, n_examples: int) -> bool:
        """`step` counts finished steps (1-based); the last step always checkpoints."""
        every = self.checkpoint_every or steps_per_epoch(n_examples, self.batch_size)
        return step % every == 0 or step == self.total_steps(n_examples)


@dataclass(frozen=True)
class StepReport:
    step: int  # 1-based, finished
    total_steps: int
    epoch: int  # 1-based
    loss: float
    token_accuracy: float
    tokens: int  # non-padding tokens of this step's batch (all ranks)
    seconds: float
    eta_s: float
    tokens_per_s: float


@dataclass
class TrainResult:
    steps: int
    tokens: int
    losses: list[float] = field(default_factory=list)
    resumed_from: int | None = None
    stopped: str | None = None  # why the loop stopped early, if it did
    train_seconds: float = 0.0
    cpu_seconds: float = 0.0  # this process's CPU time over the loop (all threads): steadier than wall time


class Hooks(Protocol):
    def on_step(self, report: StepReport) -> None: ...

    def on_checkpoint(self, step: int, path: Path, metrics: dict[str, float]) -> None: ...

    def stop_reason(self) -> str | None: ...


class _AssistantLoss(nn.Module):
    """Wraps the PEFT model so DDP sees one module whose forward returns the loss."""

    def __init__(self, model: Any) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        lm = self.model.get_base_model()
        hidden = lm.get_decoder()(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        target = labels[:, 1:]
        keep = target != IGNORE
        logits = lm.get_output_embeddings()(hidden[:, :-1][keep]).float()
        wanted = target[keep]
        if wanted.numel() == 0:  # a DDP rank with nothing to learn this step still joins the all-reduce
            zero = logits.sum() * 0.0
            return zero, torch.zeros((), device=zero.device), torch.zeros((), device=zero.device)
        loss = F.cross_entropy(logits, wanted)
        correct = (logits.argmax(-1) == wanted).sum()
        return loss, correct.float(), torch.tensor(float(wanted.numel()), device=loss.device)


def attach_lora(model: Any, cfg: TrainConfig) -> Any:
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(cfg.seed)
    target = cfg.target_modules if isinstance(cfg.target_modules, str) else list(cfg.target_modules)
    alpha = cfg.lora_alpha or 2 * cfg.lora_rank
    config = LoraConfig(r=cfg.lora_rank, lora_alpha=alpha, lora_dropout=cfg.lora_dropout,  # type: ignore[arg-type]
                        target_modules=target, task_type="CAUSAL_LM")  # (peft annotates alpha int; it is a float scale)
    return get_peft_model(model, config)


class LoraTrainer:
    def __init__(self, peft_model: Any, cfg: TrainConfig, where: Placement, pad_id: int) -> None:
        self.cfg = cfg
        self.where = where
        self.pad_id = pad_id
        self.model = peft_model.to(where.device)
        self.loss_module: nn.Module = _AssistantLoss(self.model)
        if where.distributed:
            from torch.nn.parallel import DistributedDataParallel

            ids = [where.device.index] if where.device.type == "cuda" else None
            self.loss_module = DistributedDataParallel(self.loss_module, device_ids=ids)
        params = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(params, lr=cfg.learning_rate, weight_decay=0.0)

    # ------------------------------------------------------------------ one step
    def _autocast(self) -> contextlib.AbstractContextManager[Any]:
        dtype = self.where.autocast_dtype
        return torch.autocast(self.where.device.type, dtype=dtype) if dtype else contextlib.nullcontext()

    def _shard(self, items: list[Encoded]) -> list[Encoded]:
        mine = items[self.where.rank:: self.where.world_size]
        # A rank without examples this step trains on a masked copy (zero loss) to keep DDP in step.
        return mine or [Encoded(items[0].input_ids, tuple(IGNORE for _ in items[0].labels))]

    def step(self, items: list[Encoded]) -> tuple[float, float, int]:
        """One optimizer step; returns (loss, token accuracy, non-padding tokens) over all ranks."""
        batch = {k: v.to(self.where.device) for k, v in collate(self._shard(items), self.pad_id).items()}
        self.model.train()
        with self._autocast():
            loss, correct, count = self.loss_module(**batch)
        loss.backward()
        if self.cfg.grad_clip:
            torch.nn.utils.clip_grad_norm_([p for p in self.model.parameters() if p.requires_grad], self.cfg.grad_clip)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        stats = torch.stack([loss.detach().float() * count, correct, count,
                             batch["attention_mask"].sum().float()])
        if self.where.distributed:
            import torch.distributed as dist

            dist.all_reduce(stats)
        loss_sum, correct_sum, n, tokens = (float(x) for x in stats.cpu())
        return loss_sum / max(n, 1.0), correct_sum / max(n, 1.0), int(tokens)

    @torch.no_grad()
    def evaluate(self, examples: Sequence[Encoded]) -> tuple[float, float]:
        """Mean loss and token accuracy over `examples` (validation), no gradients."""
        self.model.eval()
        loss_sum = correct = n = 0.0
        for start in range(0, len(examples), self.cfg.batch_size):
            chunk = list(examples[start: start + self.cfg.batch_size])
            batch = {k: v.to(self.where.device) for k, v in collate(chunk, self.pad_id).items()}
            with self._autocast():
                loss, c, count = _AssistantLoss(self.model)(**batch)
            loss_sum += float(loss) * float(count)
            correct += float(c)
            n += float(count)
        return loss_sum / max(n, 1.0), correct / max(n, 1.0)

    # ------------------------------------------------------------------ checkpoints
    def save_checkpoint(self, out_dir: Path, step: int, tokens: int) -> Path:
        final = out_dir / f"checkpoint-{step}"
        tmp = out_dir / f".checkpoint-{step}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        self.model.save_pretrained(str(tmp), safe_serialization=True, save_embedding_layers=False)
        torch.save({"step": step, "tokens": tokens, "optimizer": self.optimizer.state_dict(),
                    "rng": torch.get_rng_state()}, tmp / STATE_FILE)
        shutil.rmtree(final, ignore_errors=True)
        tmp.rename(final)  # a checkpoint folder exists whole or not at all
        return final

    def load_checkpoint(self, path: Path) -> tuple[int, int]:
        """Restore adapter weights, optimizer and RNG; returns (step, tokens) it was taken at."""
        from peft import set_peft_model_state_dict
        from safetensors.torch import load_file

        set_peft_model_state_dict(self.model, load_file(str(path / ADAPTER_FILE), device=str(self.where.device)))
        state = torch.load(path / STATE_FILE, map_location=self.where.device, weights_only=False)
        self.optimizer.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["rng"].cpu())
        return int(state["step"]), int(state["tokens"])

    # ------------------------------------------------------------------ the loop
    def _stop(self, hooks: Hooks) -> str | None:
        reason = hooks.stop_reason() if self.where.is_main else None
        if not self.where.distributed:
            return reason
        import torch.distributed as dist

        flag = torch.tensor([1.0 if reason else 0.0], device=self.where.device)
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)  # every rank leaves the loop at the same step
        return reason or ("stopped by rank 0" if flag.item() else None)

    def train(self, examples: Sequence[Encoded], out_dir: Path, hooks: Hooks, *,
              resume: Path | None = None, validation: Sequence[Encoded] = ()) -> TrainResult:
        n, cfg = len(examples), self.cfg
        total = cfg.total_steps(n)
        start_step, tokens = self.load_checkpoint(resume) if resume is not None else (0, 0)
        result = TrainResult(steps=start_step, tokens=tokens, resumed_from=start_step if resume else None)
        t0, cpu0 = time.perf_counter(), time.process_time()
        for step in range(start_step, total):
            reason = self._stop(hooks)
            if reason:
                result.stopped = reason
                break
            began = time.perf_counter()
            batch = [examples[i] for i in batch_indices(n, cfg.batch_size, cfg.seed, step)]
            loss, accuracy, batch_tokens = self.step(batch)
            if not math.isfinite(loss):
                raise FloatingPointError(f"the training loss became {loss} at step {step + 1}; "
                                         "lower learning_rate_multiplier")
            seconds = time.perf_counter() - began
            tokens += batch_tokens
            done = step + 1
            result.steps, result.tokens = done, tokens
            result.losses.append(loss)
            elapsed = time.perf_counter() - t0
            if self.where.is_main:
                hooks.on_step(StepReport(
                    step=done, total_steps=total, epoch=step // steps_per_epoch(n, cfg.batch_size) + 1, loss=loss,
                    token_accuracy=accuracy, tokens=batch_tokens, seconds=seconds,
                    eta_s=elapsed / (done - start_step) * (total - done), tokens_per_s=batch_tokens / seconds))
            if cfg.checkpoint_due(done, n):
                metrics = {"step": float(done), "train_loss": loss, "train_mean_token_accuracy": accuracy}
                if validation:
                    metrics["valid_loss"], metrics["valid_mean_token_accuracy"] = self.evaluate(validation)
                if self.where.is_main:
                    hooks.on_checkpoint(done, self.save_checkpoint(out_dir, done, tokens), metrics)
        result.train_seconds = time.perf_counter() - t0
        result.cpu_seconds = time.process_time() - cpu0
        return result

    def merged(self) -> Any:
        """The base model with the adapter folded into its weights (a plain transformers model)."""
        self.model.eval()
        return self.model.merge_and_unload()


def checkpoint_dirs(out_dir: Path) -> Iterator[tuple[int, Path]]:
    """(step, folder) of the complete checkpoints under `out_dir`, newest first."""
    found = []
    for p in out_dir.glob("checkpoint-*"):
        suffix = p.name.removeprefix("checkpoint-")
        if suffix.isdigit() and (p / STATE_FILE).exists() and (p / ADAPTER_FILE).exists():
            found.append((int(suffix), p))
    yield from sorted(found, reverse=True)
