"""The injection detector on probes written after it was frozen: benign prompts and direct
injections, as user prompts, per group. The first (session 8, after v7) is 72 benign and 30 attacks;
the second (session 9, after v7) 350 benign and 25 attacks; the third (session 10, after v9) 155
benign and 29 attacks; the fourth (session 11, after v9, written by a helper that never saw the
detector's data) 156 benign and 39 attacks; the fifth (session 11, by another such helper, as
training data for a prompt adapter that did not ship, so v9 never saw it) 298 benign and 134 attacks
in the shapes v9 gets wrong; the sixth (session 13, after v9, by a helper blind to the data and to
the list of attack moves the training rows were written from) 30 attacks and 30 hard benign
intents, each in twelve languages (720 rows), reported per language too. The last four are
evaluation only (``--first-stage-only`` prints v7's
prompt mode beside them).

Until v9 they were evaluation only. Since v9 their benign prompts calibrate the prompt stage's offset
(``guardrails/injection/prompt_stage.py``, where the files now live): v9's false-positive figures on
them are in-sample, its attack figures are not (no attack is calibrated on). v7's figures (score with
``last_stage=False``) stay out of sample. The same hands wrote the probes, the data and the cue rules."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from guardrails.injection import InjectionDetector
from guardrails.injection.metrics import wilson
from guardrails.injection.prompt_stage import CALIBRATION, labelled_prompts

DATA, DATA_2 = CALIBRATION
DATA_3 = Path(__file__).resolve().parent / "data" / "fresh_probe_3.jsonl"
DATA_4 = DATA_3.with_name("fresh_probe_4.jsonl")
DATA_5 = DATA_3.with_name("fresh_probe_5.jsonl")
DATA_6 = DATA_3.with_name("fresh_probe_6.jsonl")
TITLES = {
    DATA: "Probe 1 (written after v7 was frozen; since v9 its benign prompts calibrate the prompt stage)",
    DATA_2: "Probe 2 (session 9, after v7 was frozen; since v9 its benign prompts calibrate the prompt stage)",
    DATA_3: "Probe 3 (session 10, written after v9 was frozen; evaluation only)",
    DATA_4: "Probe 4 (session 11, after v9, by a helper blind to the data; evaluation only)",
    DATA_5: "Probe 5 (session 11, hard shapes, written as training data for an adapter that did not ship; v9 never saw it)",
    DATA_6: "Probe 6 (session 13, after v9, by a helper blind to the data; 60 intents, 12 languages; evaluation only)",
}


def evaluate(detector: InjectionDetector, path: Path = DATA, last_stage: bool = True) -> dict[str, Any]:
    """Flag rates per group (and per language where rows carry ``lang``); ``last_stage=False``:
    prompts as v7 scored them (no prompt stage)."""
    # (label, group or language) -> [flagged, rows], one table per key the rows carry
    cells: dict[str, dict[tuple[int, str], list[int]]] = {"group": {}, "lang": {}}
    for row in labelled_prompts(path):
        flagged = detector.score(row["text"], last_stage=last_stage) >= detector.threshold
        for kind, table in cells.items():
            if kind in row:
                cell = table.setdefault((row["label"], row[kind]), [0, 0])
                cell[0] += flagged
                cell[1] += 1
    out: dict[str, Any] = {}
    for label, metric in ((0, "fpr"), (1, "tpr")):
        per = {kind: {g: {"k": k, "n": n} for (lab, g), (k, n) in table.items() if lab == label}
               for kind, table in cells.items()}
        groups = per["group"].values()
        out[metric] = {**wilson(sum(c["k"] for c in groups), sum(c["n"] for c in groups)).as_dict(),
                       "per_group": per["group"]}
        if per["lang"]:
            out[metric]["per_lang"] = per["lang"]
    return out


def format_table(result: dict[str, Any], title: str = TITLES[DATA]) -> str:
    lines = [title, f"{'group':<50} {'rate (k/n)'}"]
    for metric in ("fpr", "tpr"):
        r = result[metric]
        for group, c in r["per_group"].items():
            lines.append(f"{metric + ' ' + group:<50} {100 * c['k'] / c['n']:5.1f}% ({c['k']}/{c['n']})")
        for lang, c in r.get("per_lang", {}).items():
            lines.append(f"{metric + ' language ' + lang:<50} {100 * c['k'] / c['n']:5.1f}% ({c['k']}/{c['n']})")
        lines.append(
            f"{metric + ' ALL':<50} {100 * r['rate']:5.1f}% [{100 * r['low']:5.1f}, {100 * r['high']:5.1f}] ({r['k']}/{r['n']})"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    import sys

    detector = InjectionDetector.load()
    first_only = "--first-stage-only" in sys.argv[1:]  # v7's prompt mode, for side-by-side figures
    suffix = " [first stage only]" if first_only else ""
    print("\n\n".join(format_table(evaluate(detector, path, not first_only), title + suffix) for path, title in TITLES.items()))
