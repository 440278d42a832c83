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
        # bfloat16 autocast on GPUs (master weights and LoRA stay float32); CPUs train in float32,
        # which is exact and, measured on this project's 2-core machines, no slower.
        return torch.bfloat16 if self.device.type == "cuda" else None


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
    if world > 1:
        import torch.distributed as dist

        if device.type == "cuda":
            # before the process group: NCCL binds each rank's communicator to the current device
            torch.cuda.set_device(device)
        if not dist.is_initialized():
            dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return Placement(device, rank, world)
