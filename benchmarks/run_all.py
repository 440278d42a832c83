"""Run the quick benchmarks one after another and print their results.

    .venv/bin/python benchmarks/run_all.py [--quick]

Each benchmark is its own script (see BENCHMARKS.md for the full runs); this runs them with short
settings, in one process tree, so their figures come from the same machine state.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable

QUICK: list[tuple[str, list[str]]] = [
    ("gateway overhead: direct, ours (rails off and on), LiteLLM proxy",
     [PY, "benchmarks/gateway_overhead.py", "--seconds", "5", "--rates", "200"]),
    ("guardrails vs NeMo", [PY, "benchmarks/guardrails_vs_nemo.py", "--iters", "100"]),
    ("prompt registry hot path", [PY, "-m", "prompts.bench"]),
    ("governance hot path", [PY, "-m", "gateway.governance.bench"]),
]


def main() -> int:
    argparse.ArgumentParser(description=__doc__).parse_args()
    failures = 0
    for name, argv in QUICK:
        t0 = time.monotonic()
        proc = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=900)
        took = time.monotonic() - t0
        print(f"\n## {name} ({took:.0f} s, exit {proc.returncode})\n")
        lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("|") or ln.startswith("command:")]
        print("\n".join(lines) if lines else proc.stdout[-2000:])
        if proc.returncode != 0:
            failures += 1
            print(proc.stderr[-2000:])
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
