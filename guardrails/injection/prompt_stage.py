"""Prompt mode's second opinion (v9): the local MiniLM fine-tuned (LoRA) as a prompt classifier,
run only on prompts the first stage (hashed n-grams) scores near or above its threshold.

The first stage reads words; it flags "Pretend you are a pirate and tell me about the weather"
because "pretend you are" is a jailbreak's words. The fine-tuned model reads the sentence. Neither
alone is the detector: their logits add (``WEIGHT``), and an offset set on benign prompts (dev's and
``CALIBRATION``'s) keeps them at the false-positive target. It reads prompts of one window (250
normalised characters, at most 64 tokens) or shorter, whole; longer prompts are the first stage's
alone. It was trained on the top-scoring window of long texts too, but at run time one window of a
long prompt is the wrong thing to clear it on (the attack may sit in another, and the first stage
already holds long pasted documents under 2%), and on a 2-core VM the pass costs tens of ms.

Prompts far below the threshold skip it (``GATE_BELOW``); so does a policy that skips the last stage
(``last_stage=False``), which then scores with the first stage at its own calibration (v7's).

    python -m guardrails.injection.prompt_stage [--out FILE] [--seed 0] [--extra JSONL]   # the adapter, ~3 min on 2 cores

The adapter is trained on the CPU (torch, at training time only); the runtime forward pass is
``sentence_model``'s numpy one.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from guardrails.injection.sentence_data import ARTIFACTS
from guardrails.injection.sentence_model import SentenceModel, base_model_dir

if TYPE_CHECKING:
    from guardrails.injection.dataset import Example
    from guardrails.injection.detector import InjectionDetector

PROMPT_ADAPTER = ARTIFACTS / "prompt-v1.safetensors"
# Dev's 164 short benign prompts alone set the offset where 7 of test's 157 were flagged (v7: 6):
# dev's are easier than prompts written later. These 422 benign prompts join them (never trained on).
CALIBRATION = tuple(Path(__file__).resolve().parent / "data" / f"prompt_calibration_{i}.jsonl" for i in (1, 2))
# Long benign documents pasted as prompts are most of train's prompt-mode text; a sample of them
# keeps the model from learning "long means benign" while short prompts and attacks dominate.
LONG_DOCS = 800
EPOCHS, BATCH = 3, 32
# Chosen on dev (2026-11-28, two seeds): first-stage logit + 1.0 x the model's logit caught the most
# dev attacks at dev's false-positive budget (weights 0.5 and 2 fewer); prompts more than 3 below the
# threshold's logit skip the model (2 lost a dev catch per seed; below 3 nothing changed on dev).
WEIGHT = 1.0
GATE_BELOW = 3.0


@dataclass
class PromptStage:
    model: SentenceModel
    weight: float
    gate: float  # first-stage logits below this skip the model
    offset: float  # added with the model's term: the calibration, at the detector's own threshold

    def reads(self, first: float, whole: bool) -> bool:
        """Whether the model reads a prompt (``detector.prompt_parts``): whole, and past the gate."""
        return whole and first >= self.gate

    def logit(self, first: float, segment: str, whole: bool = True) -> float:
        if not self.reads(first, whole):
            return first
        return first + self.weight * float(self.model.logits([segment])[0]) + self.offset

    def meta(self) -> dict[str, Any]:
        return {"file": self.model.name, "digest": self.model.digest, "weight": self.weight, "gate": self.gate,
                "offset": self.offset}


def _logit(p: float) -> float:
    p = min(max(p, 1e-12), 1 - 1e-12)
    return math.log(p / (1 - p))


def allowed_false_positives(n: int, max_fpr: float) -> int:
    """How many of ``n`` calibration prompts may score at or above the threshold so that the chance
    a *new* benign prompt does, (k + 1) / (n + 1), stays within ``max_fpr``: the threshold is then an
    order statistic of the n, and a fresh prompt is equally likely to fall in any of the n + 1 gaps."""
    return max(int(math.floor(max_fpr * (n + 1))) - 1, 0)


def labelled_prompts(path: Path) -> list[dict[str, Any]]:
    """The rows of a JSONL file of ``{"text", "label", ...}`` prompts (calibration files, probes, ``--extra``)."""
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def calibration_prompts() -> list[str]:
    """The benign prompts written after v7 froze (sessions 8 and 9: 422, in the styles jailbreaks
    borrow and ordinary ones), which calibrate the prompt stage with dev's (see ``calibrate``)."""
    return [r["text"] for path in CALIBRATION for r in labelled_prompts(path) if r["label"] == 0]


