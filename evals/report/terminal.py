"""The terminal table: per suite and target, each metric's statistics and each check's verdict."""

from __future__ import annotations

from evals.results import SuiteResult, TargetResult


def fmt(value: float | None, digits: int = 4) -> str:
    if value is None:
        return "—"
    if value == int(value) and abs(value) < 1e9:
        return str(int(value))
    return f"{value:.{digits}g}"


def _table(rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for n, row in enumerate(rows):
        lines.append("  " + "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
        if n == 0:
            lines.append("  " + "  ".join("-" * w for w in widths))
    return lines


def _target(t: TargetResult) -> list[str]:
    desc = t.spec.get("kind", "")
    if t.spec.get("model"):
        desc += f" {t.spec['model']}"
    if t.prompt_version:
        desc += f" prompt {t.spec.get('prompt', {}).get('name')} v{t.prompt_version}"
    lines = [f" target {t.name} ({desc.strip()}): {len(t.items)} items, {t.calls} calls, {t.cache_hits} cached, "
             f"{t.errors} errors, {t.duration_s:.1f}s" + ("" if t.spec.get("gate", True) else " [not gating]")]
    rows = [["metric", "value", "stat", "pass rate", "check", "status"]]
    by_metric: dict[str, list[str]] = {}
    for c in t.checks:
        if c.metric:
            by_metric.setdefault(c.metric, []).append(f"{c.stat} {c.op} {fmt(c.limit)}:{'PASS' if c.passed else 'FAIL'}")
    for name, m in t.metrics.items():
        checks = by_metric.get(name, [])
        status = "" if not checks else ("PASS" if all(x.endswith("PASS") for x in checks) else "FAIL")
        rows.append([name, fmt(m.value), m.primary, fmt(m.stats.get("pass_rate")),
                     ", ".join(x.rsplit(":", 1)[0] for x in checks), status])
    err = next(c for c in t.checks if c.kind == "errors")
    rows.append(["(errors)", fmt(err.actual), "rate", "", f"≤ {fmt(err.limit)}", "PASS" if err.passed else "FAIL"])
    lines += _table(rows)
    for w in t.warnings:
        lines.append(f"  warning: {w}")
    return lines


def render(result: SuiteResult) -> str:
    head = f"suite {result.suite}: {result.status.upper()}"
    if result.error:
        return f"{head} (the suite could not run)\n  {result.error_type}: {result.error}\n"
    lines = [f"{head} ({result.n_items} items, seed {result.seed}, {result.duration_s:.1f}s)"]
    for t in result.targets:
        lines += _target(t)
    for comp in result.comparisons:
        lines.append(f" compare {comp['metric']}: {comp['b']} vs {comp['a']}: {fmt(comp['a_value'])} → "
                     f"{fmt(comp['b_value'])}; {comp['n_diffs']} item(s) differ; {comp['paired']['note']}")
    for check in result.regression_checks:
        lines.append(f" baseline {check.target}: {'PASS' if check.passed else 'FAIL'} {check.message}")
    for check in (c for c in result.checks if not c.passed and c.gating):
        ids = check.items
        items = f" (items: {', '.join(ids[:10])}{' …' if len(ids) > 10 else ''})" if ids else ""
        lines.append(f" FAILED {check.target}: {check.message}{items}")
    return "\n".join(lines) + "\n"


def render_all(results: list[SuiteResult], exit_code: int) -> str:
    verdict = {0: "PASS", 1: "FAIL (a threshold or regression failed)", 2: "ERROR (a suite could not run)"}[exit_code]
    return "\n".join(render(r) for r in results) + f"\nresult: {verdict}; exit {exit_code}\n"
