"""Injection detector on the held-out TEST split, per source, with Wilson intervals."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from guardrails.injection import DEFAULT_ARTIFACT, InjectionDetector
from guardrails.injection import evaluation as ev
from guardrails.injection.dataset import EVAL_ONLY, build_dataset


def artifact_meta(path: Path) -> dict[str, Any]:
    import numpy as np

    with np.load(path, allow_pickle=False) as z:
        meta: dict[str, Any] = json.loads(str(z["meta"]))
    return meta


def evaluate(artifact: Path = DEFAULT_ARTIFACT) -> dict[str, Any]:
    detector = InjectionDetector.load(artifact)
    meta = artifact_meta(artifact)
    data = build_dataset(int(meta.get("seed", 13)))
    fingerprint = ev.fingerprint(data)
    if fingerprint != meta.get("trained_on"):
        # Another interpreter or changed data files: splits may differ from training,
        # so "test" may contain training rows. Say so loudly instead of reporting quietly.
        print(
            f"WARNING: data fingerprint {fingerprint} != artifact's {meta.get('trained_on')}; "
            "the test split may not be held out for this artifact",
            file=sys.stderr,
        )
    test = [ex for ex in data if ex.split == "test"]
    info = [ex for ex in data if ex.split == EVAL_ONLY]
    skipped = ev.without_last_stage(detector, test, detector.threshold)
    return {
        "artifact": artifact.name,
        "threshold": detector.threshold,
        "data_fingerprint": fingerprint,
        "fingerprint_matches_artifact": fingerprint == meta.get("trained_on"),
        # Documents in document mode (retrieval chunks, tool results), everything else as prompts;
        # plus the long documents once more as if a user had pasted them (prompt mode).
        "test": ev.rates(test, ev.score_all(detector, test), detector.threshold)
        | ev.prompt_mode_row(detector, test, detector.threshold),
        "informational": ev.rates(info, ev.score_all(detector, info), detector.threshold),
        **({} if skipped is None else {"test_without_last_stage": skipped}),
    }


def format_tables(result: dict[str, Any]) -> str:
    return "\n\n".join(
        [
            ev.format_rates(
                f"Injection detector {result['artifact']} on TEST split (threshold {result['threshold']:.3f}, "
                "tuned on dev for <=2% FPR on long benign, as documents and as prompts, and on short benign)",
                result["test"],
            ),
            ev.format_rates(
                "Not injection attempts, never trained on (flag rate, informational)", result["informational"]
            ),
            *(
                [ev.format_rates("Documents with the last stage skipped (params.document_last_stage: false), TEST split",
                                 result["test_without_last_stage"])]
                if "test_without_last_stage" in result
                else []
            ),
        ]
    )


if __name__ == "__main__":
    print(format_tables(evaluate()))
