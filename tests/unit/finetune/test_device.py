"""Where fine-tuning runs: how many processes a worker starts and which autocast a device gets."""

from __future__ import annotations

import pytest
import torch

from finetune.device import Placement, autocast_dtype, placement, usable_processes


@pytest.mark.parametrize(
    ("requested", "gpus", "expected"),
    [(1, 0, 1), (4, 0, 4), (2, 1, 1), (8, 4, 4), (2, 2, 2), (0, 2, 1)],
)
def test_at_most_one_process_per_gpu_and_any_number_of_cpu_processes(requested: int, gpus: int, expected: int) -> None:
    assert usable_processes(requested, gpus) == expected


def test_bfloat16_autocast_only_on_gpus_that_have_it() -> None:
    assert autocast_dtype("cuda", True) is torch.bfloat16
    assert autocast_dtype("cuda", False) is None  # V100 / T4: float32, not float16 without loss scaling
    assert autocast_dtype("cpu", True) is None
    assert Placement(torch.device("cpu")).autocast_dtype is None


def test_a_single_process_on_this_machine_needs_no_process_group(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "LOCAL_WORLD_SIZE"):
        monkeypatch.delenv(var, raising=False)
    where = placement()
    assert (where.rank, where.world_size, where.is_main, where.distributed) == (0, 1, True, False)
    assert where.device.type == ("cuda" if torch.cuda.is_available() else "cpu")