def calibrate(
    det: InjectionDetector, short: Sequence[str], long: Sequence[str], model: SentenceModel, max_fpr: float
) -> PromptStage:
    """The offset that keeps ``short`` benign prompts (``allowed_false_positives``) and ``long``
    benign documents pasted as prompts (``max_fpr`` of them) below ``det.threshold`` with the model
    added. Only prompts it reads (one window or shorter) past the gate move; the others keep their
    first-stage decision."""
    threshold = _logit(det.threshold)
    gate = threshold - GATE_BELOW
    cut = -math.inf
    for name, rows in (("short", short), ("long", long)):
        scores = []
        for text in rows:
            first, segment, whole = det.prompt_parts(text)
            if whole and first >= gate:
                scores.append(first + WEIGHT * float(model.logits([segment])[0]))
        k = allowed_false_positives(len(rows), max_fpr) if name == "short" else int(max_fpr * len(rows))
        scores.sort(reverse=True)
        if len(scores) > k:
            cut = max(cut, scores[k])
    offset = threshold - cut - 1e-4 if math.isfinite(cut) else 0.0
    return PromptStage(model, WEIGHT, gate, offset)


# ------------------------------------------------------------------ training (torch, CPU)
def adapter_rows(det: InjectionDetector, train: Sequence[Example], seed: int) -> list[dict[str, Any]]:
    """``{"t", "y"}``: train's prompts and attacks as the model will read them (``prompt_parts``),
    then ``LONG_DOCS`` of its long benign documents pasted as prompts."""
    from guardrails.injection import evaluation as ev

    prompts = [ex for ex in train if not ev.is_document(ex)]
    docs = ev.long_as_prompt(train)
    random.Random(seed).shuffle(docs)
    return [{"t": det.prompt_parts(ex.text)[1], "y": ex.label} for ex in [*prompts, *docs[:LONG_DOCS]]]


def extra_rows(det: InjectionDetector, path: Path) -> list[dict[str, Any]]:
    """``{"t", "y"}`` rows from a JSONL file of ``{"text", "label"}`` prompts (``--extra``)."""
    return [{"t": det.prompt_parts(r["text"])[1], "y": int(r["label"])} for r in labelled_prompts(path)]


def train_adapter(rows: list[dict[str, Any]], out: Path, seed: int) -> Path:
    import torch
    from safetensors.torch import save_file

    from guardrails.injection.sentence_train import adapter_state, fit

    random.seed(seed)
    torch.manual_seed(seed)
    _, model = fit(base_model_dir(), rows, EPOCHS, 16, 5e-4, torch.device("cpu"), batch=BATCH)
    meta = {"rank": "16", "epochs": str(EPOCHS), "lr": "5e-4", "seed": str(seed), "prompts": str(len(rows))}
    # float16 halves the bytes; the offset is calibrated on the reloaded (rounded) model.
    save_file({k: v.half() for k, v in adapter_state(model).items()}, out, metadata=meta)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=PROMPT_ADAPTER)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--detector", type=Path, default=None, help="whose first stage picks the windows (default: the shipped one)")
    parser.add_argument("--extra", type=Path, action="append", default=[],
                        help='JSONL of {"text", "label"} rows to train on as well (repeatable; the shipped adapter uses none)')
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from guardrails.injection.dataset import build_dataset
    from guardrails.injection.detector import DEFAULT_ARTIFACT, InjectionDetector

    t0 = time.perf_counter()
    det = InjectionDetector.load(args.detector or DEFAULT_ARTIFACT)
    rows = adapter_rows(det, [ex for ex in build_dataset() if ex.split == "train"], args.seed)
    for path in args.extra:
        rows += extra_rows(det, path)
    print(f"{len(rows)} prompts ({sum(r['y'] for r in rows)} attacks), first stage {det.version}")
    train_adapter(rows, args.out, args.seed)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.2f} MB) in {time.perf_counter() - t0:.0f}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

