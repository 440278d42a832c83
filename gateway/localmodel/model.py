"""A lean forward pass for Llama-family causal LMs, with a slot-based KV cache for batched decoding.

transformers' own forward costs a lot of Python per token (cache objects, mask builders, hooks);
on two CPU cores that overhead, not arithmetic, dominates a 135M-parameter model. This module takes
the weights out of a loaded transformers model (GGUF dequantisation, tokenizer and config stay
transformers' business), fuses the q/k/v and gate/up projections, and runs the same maths with a
handful of ATen calls per layer.

Precision: the residual stream, norms, rotary embedding, attention and KV cache are float32; only
the matrix multiplications change with `weight_format` (see `Weight` and `formats`):

- "float32": reproduces transformers' logits to ~1e-4 (top-1 agreement 100%).
- "bfloat16": ~2x faster matmuls for batches on AMX CPUs; top-1 agreement ~96.5%, KL ~1e-3.
- "q4" (default): 4-bit weights for decode steps (exact GGUF Q4_1 groups), bfloat16 for prefill and
  big batches, a float16 or float32 output head (see `formats`); top-1 agreement ~99%, KL ~4e-4
  against float32 (bfloat16 activations are most of the difference). Fastest: a decode step reads ~1/5 of float32's bytes.

KV cache layout: per layer one tensor `[slots, kv_heads, length, head_dim]` for keys and one for
values. Sequences being decoded occupy slots `0..n-1` contiguously, so one decode step attends over
the view `cache[:n, :, :max_pos+1]` with a padding mask: no gathers or copies per step. Prompts are
prefilled (several packed into one forward pass, long ones in chunks) into per-sequence scratch
caches that are copied into a slot when the sequence joins the decode batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

F32 = torch.float32
BF16 = torch.bfloat16


class Weight:
    """One linear layer's weight, stored in the format(s) that make its matmuls fastest.

    Decode steps multiply one or a few rows (`m <= small_m`) and are bound by the bytes of weight
    read per step; prefill and large batches are bound by arithmetic. So a weight may be kept twice:
    `small` for the former, `large` for the latter. Formats:

    - "f32": float32 `F.linear` (exact).
    - "bf16": bfloat16 `F.linear` (oneDNN uses AMX / AVX512-BF16 where the CPU has them).
    - "f16": float16 `F.linear` (AVX512-FP16); 3 more mantissa bits than bfloat16, which matters
      for the output head: the logits keep float32's argmax far more often.
    - "q4": 4-bit groups of 32 input features with a per-group scale and offset, through ATen's
      CPU weight-only kernel `_weight_int4pack_mm_for_cpu` (bfloat16 activations). This is exactly
      the layout of GGUF Q4_0/Q4_1 blocks, so weights that came from such a file survive the round
      trip up to the bfloat16 rounding of each group's scale and offset; it reads 1/8 of float32's
      bytes.
    """

    GROUP = 32

    def __init__(self, w: torch.Tensor, small: str, large: str, small_m: int = 4) -> None:
        self.n, self.k = w.shape
        self.small_m = small_m
        self.small_fmt, self.large_fmt = small, large
        self._small = self._make(w, small)
        self._large = self._small if large == small else self._make(w, large)

    def _make(self, w: torch.Tensor, fmt: str):
        w = w.detach()
        if fmt == "f32":
            return w.to(F32).contiguous()
        if fmt == "bf16":
            return w.to(BF16).contiguous()
        if fmt == "f16":
            return w.to(torch.float16).contiguous()
        if fmt == "q4":
            n, k, g = self.n, self.k, self.GROUP
            if k % g:
                raise ValueError("q4 needs in_features to be a multiple of 32")
            wf = w.float().view(n, k // g, g)
            mn = wf.amin(-1, keepdim=True)
            mx = wf.amax(-1, keepdim=True)
            scale = ((mx - mn) / 15).clamp(min=1e-12)
            q = ((wf - mn) / scale).round().clamp(0, 15).to(torch.int32).view(n, k)
            zero = mn + 8 * scale  # the kernel computes (q - 8) * scale + zero
            packed = torch.ops.aten._convert_weight_to_int4pack_for_cpu(q, 1)
            sz = torch.stack([scale.view(n, k // g), zero.view(n, k // g)], -1).transpose(0, 1)
            return packed, sz.contiguous().to(BF16)
        raise ValueError(f"unknown weight format {fmt!r}")

    def __call__(self, x: torch.Tensor, b: torch.Tensor | None = None) -> torch.Tensor:
        small = x.numel() // self.k <= self.small_m
        fmt = self.small_fmt if small else self.large_fmt
        w = self._small if small else self._large
        if fmt == "f32":
            return F.linear(x, w, b)
        if fmt == "bf16":
            y = F.linear(x.to(BF16), w).float()
        elif fmt == "f16":
            y = F.linear(x.to(torch.float16), w).float()
        else:
            packed, sz = w
            shape = x.shape[:-1]
            y = torch.ops.aten._weight_int4pack_mm_for_cpu(x.reshape(-1, self.k).to(BF16), packed, self.GROUP, sz)
            y = y.view(*shape, self.n).float()
        return y if b is None else y + b


def cpu_flags() -> set[str]:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def formats(name: str, flags: set[str] | None = None) -> tuple[str, str, str, str]:
    """(layer small-m, layer large-m, head small-m, head large-m) formats for a format name.

    "q4" keeps decode steps (few rows) on 4-bit layer weights and uses the fastest accurate
    half-precision path this CPU has for everything else: bfloat16 layers only with AVX512-BF16/AMX;
    for the output head float16 with AVX512-FP16, bfloat16 only with AMX, float32 otherwise.

    Why the head is stricter: on an AVX512-BF16 CPU without AMX (AMD Zen 5) bfloat16 layers *and*
    head together flipped the 135M model's greedy first token ("What is the capital of France?" ->
    "L'Étoile, la Marseillaise, ..." instead of "The capital of France is Paris."), either one alone
    did not. A float32 head there costs ~15-30% of a short generation's time (2026-11-27).
    """
    if name == "float32":
        return ("f32", "f32", "f32", "f32")
    if name == "bfloat16":
        return ("bf16", "bf16", "bf16", "bf16")
    if name == "q4":
        flags = cpu_flags() if flags is None else flags
        large = "bf16" if {"avx512_bf16", "amx_bf16"} & flags else "f32"
        head = "f16" if "avx512_fp16" in flags else ("bf16" if "amx_bf16" in flags else "f32")
        return ("q4", large, head, head)
    raise ValueError("weight_format must be one of float32, bfloat16, q4")


@dataclass
class PrefillItem:
    """One chunk of one prompt: `ids` at positions `start..start+len(ids)`, scratch cache `k`, `v`."""

    ids: list[int]
    start: int
    k: list[torch.Tensor]  # per layer [kv_heads, prompt_len, head_dim]
    v: list[torch.Tensor]


class LlamaLite:
    SUPPORTED = {"llama", "mistral", "qwen2"}

    def __init__(self, hf_model: Any, weight_format: str = "float32", small_m: int = 4) -> None:
        cfg: Any = hf_model.config
        if getattr(cfg, "model_type", None) not in self.SUPPORTED:
            raise ValueError(f"unsupported model type {getattr(cfg, 'model_type', None)!r}")
        self.weight_format = weight_format
        self.formats = formats(weight_format)
        l_small, l_large, h_small, h_large = self.formats
        self.hidden: int = int(cfg.hidden_size)
        self.n_heads: int = int(cfg.num_attention_heads)
        self.n_kv: int = int(getattr(cfg, "num_key_value_heads", None) or self.n_heads)
        self.head_dim: int = int(getattr(cfg, "head_dim", None) or self.hidden // self.n_heads)
        self.n_layers: int = int(cfg.num_hidden_layers)
        self.eps = float(cfg.rms_norm_eps)
        self.max_positions = int(cfg.max_position_embeddings)
        window = getattr(cfg, "sliding_window", None)
        if window and (cfg.model_type == "mistral" or getattr(cfg, "use_sliding_window", False)):
            # attention here is always full: stay within the window, where the two agree
            self.max_positions = min(self.max_positions, int(window))
        self.vocab: int = int(cfg.vocab_size)
        inner: Any = hf_model.model

        def w(t: torch.Tensor) -> Weight:
            return Weight(t, l_small, l_large, small_m)

        def f(t: torch.Tensor) -> torch.Tensor:
            return t.detach().to(F32).contiguous()

        with torch.no_grad():
            self.embed = f(inner.embed_tokens.weight)
            self.lm_head = Weight(hf_model.lm_head.weight, h_small, h_large, small_m)
            self.final_norm = f(inner.norm.weight)
            # Rotary embedding as one complex multiply: reorder each q/k head's features from
            # transformers' half-split layout (x_i pairs with x_{i+d/2}) to adjacent pairs. q.k is
            # unchanged when q and k are permuted alike, so nothing else needs to know.
            d = self.head_dim
            perm = torch.stack([torch.arange(d // 2), torch.arange(d // 2) + d // 2], dim=1).reshape(-1)

            def heads(t: torch.Tensor) -> torch.Tensor:
                return t.detach().reshape(-1, d, *t.shape[1:])[:, perm].reshape(t.shape)

            self.layers: list[tuple[Any, ...]] = []
            for layer in inner.layers:
                at, mlp = layer.self_attn, layer.mlp
                qkv_b = None
                if getattr(at.q_proj, "bias", None) is not None:
                    qkv_b = f(torch.cat([heads(at.q_proj.bias), heads(at.k_proj.bias), at.v_proj.bias]))
                if getattr(at.o_proj, "bias", None) is not None or getattr(mlp.down_proj, "bias", None) is not None:
                    raise ValueError("output-projection biases are not supported")
                self.layers.append(
                    (
                        f(layer.input_layernorm.weight),
                        w(torch.cat([heads(at.q_proj.weight), heads(at.k_proj.weight), at.v_proj.weight])),
                        qkv_b,
                        w(at.o_proj.weight),
                        f(layer.post_attention_layernorm.weight),
                        w(torch.cat([mlp.gate_proj.weight, mlp.up_proj.weight])),
                        w(mlp.down_proj.weight),
                    )
                )
        self.inter = self.layers[0][5].n // 2
        self._rope(cfg)
        self.slots = 0
        self.cache_len = 0
        self.kc: list[torch.Tensor] = []
        self.vc: list[torch.Tensor] = []

    # ------------------------------------------------------------------ rope
    def _rope(self, cfg) -> None:
        params = dict(getattr(cfg, "rope_parameters", None) or {})
        scaling = dict(getattr(cfg, "rope_scaling", None) or {})
        rope_type = params.get("rope_type") or scaling.get("rope_type") or scaling.get("type") or "default"
        if rope_type != "default":
            raise ValueError(f"unsupported rope type {rope_type!r}")
        theta = float(params.get("rope_theta") or getattr(cfg, "rope_theta", None) or 10000.0)
        d = self.head_dim
        inv = 1.0 / (theta ** (torch.arange(0, d, 2, dtype=torch.int64).float() / d))
        t = torch.arange(self.max_positions, dtype=F32)
        freqs = torch.outer(t, inv)
        self.freqs_cis = torch.polar(torch.ones_like(freqs), freqs)  # [positions, d/2] complex64

    # ------------------------------------------------------------------ cache management
    def ensure_cache(self, slots: int, length: int) -> None:
        """Grow the slot cache to at least `slots` x `length` positions (keeps its contents)."""
        if slots <= self.slots and length <= self.cache_len:
            return
        if length > self.max_positions:
            raise ValueError(f"position {length} beyond the model's {self.max_positions}")
        new_slots = max(slots, self.slots)
        new_len = self.cache_len
        if length > self.cache_len:
            new_len = max(length, 256, int(self.cache_len * 1.5))
            new_len = min(self.max_positions, (new_len + 63) // 64 * 64)
        shape = (new_slots, self.n_kv, new_len, self.head_dim)
        kc, vc = [], []
        for i in range(self.n_layers):
            # zeros, not empty: masked positions still enter softmax(..) @ v, and NaN * 0 is NaN
            k = torch.zeros(shape, dtype=F32)
            v = torch.zeros(shape, dtype=F32)
            if self.slots and self.cache_len:
                k[: self.slots, :, : self.cache_len] = self.kc[i]
                v[: self.slots, :, : self.cache_len] = self.vc[i]
            kc.append(k)
            vc.append(v)
        self.kc, self.vc = kc, vc
        self.slots, self.cache_len = new_slots, new_len

    def reset_cache(self) -> None:
        self.kc, self.vc = [], []
        self.slots = self.cache_len = 0

    def move_slot(self, src: int, dst: int, length: int) -> None:
        for i in range(self.n_layers):
            self.kc[i][dst, :, :length] = self.kc[i][src, :, :length]
            self.vc[i][dst, :, :length] = self.vc[i][src, :, :length]

    def load_slot(self, slot: int, k: list[torch.Tensor], v: list[torch.Tensor], length: int) -> None:
        self.ensure_cache(slot + 1, length)
        for i in range(self.n_layers):
            self.kc[i][slot, :, :length] = k[i][:, :length]
            self.vc[i][slot, :, :length] = v[i][:, :length]

    def new_scratch(self, length: int) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        shape = (self.n_kv, length, self.head_dim)
        return (
            [torch.empty(shape, dtype=F32) for _ in range(self.n_layers)],
            [torch.empty(shape, dtype=F32) for _ in range(self.n_layers)],
        )

    # ------------------------------------------------------------------ building blocks
    @staticmethod
    def _lin(x: torch.Tensor, w: Weight, b: torch.Tensor | None = None) -> torch.Tensor:
        return w(x, b)

    def _qkv(self, x, w_norm, w_qkv, b_qkv, rot):
        """x [B, T, H] -> q [B, T, nh, d], k, v [B, T, nkv, d], rotary embedding applied
        (`rot`: [B, T, 1, d/2] complex, q/k features in adjacent-pair order)."""
        B, T, _ = x.shape
        h = F.rms_norm(x, (self.hidden,), w_norm, self.eps)
        qkv = self._lin(h, w_qkv, b_qkv)
        nq, nk, d = self.n_heads, self.n_kv, self.head_dim
        qk = torch.view_as_complex(qkv[..., : (nq + nk) * d].view(B, T, nq + nk, d // 2, 2))
        qk = torch.view_as_real(qk * rot).view(B, T, nq + nk, d)
        v = qkv[..., (nq + nk) * d :].view(B, T, nk, d)
        return qk[:, :, :nq], qk[:, :, nq:], v

    def _mlp(self, x, w_norm, w_gu, w_down):
        h = F.rms_norm(x, (self.hidden,), w_norm, self.eps)
        gu = self._lin(h, w_gu)
        return x + self._lin(F.silu(gu[..., : self.inter]) * gu[..., self.inter :], w_down)

    def _logits(self, x: torch.Tensor) -> torch.Tensor:
        h = F.rms_norm(x, (self.hidden,), self.final_norm, self.eps)
        return self._lin(h, self.lm_head)

    # ------------------------------------------------------------------ forward passes
    @torch.inference_mode()
    def prefill(self, items: list[PrefillItem]) -> torch.Tensor:
        """Run chunks of several prompts packed into one pass; returns last-token logits [n, V]."""
        ids: list[int] = []
        pos: list[int] = []
        last: list[int] = []
        for it in items:
            ids.extend(it.ids)
            pos.extend(range(it.start, it.start + len(it.ids)))
            last.append(len(ids) - 1)
        p = torch.tensor(pos, dtype=torch.long)
        rot = self.freqs_cis[p].view(1, -1, 1, self.head_dim // 2)
        x = self.embed[torch.tensor(ids, dtype=torch.long)].unsqueeze(0)  # [1, N, H]
        nq, d = self.n_heads, self.head_dim
        for li, (w_in, w_qkv, b_qkv, w_o, w_post, w_gu, w_down) in enumerate(self.layers):
            q, k, v = self._qkv(x, w_in, w_qkv, b_qkv, rot)
            outs = []
            off = 0
            for it in items:
                n = len(it.ids)
                s, e = it.start, it.start + n
                kk = k[0, off : off + n].transpose(0, 1)  # [nkv, n, d]
                vv = v[0, off : off + n].transpose(0, 1)
                it.k[li][:, s:e] = kk
                it.v[li][:, s:e] = vv
                qq = q[0, off : off + n].transpose(0, 1).unsqueeze(0)  # [1, nq, n, d]
                if s == 0:
                    o = F.scaled_dot_product_attention(
                        qq, kk.unsqueeze(0), vv.unsqueeze(0), is_causal=True, enable_gqa=True
                    )
                else:  # a later chunk: attend to the earlier chunks too
                    mask = torch.ones(n, e, dtype=torch.bool).tril(diagonal=s)
                    o = F.scaled_dot_product_attention(
                        qq,
                        it.k[li][:, :e].unsqueeze(0),
                        it.v[li][:, :e].unsqueeze(0),
                        attn_mask=mask,
                        enable_gqa=True,
                    )
                outs.append(o[0].transpose(0, 1).reshape(n, nq * d))
                off += n
            o = outs[0] if len(outs) == 1 else torch.cat(outs, 0)
            x = x + self._lin(o.unsqueeze(0), w_o)
            x = self._mlp(x, w_post, w_gu, w_down)
        return self._logits(x[0, torch.tensor(last, dtype=torch.long)])

    @torch.inference_mode()
    def decode(self, tokens: list[int], positions: list[int]) -> torch.Tensor:
        """One step for the sequences in slots 0..B-1; token b sits at positions[b]. Returns [B, V]."""
        B = len(tokens)
        top = max(positions) + 1
        self.ensure_cache(B, top)
        p = torch.tensor(positions, dtype=torch.long)
        rot = self.freqs_cis[p].view(B, 1, 1, self.head_dim // 2)
        x = self.embed[torch.tensor(tokens, dtype=torch.long)].unsqueeze(1)  # [B, 1, H]
        bidx = torch.arange(B)
        mask = None
        if min(positions) + 1 != top:  # ragged batch: hide each row's positions beyond its own
            mask = (torch.arange(top).view(1, top) <= p.view(B, 1)).view(B, 1, 1, top)
        nq, d = self.n_heads, self.head_dim
        for li, (w_in, w_qkv, b_qkv, w_o, w_post, w_gu, w_down) in enumerate(self.layers):
            q, k, v = self._qkv(x, w_in, w_qkv, b_qkv, rot)
            kc, vc = self.kc[li], self.vc[li]
            kc[bidx, :, p] = k[:, 0]
            vc[bidx, :, p] = v[:, 0]
            o = F.scaled_dot_product_attention(
                q.transpose(1, 2), kc[:B, :, :top], vc[:B, :, :top], attn_mask=mask, enable_gqa=True
            )
            x = x + self._lin(o.transpose(1, 2).reshape(B, 1, nq * d), w_o)
            x = self._mlp(x, w_post, w_gu, w_down)
        return self._logits(x[:, 0])
