"""Where training runs: one CPU, one GPU, or several processes under torchrun.

    python -m finetune.cli worker                                 # CPU, or the one visible GPU
    torchrun --nproc-per-node 4 -m finetune.distributed --job ID  # 4 GPUs (or 4 CPU processes, gloo)

The worker starts the torchrun form itself when `LLMOPS_FINETUNE_NPROC` > 1 (see finetune.runner).
Under torchrun each process reads RANK / WORLD_SIZE / LOCAL_RANK; rank 0 alone writes events and
checkpoints.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Placement:
    device: torch.device
    rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def autocast_dtype(self) -> torch.dtype | None:
        return autocast_dtype(self.device.type, self.device.type == "cuda" and torch.cuda.is_bf16_supported())


def autocast_dtype(device_type: str, bf16_supported: bool) -> torch.dtype | None:
    """bfloat16 autocast on GPUs that have it (master weights and LoRA stay float32). GPUs without
    it (V100, T4) and CPUs train in float32: float16 autocast would need loss scaling to keep small
    LoRA gradients from underflowing, and on CPUs float32 is exact and, measured on this project's
    2-core machines, no slower."""
    return torch.bfloat16 if device_type == "cuda" and bf16_supported else None


def usable_processes(requested: int, gpus: int) -> int:
    """How many training processes to start for ``requested``: on GPUs at most one per visible card
    (NCCL refuses two ranks on one device); without GPUs as many CPU processes (gloo) as asked."""
    return max(1, min(requested, gpus) if gpus else requested)


def visible_gpus() -> int:
    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def pick_device(local_rank: int = 0) -> torch.device:
    if torch.cuda.is_available():
        return torch.device("cuda", local_rank % torch.cuda.device_count())
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def placement() -> Placement:
    """This process's device; joins the process group when started by torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    device = pick_device(local)
    local_world = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    if device.type == "cuda" and local_world > torch.cuda.device_count():
        # Said here, not as NCCL's "duplicate GPU detected" from inside init_process_group.
        raise RuntimeError(f"{local_world} training processes on this node but {torch.cuda.device_count()} GPU(s): "
                           f"start at most one per GPU (torchrun --nproc-per-node {torch.cuda.device_count()})")
    if world > 1:
        import torch.distributed as dist

        if device.type == "cuda":
            # before the process group: NCCL binds each rank's communicator to the current device
            torch.cuda.set_device(device)
        if not dist.is_initialized():
            dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return Placement(device, rank, world)
