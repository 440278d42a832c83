"""Retrain the prompt-injection detector (guardrails/injection) from its own data plus labelled
examples: the job's training file (`{"text", "label"}` lines) and logged requests that feedback
labelled `injection` (a miss) or `benign` (a false hit).

The new weights are fit the way `guardrails.injection.train` fits them (the candidate the
shipped version chose, threshold on dev at ≤ 2% FPR per benign family), scored on the same
held-out test split, and registered only when no metric regressed beyond
`finetune.detector.tolerance` against the shipped version's metrics file. Extra examples that
duplicate a dataset text are dropped, so none can leak into dev or test.
"""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from finetune.errors import TrainingFailed
from finetune.flywheel import labelled_requests
from finetune.jobs import JobSpec
from finetune.modelio import public_name
from finetune.records import RegisteredModel
from finetune.service import FineTuning
from finetune.supervised import Control, Stopped


@functools.lru_cache(maxsize=2)
def _dataset(seed: int) -> list[Any]:
    """The detector's base dataset; deterministic per seed, so a long-lived worker builds it once."""
    from guardrails.injection.dataset import build_dataset

    return build_dataset(seed)


@dataclass(frozen=True)
class _Fit:
    """A calibrated detector's bytes and its test-split rates, as one job left them."""

    job: str
    artifact: bytes
    test: dict[str, Any]


# A retrain is a pure function of its inputs (five fits and a calibration: 183 s on a 2-core AVX2 VM,
# 285 s before the featurisation memo); a job resubmitted with the same inputs (say after the gate
# refused it and the baseline or tolerance changed) reuses the last fit. One entry: a detector is
# ~2 MB, and jobs run one at a time.
_last_fit: dict[str, _Fit] = {}


def fit_key(fingerprint: str, extra: list[Any], candidate: dict[str, Any], seed: int) -> str:
    """What decides a retrain's result: the base data, the extra examples, the candidate, the seed."""
    from guardrails.injection.train import VERSION

    h = hashlib.sha256(json.dumps([VERSION, fingerprint, candidate, seed], sort_keys=True).encode())
    for ex in extra:
        h.update(f"{ex.label}\x00{ex.source}\x00{ex.text}\x01".encode())
    return h.hexdigest()


def regressions(old: dict[str, Any], new: dict[str, Any], tolerance: float) -> list[str]:
    """What got worse, from two `rates` tables of the test split (empty: no regression)."""
    from guardrails.injection.train import macro_tpr

    out = []
    old_macro, new_macro = macro_tpr(old), macro_tpr(new)
    if new_macro < old_macro - tolerance:
        out.append(f"macro TPR {new_macro:.3f} < {old_macro:.3f}")
    for name, before in old.items():
        after = new.get(name)
        if not name.startswith("ALL") or after is None or not before.get("n"):
            continue
        if before["metric"] == "tpr" and after["rate"] < before["rate"] - tolerance:
            out.append(f"{name}: TPR {after['rate']:.3f} < {before['rate']:.3f}")
        if before["metric"] == "fpr" and after["rate"] > before["rate"] + tolerance:
            out.append(f"{name}: FPR {after['rate']:.3f} > {before['rate']:.3f}")
    return out


def _fit(split: dict[str, list[Any]], extra: list[Any], chosen: dict[str, Any], seed: int, job_dir: Path,
         check: Any) -> tuple[Any, dict[str, Any]]:
    """Fit on train + extra the way the shipped version was, calibrate it, and rate it on test."""
    from guardrails.injection import evaluation as ev
    from guardrails.injection import train as tr
    from guardrails.injection.detector import InjectionDetector
    from guardrails.injection.memo import memoised

    cand = tr.Candidate(**chosen)
    cfg = tr.feature_config()
    train = split["train"] + extra
    # One thread: as the shipped version was trained. The memo: five fits featurise the same texts.
    with tr.one_thread(), memoised():
        det = tr.fit(train, cfg, cand, seed)
        det.save(job_dir / ".candidate.npz")  # reload: the threshold is tuned on what ships (float16 weights)
        det = InjectionDetector.load(job_dir / ".candidate.npz")
        check()
        # The shipped detector's own calibration: the prompt threshold on dev, the document offsets on
        # dev + train scored out of fold, the prompt stage's offset on dev.
        tr.calibrate_cv(det, train, split["dev"], cfg, cand, seed, job_dir / ".fold.npz")
        tr.attach_prompt_stage(det, split["dev"])
        check()
        return det, ev.rates(split["test"], ev.score_all(det, split["test"]), det.threshold)


