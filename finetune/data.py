"""Chat examples → token ids with labels on assistant tokens only; seeded batch order.

The chat template is the tokenizer's own (the one the gateway applies before Triton), so the
model trains on exactly the text layout it is served with. An assistant turn's tokens are found
by rendering the conversation up to it twice: with the generation prompt (`<|im_start|>assistant\\n`)
and with the turn itself; the difference is what the model must learn to produce, end-of-turn
token included, so it also learns to stop. Every other token gets the label -100 (ignored).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

IGNORE = -100


@dataclass(frozen=True)
class Encoded:
    input_ids: tuple[int, ...]
    labels: tuple[int, ...]

    @property
    def trained_tokens(self) -> int:
        return sum(1 for t in self.labels if t != IGNORE)


class TemplateError(ValueError):
    """The chat template does not render a conversation as a prefix of its continuation."""


def _ids(tokenizer: Any, text: str) -> list[int]:
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def _render(tokenizer: Any, messages: Sequence[dict[str, Any]], generation_prompt: bool) -> str:
    plain = [{"role": m["role"], "content": m["content"]} for m in messages]
    return str(tokenizer.apply_chat_template(plain, tokenize=False, add_generation_prompt=generation_prompt))


def encode_chat(tokenizer: Any, messages: Sequence[dict[str, Any]], max_len: int) -> Encoded | None:
    """Ids and labels of one conversation, cut to `max_len`; None when nothing is left to learn."""
    ids = _ids(tokenizer, _render(tokenizer, messages, False))
    labels = [IGNORE] * len(ids)
    for i, m in enumerate(messages):
        if i == 0 or m["role"] != "assistant" or m.get("weight", 1) == 0:
            continue
        start = _ids(tokenizer, _render(tokenizer, messages[:i], True))  # i > 0: validation refuses i == 0
        end = _ids(tokenizer, _render(tokenizer, messages[: i + 1], False))
        if ids[: len(start)] != start or ids[: len(end)] != end:
            raise TemplateError("the chat template does not render turns as prefixes of the conversation")
        labels[len(start): len(end)] = ids[len(start): len(end)]
    ids, labels = ids[:max_len], labels[:max_len]
    if all(t == IGNORE for t in labels[1:]):  # the first token is never predicted
        return None
    return Encoded(tuple(ids), tuple(labels))


def encode_all(tokenizer: Any, conversations: Sequence[Sequence[dict[str, Any]]],
               max_len: int) -> tuple[list[Encoded], int]:
    """Encoded examples and the number dropped (their assistant turns lay past `max_len`)."""
    out: list[Encoded] = []
    dropped = 0
    for messages in conversations:
        enc = encode_chat(tokenizer, messages, max_len)
        if enc is None:
            dropped += 1
        else:
            out.append(enc)
    return out, dropped


def epoch_order(n: int, seed: int, epoch: int) -> list[int]:
    """The example order of one epoch: a function of (seed, epoch) only, so a resumed run
    replays exactly the batches the lost run would have seen."""
    g = torch.Generator().manual_seed(seed * 100_003 + epoch)
    return [int(i) for i in torch.randperm(n, generator=g)]


def steps_per_epoch(n: int, batch_size: int) -> int:
    return -(-n // batch_size)


def batch_indices(n: int, batch_size: int, seed: int, step: int) -> list[int]:
    """Example indices of global step `step` (0-based)."""
    spe = steps_per_epoch(n, batch_size)
    epoch, within = divmod(step, spe)
    order = epoch_order(n, seed, epoch)
    return order[within * batch_size: (within + 1) * batch_size]


def collate(items: Sequence[Encoded], pad_id: int) -> dict[str, torch.Tensor]:
    width = max(len(e.input_ids) for e in items)
    ids = torch.full((len(items), width), pad_id, dtype=torch.long)
    labels = torch.full((len(items), width), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(items), width), dtype=torch.long)
    for row, e in enumerate(items):
        n = len(e.input_ids)
        ids[row, :n] = torch.tensor(e.input_ids)
        labels[row, :n] = torch.tensor(e.labels)
        mask[row, :n] = 1
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}
