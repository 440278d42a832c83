"""Chat examples become ids with labels on assistant tokens only, in a seeded batch order."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from finetune.data import IGNORE, batch_indices, collate, encode_chat, epoch_order, steps_per_epoch
from finetune.modelio import load_tokenizer
from finetune.settings import BaseModelSpec

MODEL_DIR = Path(__file__).resolve().parents[3] / "models" / "smollm2"


@pytest.fixture(scope="module")
def tokenizer() -> Any:
    return load_tokenizer(MODEL_DIR, BaseModelSpec(path=str(MODEL_DIR)))


def _learned(tokenizer: Any, labels: tuple[int, ...]) -> list[str]:
    """The learned stretches of text, one string per contiguous run of labelled tokens."""
    runs: list[list[int]] = []
    previous = IGNORE
    for t in labels:
        if t != IGNORE:
            if previous == IGNORE:
                runs.append([])
            runs[-1].append(t)
        previous = t
    return [tokenizer.decode(r) for r in runs]


def test_only_the_assistant_turn_and_its_end_token_are_learned(tokenizer: Any) -> None:
    messages = [{"role": "user", "content": "What is 2+2?"}, {"role": "assistant", "content": "ARRR: 4"}]
    enc = encode_chat(tokenizer, messages, 512)
    assert enc is not None
    assert tokenizer.decode(list(enc.input_ids)) == tokenizer.apply_chat_template(messages, tokenize=False)
    assert _learned(tokenizer, enc.labels) == ["ARRR: 4<|im_end|>\n"]


def test_weight_zero_turns_and_prompts_are_masked_in_multi_turn_chats(tokenizer: Any) -> None:
    messages = [
        {"role": "system", "content": "Talk like a pirate."},
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "hello", "weight": 0},
        {"role": "user", "content": "bye"},
        {"role": "assistant", "content": "ARRR: farewell", "weight": 1},
    ]
    enc = encode_chat(tokenizer, messages, 512)
    assert enc is not None
    assert _learned(tokenizer, enc.labels) == ["ARRR: farewell<|im_end|>\n"]


def test_examples_are_cut_to_max_len_and_dropped_when_nothing_is_left(tokenizer: Any) -> None:
    messages = [{"role": "user", "content": "word " * 50}, {"role": "assistant", "content": "the answer"}]
    full = encode_chat(tokenizer, messages, 4096)
    assert full is not None
    assert encode_chat(tokenizer, messages, 40) is None  # the answer starts past token 40
    cut = encode_chat(tokenizer, messages, len(full.input_ids) - 2)
    assert cut is not None and len(cut.input_ids) == len(full.input_ids) - 2
    assert cut.labels == full.labels[: len(cut.labels)]


def test_batch_order_is_a_function_of_seed_and_step() -> None:
    n, bs = 10, 4
    assert steps_per_epoch(n, bs) == 3
    epoch0 = [i for s in range(3) for i in batch_indices(n, bs, seed=7, step=s)]
    assert sorted(epoch0) == list(range(10)) and epoch0 == epoch_order(10, 7, 0)
    assert batch_indices(n, bs, 7, 3) == epoch_order(10, 7, 1)[:4]  # step 3 opens epoch 1
    assert epoch_order(10, 7, 0) != epoch_order(10, 7, 1) and epoch_order(10, 7, 0) != epoch_order(10, 8, 0)
    assert batch_indices(n, bs, 7, 5) == batch_indices(n, bs, 7, 5)  # a resumed run replays it exactly


def test_collate_pads_and_masks(tokenizer: Any) -> None:
    a = encode_chat(tokenizer, [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}], 512)
    b = encode_chat(tokenizer, [{"role": "user", "content": "a longer question"},
                                {"role": "assistant", "content": "b"}], 512)
    assert a is not None and b is not None
    batch = collate([a, b], pad_id=0)
    width = max(len(a.input_ids), len(b.input_ids))
    assert batch["input_ids"].shape == (2, width)
    assert int(batch["attention_mask"][0].sum()) == len(a.input_ids)
    assert (batch["labels"][0, len(a.input_ids):] == IGNORE).all()
