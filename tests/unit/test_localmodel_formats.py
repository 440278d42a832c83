"""Which matmul format the local model uses where, per CPU (see `gateway.localmodel.model.formats`);
the live Triton tests check the answers themselves on whatever CPU runs them."""

from __future__ import annotations

import pytest

from gateway.localmodel.model import formats


@pytest.mark.parametrize("flags, expected", [
    (set(), ("q4", "f32", "f32", "f32")),
    ({"avx512_bf16"}, ("q4", "bf16", "f32", "f32")),  # AMD Zen 4/5: a bfloat16 head flipped greedy answers
    ({"avx512_bf16", "amx_bf16"}, ("q4", "bf16", "bf16", "bf16")),
    ({"avx512_bf16", "amx_bf16", "avx512_fp16"}, ("q4", "bf16", "f16", "f16")),
])
def test_q4_formats_follow_the_cpu(flags: set[str], expected: tuple[str, ...]) -> None:
    assert formats("q4", flags) == expected


def test_fixed_formats_ignore_the_cpu() -> None:
    assert formats("float32", {"amx_bf16"}) == ("f32",) * 4
    assert formats("bfloat16", set()) == ("bf16",) * 4
    with pytest.raises(ValueError):
        formats("int8")
