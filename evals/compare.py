"""Comparisons: two or more targets in one run (per-item diffs + paired significance), and a run
against a baseline results file (regression checks)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from evals.errors import SuiteError
from evals.metrics.base import Metric
from evals.results import Check, ItemResult, TargetResult
from evals.stats import compare

MAX_DIFFS = 50


def _preview(item: ItemResult | dict[str, Any] | None) -> str | None:
    if item is None:
        return None
    out = item.output.to_dict() if isinstance(item, ItemResult) else item.get("output", {})
    if out.get("error"):
        return f"[error] {out['error']}"[:200]
    if out.get("blocked"):
        return f"[blocked:{out.get('blocked_stage')}]"
    return (out.get("text") or "")[:200]


def compare_targets(targets: list[TargetResult], metrics: dict[str, Metric], seed: int) -> list[dict[str, Any]]:
    """Each target against the first one, metric by metric, on the items both scored."""
    if len(targets) < 2:
        return []
    ref = targets[0]
    out = []
    for other in targets[1:]:
        by_id = {i.id: i for i in other.items}
        for name, metric in metrics.items():
            ref_by_id = {i.id: i for i in ref.items}
            ids = [i.id for i in ref.items if i.id in by_id]
            a = [ref_by_id[i].value(name) for i in ids]
            b = [by_id[i].value(name) for i in ids]
            mr = ref.metrics.get(name)
            pass_mark = mr.item_threshold if mr and mr.item_threshold is not None else 0.5
            paired = compare(a, b, pass_mark=pass_mark, seed=seed, higher_is_better=metric.higher_is_better)
            diffs: list[dict[str, Any]] = []
            for iid, va, vb in zip(ids, a, b, strict=True):
                if va == vb:
                    continue
                diffs.append({"id": iid, "a": va, "b": vb, "delta": None if va is None or vb is None else vb - va,
                              "a_output": _preview(ref_by_id[iid]), "b_output": _preview(by_id[iid])})
            diffs.sort(key=lambda d: -abs(d["delta"] or 0))
            out.append({"metric": name, "a": ref.name, "b": other.name,
                        "a_value": ref.metrics[name].value if name in ref.metrics else None,
                        "b_value": other.metrics[name].value if name in other.metrics else None,
                        "paired": paired.to_dict(), "n_diffs": len(diffs), "diffs": diffs[:MAX_DIFFS]})
    return out


def load_baseline(path: Path, suite: str) -> dict[str, Any]:
    """The suite's results in a baseline file (a results JSON, single suite or {"suites": [...]})."""
    if not path.is_file():
        raise SuiteError(f"baseline file not found: {path}")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise SuiteError(f"baseline {path} is not JSON: {err}") from None
    candidates = doc.get("suites", [doc]) if isinstance(doc, dict) else []
    for cand in candidates:
        if isinstance(cand, dict) and cand.get("suite") == suite and isinstance(cand.get("targets"), list):
            if cand.get("status") == "error":
                raise SuiteError(f"baseline {path}: the run of suite {suite!r} it holds had failed to run")
            return cand
    names = [c.get("suite") for c in candidates if isinstance(c, dict)]
    raise SuiteError(f"baseline {path} has no results for suite {suite!r} (it has {names})")


def _baseline_target(doc: dict[str, Any], target: TargetResult, n_current: int) -> dict[str, Any] | None:
    targets = doc["targets"]
    for t in targets:
        if t.get("name") == target.name:
            return t  # type: ignore[no-any-return]
    if len(targets) == 1 and n_current == 1:
        return targets[0]  # type: ignore[no-any-return]
    return None


def regression_checks(doc: dict[str, Any], targets: list[TargetResult], metrics: dict[str, Metric],
                      tolerances: dict[str, float | None], default_tolerance: float, require_significance: bool,
                      seed: int, gating: dict[str, bool]) -> tuple[list[Check], list[dict[str, Any]]]:
    checks: list[Check] = []
    diffs: list[dict[str, Any]] = []
    for target in targets:
        base = _baseline_target(doc, target, len(targets))
        if base is None:
            names = [t.get("name") for t in doc["targets"]]
            checks.append(Check("regression", target.name, f"{target.name}: baseline", False,
                                f"the baseline has no target named {target.name!r} (it has {names})",
                                gating=gating.get(target.name, True)))
            continue
        base_items = {i["id"]: i for i in base.get("items", [])}
        for name, metric in metrics.items():
            tol = tolerances.get(name)
            if tol is None and not metric.regression:
                continue
            tol = default_tolerance if tol is None else tol
            current = target.metrics.get(name)
            base_metric = (base.get("metrics") or {}).get(name)
            if current is None or base_metric is None:
                continue
            stat = current.primary
            now, before = current.stats.get(stat), (base_metric.get("stats") or {}).get(stat)
            if now is None or before is None:
                continue
            delta = now - before
            worse = delta < -tol if metric.higher_is_better else delta > tol
            ids = [i.id for i in target.items if i.id in base_items]
            a = [(base_items[i]["scores"].get(name) or {}).get("value") for i in ids]
            cur_by_id = {i.id: i for i in target.items}
            b = [cur_by_id[i].value(name) for i in ids]
            mark = current.item_threshold if current.item_threshold is not None else 0.5
            paired = compare(a, b, pass_mark=mark, seed=seed, higher_is_better=metric.higher_is_better)
            newly_failing = [i for i in ids if (base_items[i].get("passed") or {}).get(name) is True
                             and cur_by_id[i].passed.get(name) is False]
            newly_passing = [i for i in ids if (base_items[i].get("passed") or {}).get(name) is False
                             and cur_by_id[i].passed.get(name) is True]
            regressed = worse and (paired.significant or not require_significance)
            op = "≥" if metric.higher_is_better else "≤"
            limit = before - tol if metric.higher_is_better else before + tol
            msg = (f"{name}.{stat} = {now:.4g} vs baseline {before:.4g} (Δ {delta:+.4g}, tolerance {tol:g}); "
                   f"{paired.note}")
            if worse and not regressed:
                msg += "; not failed: require_significance is set and the drop is not significant"
            checks.append(Check("regression", target.name, f"{name}.{stat} {op} baseline {limit:.4g}",
                                not regressed, msg, metric=name, stat=stat, op=op, limit=limit, actual=now,
                                items=newly_failing, gating=gating.get(target.name, True)))
            diffs.append({"target": target.name, "metric": name, "stat": stat, "baseline": before, "current": now,
                          "delta": delta, "tolerance": tol, "regressed": regressed, "paired": paired.to_dict(),
                          "newly_failing": newly_failing, "newly_passing": newly_passing})
    return checks, diffs
