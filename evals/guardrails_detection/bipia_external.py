"""A second held-out set for indirect injection: BIPIA's own *test* instructions.

``../shared/data`` holds BIPIA's 75 train-file text instructions, and the seeded split leaves
only 15 of them (3 categories) for test, so one instruction moves the text TPR by ~7 points.
``data/bipia_text_attack_test.json`` is BIPIA's separate test file (microsoft/BIPIA @
5a48626a, benchmark/text_attack_test.json, MIT, see data/README.md): 75 other instructions in
15 other categories, never trained or tuned on. Each is planted into 4 long benign documents of
the seeded TEST split (same ``plant`` surgery and seed scheme as training), scored in document mode.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from guardrails.injection import InjectionDetector
from guardrails.injection.dataset import PLANTS_PER_INSTRUCTION, Example, _hosts, build_dataset, plant
from guardrails.injection.metrics import wilson

DATA = Path(__file__).resolve().parent / "data" / "bipia_text_attack_test.json"
SOURCE = "bipia_text_external"


def plant_in_test_documents(
    data: list[Example], payloads: Iterable[tuple[str, str, str]], rng: random.Random, source: str
) -> list[tuple[str, Example]]:
    """(category, planted example) for each (category, group, payload) x ``PLANTS_PER_INSTRUCTION`` of
    ``data``'s TEST documents, with training's ``plant`` surgery."""
    hosts = _hosts(data, "test")
    out = []
    for category, group, payload in payloads:
        for host in rng.sample(hosts, PLANTS_PER_INSTRUCTION):
            text, span = plant(host.text, payload, rng)
            out.append((category, Example(text, 1, source, group, "test", span)))
    return out


def examples(seed: int = 13, base: list[Example] | None = None) -> list[tuple[str, Example]]:
    """(category, planted example) for every external instruction x ``PLANTS_PER_INSTRUCTION`` hosts."""
    data = base if base is not None else build_dataset(seed)
    payloads = [
        (category, f"external:{category}", instruction)
        for category, instructions in json.loads(DATA.read_text(encoding="utf-8")).items()
        for instruction in instructions
    ]
    return plant_in_test_documents(data, payloads, random.Random(f"{seed}:plant:external"), SOURCE)


def evaluate(detector: InjectionDetector, seed: int = 13, base: list[Example] | None = None) -> dict[str, Any]:
    return evaluate_rows(detector, examples(seed, base))


def evaluate_rows(detector: InjectionDetector, rows: list[tuple[str, Example]]) -> dict[str, Any]:
    """TPR of planted (category, example) rows in document mode, overall and per category."""
    hits = [detector.score(ex.text, document=True) >= detector.threshold for _, ex in rows]
    per_category: dict[str, list[int]] = {}
    for (category, _), hit in zip(rows, hits, strict=True):
        cell = per_category.setdefault(category, [0, 0])
        cell[0] += hit
        cell[1] += 1
    return {
        "metric": "tpr",
        **wilson(sum(hits), len(hits)).as_dict(),
        "per_category": {c: wilson(k, n).as_dict() for c, (k, n) in per_category.items()},
    }


TITLE = "BIPIA test-file text instructions planted in TEST documents (never trained or tuned on)"


def format_table(result: dict[str, Any], title: str = TITLE) -> str:
    lines = [
        title,
        f"{'category':<50} {'tpr (k/n)'}",
    ]
    for category, r in result["per_category"].items():
        lines.append(f"{category:<50} {100 * r['rate']:5.1f}% ({r['k']}/{r['n']})")
    lines.append(
        f"{'ALL':<50} {100 * result['rate']:5.1f}% [{100 * result['low']:5.1f}, {100 * result['high']:5.1f}] "
        f"({result['k']}/{result['n']})"
    )
    return "\n".join(lines)


if __name__ == "__main__":
    print(format_table(evaluate(InjectionDetector.load())))
