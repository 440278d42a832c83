"""Injections in other languages inside documents: the TEST split's ``multilingual_injections``
planted into the TEST split's long benign documents and scored in document mode.

The document model never trains on multilingual payloads (only the prompt model sees them, as user
messages), so this measures how far learning them as prompts carries into tool results and
retrieved chunks. Same ``plant`` surgery as training; grouped by what the injection asks.
"""

from __future__ import annotations

import random
from typing import Any

from evals.guardrails_detection.bipia_external import evaluate_rows, format_table, plant_in_test_documents
from guardrails.injection import InjectionDetector, sources
from guardrails.injection.dataset import Example, build_dataset

SOURCE = "multilingual_planted"
TITLE = "Multilingual injections (TEST split) planted in TEST documents (document mode never trained on them)"


def examples(seed: int = 13, base: list[Example] | None = None) -> list[tuple[str, Example]]:
    data = base if base is not None else build_dataset(seed)
    asks = {it.text: it.group.split(":", 1)[1] for it in sources.multilingual_injections()}
    payloads = [
        (asks[ex.text], ex.group, ex.text) for ex in data if ex.split == "test" and ex.source == "multilingual_injections"
    ]
    return plant_in_test_documents(data, payloads, random.Random(f"{seed}:plant:multilingual"), SOURCE)


def evaluate(detector: InjectionDetector, seed: int = 13, base: list[Example] | None = None) -> dict[str, Any]:
    return evaluate_rows(detector, examples(seed, base))


if __name__ == "__main__":
    print(format_table(evaluate(InjectionDetector.load()), TITLE))
