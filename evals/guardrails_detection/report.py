"""Held-out metrics for the fast rails: ``python -m evals.guardrails_detection.report``.

Prints the tables and writes ``evals/guardrails_detection/results.json``. Only held-out
data is reported: presidio rows 500-999 (rows 0-499 were used to tune the patterns) and
the injection detector's seeded TEST split (threshold chosen on dev), BIPIA's separate test
file of indirect instructions planted into TEST documents (see ``bipia_external``), and the TEST
split's multilingual injections planted the same way (see ``multilingual_planted``), the TEST split's
prompts hidden in base64 and hex (see ``encoded_payloads``), and six probes
(see ``fresh_probe``): two written after v7 was frozen (since v9 their benign prompts calibrate the
prompt stage, so the shipped detector's false-positive rate on them is in sample), four after v9.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections import Counter
from pathlib import Path
from typing import Any

from evals.guardrails_detection import (
    bipia_external,
    encoded_payloads,
    fresh_probe,
    injection_eval,
    multilingual_planted,
    pii_eval,
)

RESULTS = Path(__file__).resolve().parent / "results.json"


def pii_on_benign_docs() -> dict[str, Any]:
    """How often the PII rail fires on benign docs/code (test split): a rough false-alarm gauge.

    Not all hits are wrong (stdlib docs do contain example IPs and e-mails), so this is
    reported as hits per 100 documents, not as a precision.
    """
    from guardrails.injection.dataset import build_dataset
    from guardrails.injection.evaluation import LONG_BENIGN
    from guardrails.pii import find_entities

    docs = [ex.text for ex in build_dataset() if ex.split == "test" and ex.source in LONG_BENIGN[:-1]]
    hits: Counter[str] = Counter()
    docs_with_hit = 0
    for text in docs:
        found = find_entities(text)
        hits.update(e.type for e in found)
        docs_with_hit += bool(found)
    return {"documents": len(docs), "documents_with_any_hit": docs_with_hit, "hits_by_type": dict(hits.most_common())}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    t0 = time.perf_counter()
    pii = pii_eval.evaluate(pii_eval.load_rows(pii_eval.HELDOUT_ROWS))
    pii["benign_docs"] = pii_on_benign_docs()
    inj = injection_eval.evaluate()
    from guardrails.injection import InjectionDetector

    detector = InjectionDetector.load()
    inj["external_indirect"] = bipia_external.evaluate(detector)
    inj["multilingual_planted"] = multilingual_planted.evaluate(detector)
    inj["encoded_payloads"] = encoded_payloads.evaluate(detector)
    probes = {"fresh_probe": fresh_probe.DATA, "fresh_probe_2": fresh_probe.DATA_2, "fresh_probe_3": fresh_probe.DATA_3,
              "fresh_probe_4": fresh_probe.DATA_4, "fresh_probe_5": fresh_probe.DATA_5,
              "fresh_probe_6": fresh_probe.DATA_6}
    for key, path in probes.items():
        inj[key] = fresh_probe.evaluate(detector, path)
    print(pii_eval.format_table(pii))
    b = pii["benign_docs"]
    print(
        f"PII hits on {b['documents']} benign test docs/code chunks: {b['documents_with_any_hit']} docs, {b['hits_by_type']}"
    )
    print()
    print(injection_eval.format_tables(inj))
    print()
    print(bipia_external.format_table(inj["external_indirect"]))
    print()
    print(bipia_external.format_table(inj["multilingual_planted"], multilingual_planted.TITLE))
    print()
    print(encoded_payloads.format_table(inj["encoded_payloads"]))
    for key, path in probes.items():
        print()
        print(fresh_probe.format_table(inj[key], fresh_probe.TITLES[path]))
    results = {"pii": pii, "injection": inj, "seconds": round(time.perf_counter() - t0, 1)}
    args.out.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
