"""Experiment (did not ship): the detector retrained with multilingual rows that only train.

    python -m evals.guardrails_detection.multilingual_moves [--out DIR]   # ~20 min on 2 cores

``data/multilingual_moves.jsonl`` holds 47 attack moves and 51 look-alike benign requests, each in
twelve languages (1,174 rows), written in session 13 by a helper that never saw the detector's data,
from a list of injection and jailbreak moves; three intents that list named after the test split's
misses had been read were dropped before any training. The rows join the training split only, under
the two multilingual sources' names (so those keep their share of the sample weight), less any row
that copies a dataset text or nearly copies a dev or test one (``dedup.near_copies``).

The detector is refitted twice the way the flywheel refits it (``finetune.detector._fit``: v9's
candidate, seed and calibration), without and with the rows, and both are scored side by side on
dev, test and probes 3-6, so only the rows differ (v9 itself is not reproduced to the row on every
CPU kind). Session 13's result is in BENCHMARKS.md: test short direct attacks 30 -> 36 of 38 at the
same 4 of 157 short benign flagged, but jailbreaks 130 -> 125 of 132 and probe 6's benign prompts
19 -> 44 of 360 flagged (attacks 110 -> 170 of 360).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from evals.guardrails_detection import fresh_probe
from finetune.settings import DetectorSettings
from guardrails.injection.dataset import Example, build_dataset
from guardrails.injection.dedup import near_copies
from guardrails.injection.features import normalize
from guardrails.injection.prompt_stage import labelled_prompts

ROWS = Path(__file__).resolve().parent / "data" / "multilingual_moves.jsonl"
ROOT = Path(__file__).resolve().parents[2]
PROBES = {"probe 3": fresh_probe.DATA_3, "probe 4": fresh_probe.DATA_4, "probe 5": fresh_probe.DATA_5,
          "probe 6": fresh_probe.DATA_6}


def training_rows(data: Sequence[Example], path: Path = ROWS) -> list[Example]:
    """The file's rows as training examples, less copies of a dataset text and near copies of a
    held-out one: what is held out must not be trained on."""
    seen = {normalize(ex.text) for ex in data}
    fresh: list[Example] = []
    for row in labelled_prompts(path):
        key = normalize(row["text"])
        if key and key not in seen:
            seen.add(key)
            source = "multilingual_injections" if row["label"] else "multilingual_prompts"
            fresh.append(Example(row["text"], int(row["label"]), source, f"ml:{row['group']}", "train"))
    held_out = [ex.text for ex in data if ex.split in ("dev", "test")]
    copies = near_copies([ex.text for ex in fresh], held_out)
    return [ex for ex, copy in zip(fresh, copies, strict=True) if not copy]


def refit(data: Sequence[Example], extra: list[Example], job_dir: Path, settings: DetectorSettings) -> dict[str, Any]:
    """Dev, test and probe rates of the detector refitted on train + ``extra``, as the flywheel would."""
    from finetune.detector import _fit
    from guardrails.injection import evaluation as ev

    split = {name: [ex for ex in data if ex.split == name] for name in ("train", "dev", "test")}
    chosen = json.loads((ROOT / settings.baseline_metrics).read_text())["chosen"]
    det, test = _fit(split, extra, chosen, settings.seed, job_dir, lambda: None)
    out = {"threshold": det.threshold, "test": test,
           "dev": ev.rates(split["dev"], ev.score_all(det, split["dev"]), det.threshold)}
    out |= {name: fresh_probe.evaluate(det, path) for name, path in PROBES.items()}
    return out


def format_side_by_side(without: dict[str, Any], with_rows: dict[str, Any]) -> str:
    lines = [f"{'row':<66} {'without':>12} {'with rows':>12}",
             f"{'threshold':<66} {without['threshold']:>12.3f} {with_rows['threshold']:>12.3f}"]
    for split in ("test", "dev"):
        for key, a in without[split].items():
            b = with_rows[split].get(key)
            cell_b = f"{b['k']}/{b['n']}" if b else "-"
            lines.append(f"{(split + ' ' + key)[:66]:<66} {a['k']:>6}/{a['n']:<5} {cell_b:>12}")
    for name in PROBES:
        for metric, what in (("fpr", "benign flagged"), ("tpr", "attacks caught")):
            a, b = without[name][metric], with_rows[name][metric]
            lines.append(f"{name + ' ' + what:<66} {a['k']:>6}/{a['n']:<5} {b['k']:>6}/{b['n']:<5}")
            for lang, c in a.get("per_lang", {}).items():
                d = b["per_lang"][lang]
                lines.append(f"{'  ' + lang:<66} {c['k']:>6}/{c['n']:<5} {d['k']:>6}/{d['n']:<5}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("var/multilingual_moves"))
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    t0 = time.perf_counter()
    settings = DetectorSettings()
    data = build_dataset(settings.seed)
    extra = training_rows(data)
    print(f"{len(extra)} training rows ({sum(ex.label for ex in extra)} attacks)", flush=True)
    results = {}
    for name, rows in (("without", []), ("with_rows", extra)):
        (args.out / name).mkdir(parents=True, exist_ok=True)
        results[name] = refit(data, rows, args.out / name, settings)
        print(f"  refit {name}: {time.perf_counter() - t0:.0f}s", flush=True)
    print(format_side_by_side(results["without"], results["with_rows"]))
    (args.out / "results.json").write_text(json.dumps(results, indent=1, ensure_ascii=False) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