def run_detector(ft: FineTuning, spec: JobSpec, control: Control, worker: str) -> None:
    from guardrails.injection import evaluation as ev
    from guardrails.injection import train as tr
    from guardrails.injection.dataset import Example
    from guardrails.injection.detector import InjectionDetector
    from guardrails.injection.features import normalize as key_text

    settings = ft.settings.detector
    baseline = json.loads(ft.settings.resolve(settings.baseline_metrics, ft.root).read_text())
    say = ft.jobs.add_event

    def check() -> None:
        reason = control.stop_reason()
        if reason:
            raise Stopped(reason, 0)

    say(spec.id, f"Building the detector dataset (seed {settings.seed})")
    data = _dataset(settings.seed)
    known = {key_text(ex.text) for ex in data}
    extra: list[Example] = []
    from_file = [(ex.text, ex.label) for ex in ft.files.parsed(spec.training_file).labelled]
    from_log = labelled_requests(ft.engine, ft.feedback)
    for i, (text, label) in enumerate([*from_file, *from_log]):
        norm = key_text(text)
        if norm and norm not in known:
            known.add(norm)
            source = "finetune_file" if i < len(from_file) else "finetune_feedback"
            # A content-defined group: cross-validation folds follow groups, so a job id here would
            # make two jobs on the same inputs fit different detectors.
            group = "finetune:" + hashlib.sha1(norm.encode()).hexdigest()[:16]
            extra.append(Example(text, label, source, group, "train"))
    say(spec.id, f"{len(extra)} new labelled example(s): {len(from_file)} in the file, {len(from_log)} from "
                 f"feedback on logged requests, {len(from_file) + len(from_log) - len(extra)} duplicates dropped")
    check()
    split = {name: [ex for ex in data if ex.split == name] for name in ("train", "dev", "test")}
    job_dir = ft.job_dir(spec.id)
    job_dir.mkdir(parents=True, exist_ok=True)
    fingerprint = ev.fingerprint(data)
    key = fit_key(fingerprint, extra, baseline["chosen"], spec.seed)
    calibrated = job_dir / ".calibrated.npz"
    reused = _last_fit.get(key)
    if reused is not None:
        say(spec.id, f"Reusing the fit of {reused.job}: same data, labelled examples, candidate and seed")
        calibrated.write_bytes(reused.artifact)
        det, test = InjectionDetector.load(calibrated), reused.test
    else:
        fitted, test = _fit(split, extra, baseline["chosen"], spec.seed, job_dir, check)
        fitted.save(calibrated)
        det = InjectionDetector.load(calibrated)  # both paths serve what was saved
        _last_fit.clear()
        _last_fit[key] = _Fit(spec.id, calibrated.read_bytes(), test)
    worse = regressions(baseline["test"], test, settings.tolerance)
    summary = {"macro_tpr": tr.macro_tpr(test), "baseline_macro_tpr": tr.macro_tpr(baseline["test"]),
               "threshold": det.threshold, "extra_examples": len(extra)}
    say(spec.id, f"Held-out test: macro TPR {summary['macro_tpr']:.3f} (shipped {summary['baseline_macro_tpr']:.3f})",
        type="metrics", data={**summary, "test": {k: v["rate"] for k, v in test.items()}})
    if worse:
        raise TrainingFailed("The retrained detector regressed on held-out data: " + "; ".join(worse),
                             code="metrics_regressed")
    name = public_name(spec.model, spec.suffix, spec.id)
    version = f"injection-ft-{spec.id.removeprefix('ftjob-')[:8]}"
    det.version = version
    target = ft.models_dir / "guardrails" / f"{version}.npz"
    target.parent.mkdir(parents=True, exist_ok=True)
    det.save(target, {"trained_on": fingerprint, "seed": spec.seed, "candidate": baseline["chosen"],
                      "extra_examples": len(extra), "job": spec.id})
    InjectionDetector.load(target)  # what ships must load
    metrics = {"version": version, "threshold": det.threshold, "test": test, **summary}
    target.with_suffix(".metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    check()
    model = RegisteredModel(name=name, job_id=spec.id, base=spec.model, kind="guardrail", serving_name=version,
                            path=str(target), created_at=int(target.stat().st_mtime), metrics=summary)
    if not ft.queue.succeed(spec.id, worker, fine_tuned_model=name, trained_tokens=len(split["train"]) + len(extra),
                            result_files=[], model=model):
        target.unlink(missing_ok=True)
        raise Stopped("lost", 0)
