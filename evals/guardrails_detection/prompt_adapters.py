"""Prompt-stage adapters side by side, each calibrated as the shipped one was.

    python -m evals.guardrails_detection.prompt_adapters A.safetensors [B.safetensors ...] [--sets dev,test,p4]

Each adapter replaces the shipped detector's prompt stage, with its offset set by
``train.attach_prompt_stage`` (dev's short benign prompts, the calibration prompts and dev's long
documents pasted as prompts, at the 2% budget); several adapters named with ``+`` are averaged (an
ensemble). Printed per adapter: prompts flagged per set (benign k/n, attacks k/n) at that offset. The
first stage (v7's) is the shipped one throughout, so only the adapter differs. Session 11 used it to
judge an adapter trained with probe 5's rows (``--extra`` of ``guardrails.injection.prompt_stage``).
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from evals.guardrails_detection import fresh_probe
from guardrails.injection import InjectionDetector
from guardrails.injection import evaluation as ev
from guardrails.injection.dataset import Example, build_dataset
from guardrails.injection.prompt_stage import labelled_prompts
from guardrails.injection.sentence_model import SentenceModel
from guardrails.injection.train import attach_prompt_stage

PROBES = {"p3": fresh_probe.DATA_3, "p4": fresh_probe.DATA_4, "p5": fresh_probe.DATA_5}


class Averaged:
    """Several prompt models read as one: the mean of their logits."""

    def __init__(self, models: list[SentenceModel]) -> None:
        self.models = models
        self.name = "+".join(m.name for m in models)
        self.digest = "+".join(m.digest for m in models)

    def logits(self, texts: list[str]) -> np.ndarray:
        return np.mean([m.logits(texts) for m in self.models], axis=0)


def labelled(name: str, split: dict[str, list[Example]]) -> list[tuple[str, int]]:
    """A set's prompts with labels: a split's short benign prompts and prompt attacks, or a probe."""
    if name in PROBES:
        return [(r["text"], int(r["label"])) for r in labelled_prompts(PROBES[name])]
    return [(ex.text, ex.label) for ex in split[name]
            if not ev.is_document(ex) and (ex.label == 1 or ex.source in ev.SHORT_BENIGN)]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("adapters", nargs="+", help="safetensors files; A+B averages two")
    parser.add_argument("--sets", default="dev,test,p3,p4,p5")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    det = InjectionDetector.load()
    data = build_dataset()
    split = {s: [ex for ex in data if ex.split == s] for s in ("dev", "test")}
    sets = {name: labelled(name, split) for name in args.sets.split(",")}
    for spec in args.adapters:
        models = [SentenceModel.load(Path(p)) for p in spec.split("+")]
        model = models[0] if len(models) == 1 else Averaged(models)
        attach_prompt_stage(det, split["dev"], model)  # type: ignore[arg-type]
        assert det.prompt_stage is not None
        offset, cells = det.prompt_stage.offset, []
        for name, rows in sets.items():
            flagged = [(label, det.score(text) >= det.threshold) for text, label in rows]
            k = [sum(f for lab, f in flagged if lab == y) for y in (0, 1)]
            n = [sum(1 for lab, _ in flagged if lab == y) for y in (0, 1)]
            cells.append(f"{name} {k[0]}/{n[0]} {k[1]}/{n[1]}")
        print(f"{spec}: offset {offset:+.3f}  " + "  ".join(cells), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
