"""The flywheel's detector retrain (``finetune.detector._fit``: five fits, the calibration, the test
split scored) with and without the featurisation memo (``guardrails.injection.memo``).

    python benchmarks/detector_retrain.py [--rounds 1]

Each run is its own process (a cold start, as a worker's first job), one at a time, alternating
memo off / on; the two artifacts must be byte-identical. Reports wall time and peak RSS per run.
A round is ~10 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import ROOT, machine  # noqa: E402

CHILD = r"""
import contextlib, json, resource, sys, time
from pathlib import Path
import guardrails.injection.memo as memo
if sys.argv[2] == "off":
    memo.memoised = contextlib.nullcontext
from finetune import detector as fd
from finetune.settings import DetectorSettings
out = Path(sys.argv[1])
settings = DetectorSettings()
baseline = json.loads(Path(settings.baseline_metrics).read_text())
seed = settings.seed
data = fd._dataset(seed)
split = {n: [ex for ex in data if ex.split == n] for n in ("train", "dev", "test")}
t0 = time.perf_counter()
det, test = fd._fit(split, [], baseline["chosen"], seed, out, lambda: None)
seconds = time.perf_counter() - t0
det.save(out / "detector.npz")
print(json.dumps({"seconds": seconds, "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def run(variant: str, out: Path) -> dict[str, float]:
    out.mkdir(parents=True)
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "-c", CHILD, str(out), variant], cwd=ROOT, env=env, check=True,
                          capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    runs: dict[str, list[dict[str, float]]] = {"off": [], "on": []}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            for variant in ("off", "on") if r % 2 == 0 else ("on", "off"):
                runs[variant].append(run(variant, Path(tmp) / f"{variant}-{r}"))
                print(f"  round {r} memo {variant}: {runs[variant][-1]}", flush=True)
        same = all((Path(tmp) / f"off-{r}" / "detector.npz").read_bytes()
                   == (Path(tmp) / f"on-{r}" / "detector.npz").read_bytes() for r in range(args.rounds))
    print(f"detector retrain (finetune.detector._fit, seed of the shipped version), {args.rounds} round(s), {machine()}")
    med = {v: statistics.median(x["seconds"] for x in rs) for v, rs in runs.items()}
    rss = {v: statistics.median(x["max_rss_mb"] for x in rs) for v, rs in runs.items()}
    for v in ("off", "on"):
        print(f"  memo {v:<3}  median {med[v]:6.1f} s   peak RSS {rss[v]:6.0f} MB")
    print(f"  off / on: {med['off'] / med['on']:.2f}x; artifacts byte-identical: {same}")
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
