"""The Markdown report: verdict, metrics per target, checks, comparisons, baseline, failing items."""

from __future__ import annotations

from evals.report.terminal import fmt
from evals.results import SuiteResult, TargetResult

MAX_ITEMS = 30


def _cell(text: object, limit: int = 120) -> str:
    s = str(text if text is not None else "").replace("\n", " ").replace("|", "\\|")
    return s if len(s) <= limit else s[: limit - 1] + "…"


def _target(r: SuiteResult, t: TargetResult) -> list[str]:
    kind = t.spec.get("kind")
    what = [f"kind `{kind}`"]
    if t.spec.get("model"):
        what.append(f"model `{t.spec['model']}`")
    if t.spec.get("prompt"):
        p = t.spec["prompt"]
        what.append(f"prompt `{p['name']}` ({'label ' + p['label'] if p.get('label') else 'v' + str(p.get('version'))}"
                    + (f" → v{t.prompt_version}" if t.prompt_version and p.get("label") else "") + ")")
    if t.spec.get("rails"):
        what.append(f"rails `{t.spec['rails']}`")
    lines = [f"### Target `{t.name}` — {'passed' if t.passed else 'FAILED'}", "",
             ", ".join(what) + f"; {len(t.items)} items, {t.calls} calls, {t.cache_hits} from cache, "
             f"{t.errors} errors, {t.duration_s:.1f} s.", ""]
    lines += ["| metric | value | statistic | pass rate | other statistics |", "|---|---|---|---|---|"]
    for name, m in t.metrics.items():
        others = ", ".join(f"{k} {fmt(v)}" for k, v in m.stats.items()
                           if k not in (m.primary, "pass_rate", "n") and v is not None)
        lines.append(f"| {name} | {fmt(m.value)} | {m.primary} | {fmt(m.stats.get('pass_rate'))} | {_cell(others, 200)} |")
    lines += ["", "| check | result | detail |", "|---|---|---|"]
    for c in t.checks + [c for c in r.regression_checks if c.target == t.name]:
        verdict = "pass" if c.passed else ("**FAIL**" if c.gating else "fail (not gating)")
        lines.append(f"| {_cell(c.name)} | {verdict} | {_cell(c.message, 300)} |")
    for w in t.warnings:
        lines.append(f"\n> warning: {w}")
    failing = [i for i in t.items if i.error or any(v is False for v in i.passed.values())]
    if failing:
        lines += ["", f"Failing items ({len(failing)}{', first ' + str(MAX_ITEMS) if len(failing) > MAX_ITEMS else ''}):",
                  "", "| item | category | input | output | failed |", "|---|---|---|---|---|"]
        for i in failing[:MAX_ITEMS]:
            out = f"[error] {i.error}" if i.error else ("[blocked] " if i.output.blocked else "") + (i.output.text or "")
            bad = ", ".join(k for k, v in i.passed.items() if v is False) or "call"
            lines.append(f"| {_cell(i.id, 40)} | {_cell(i.category, 30)} | {_cell(i.input, 80)} | {_cell(out, 120)} | {bad} |")
    lines.append("")
    return lines


def render_suite(r: SuiteResult) -> str:
    lines = [f"## Suite `{r.suite}` — {r.status.upper()}", ""]
    if r.description:
        lines += [r.description, ""]
    if r.error:
        lines += [f"The suite could not run ({r.error_type}):", "", "```", r.error, "```", ""]
        return "\n".join(lines)
    lines += [f"Dataset `{r.dataset}`, {r.n_items} items, seed {r.seed}, started {r.started_at}, "
              f"{r.duration_s:.1f} s.", ""]
    for t in r.targets:
        lines += _target(r, t)
    if r.comparisons:
        lines += ["### Comparison", "", "| metric | A | B | A value | B value | items that differ | significance |",
                  "|---|---|---|---|---|---|---|"]
        for c in r.comparisons:
            lines.append(f"| {c['metric']} | {c['a']} | {c['b']} | {fmt(c['a_value'])} | {fmt(c['b_value'])} | "
                         f"{c['n_diffs']} | {_cell(c['paired']['note'], 300)} |")
        for c in r.comparisons:
            if c["diffs"]:
                lines += ["", f"Per-item differences, {c['metric']} ({c['a']} → {c['b']}):", "",
                          "| item | A | B | A output | B output |", "|---|---|---|---|---|"]
                for d in c["diffs"][:MAX_ITEMS]:
                    lines.append(f"| {_cell(d['id'], 40)} | {fmt(d['a'])} | {fmt(d['b'])} | "
                                 f"{_cell(d['a_output'], 80)} | {_cell(d['b_output'], 80)} |")
        lines.append("")
    if r.baseline:
        lines += [f"### Against the baseline `{r.baseline['path']}`", "",
                  "| target | metric | baseline | now | Δ | regressed | newly failing | significance |",
                  "|---|---|---|---|---|---|---|---|"]
        for d in r.baseline["diffs"]:
            lines.append(f"| {d['target']} | {d['metric']}.{d['stat']} | {fmt(d['baseline'])} | {fmt(d['current'])} | "
                         f"{d['delta']:+.4g} | {'**yes**' if d['regressed'] else 'no'} | "
                         f"{_cell(', '.join(d['newly_failing']), 80)} | {_cell(d['paired']['note'], 200)} |")
        lines.append("")
    return "\n".join(lines)


def render(results: list[SuiteResult], exit_code: int) -> str:
    verdict = {0: "passed", 1: "FAILED (a threshold or regression failed)", 2: "ERROR (a suite could not run)"}[exit_code]
    lines = ["# Evaluation report", "", f"Result: **{verdict}** (exit code {exit_code}).", "",
             "| suite | status | items | targets | failed checks |", "|---|---|---|---|---|"]
    for r in results:
        failed = sum(1 for c in r.checks if not c.passed and c.gating)
        lines.append(f"| {r.suite} | {r.status} | {r.n_items} | {', '.join(t.name for t in r.targets)} | {failed} |")
    lines.append("")
    return "\n".join(lines) + "\n" + "\n".join(render_suite(r) for r in results)
