"""Plots for the HTML report (matplotlib, Agg backend), returned as base64 PNG data URIs.

Score distributions per metric (all targets overlaid), per-category means, targets side by side, and
current run against the baseline. Without matplotlib the report says so instead of plotting.
"""

from __future__ import annotations

import base64
import io
from typing import Any

from evals.results import SuiteResult

Plot = tuple[str, str]  # (title, data URI)


def available() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def _png(fig: Any) -> str:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _figure(width: float = 6.0, height: float = 3.0) -> tuple[Any, Any]:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=(width, height))


def distributions(result: SuiteResult) -> list[Plot]:
    plots: list[Plot] = []
    if not result.targets:
        return plots
    for name, metric in result.targets[0].metrics.items():
        series: dict[str, list[float]] = {}
        for t in result.targets:
            values = [v for v in (i.value(name) for i in t.items) if v is not None]
            if values:
                series[t.name] = values
        if not series:
            continue
        fig, ax = _figure()
        lo = min(min(v) for v in series.values())
        hi = max(max(v) for v in series.values())
        bins = 10 if hi > lo else 1
        ax.hist(list(series.values()), bins=bins, range=(lo, hi if hi > lo else lo + 1), label=list(series),
                alpha=0.8)
        ax.set_title(f"{name}: per-item scores")
        ax.set_xlabel(f"{metric.metric} value")
        ax.set_ylabel("items")
        from matplotlib.ticker import MaxNLocator

        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        if len(series) > 1:
            ax.legend()
        plots.append((f"Distribution of {name}", _png(fig)))
    return plots


def _grouped_bars(title: str, groups: list[str], series: dict[str, list[float | None]], ylabel: str) -> str:
    fig, ax = _figure(max(6.0, 0.6 * len(groups) * max(1, len(series))), 3.2)
    width = 0.8 / max(1, len(series))
    for k, (label, values) in enumerate(series.items()):
        xs = [g + k * width for g in range(len(groups))]
        ax.bar(xs, [v if v is not None else 0 for v in values], width=width, label=label)
    ax.set_xticks([g + width * (len(series) - 1) / 2 for g in range(len(groups))])
    ax.set_xticklabels(groups, rotation=20, ha="right")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    if len(series) > 1:
        ax.legend()
    return _png(fig)


def categories(result: SuiteResult) -> list[Plot]:
    plots: list[Plot] = []
    if not result.targets:
        return plots
    cats = sorted({i.category for t in result.targets for i in t.items if i.category})
    if not cats:
        return plots
    for name, metric in result.targets[0].metrics.items():
        if not metric.higher_is_better:
            continue
        series: dict[str, list[float | None]] = {}
        for t in result.targets:
            means: list[float | None] = []
            for c in cats:
                vals = [i.value(name) for i in t.items if i.category == c and i.value(name) is not None]
                means.append(sum(v for v in vals if v is not None) / len(vals) if vals else None)
            series[t.name] = means
        plots.append((f"{name} by category", _grouped_bars(f"{name}: mean per category", cats, series, "mean")))
    return plots


def targets(result: SuiteResult) -> list[Plot]:
    if len(result.targets) < 2:
        return []
    names = [n for n, m in result.targets[0].metrics.items() if m.higher_is_better]
    if not names:
        return []
    series = {t.name: [t.metrics[n].value if n in t.metrics else None for n in names] for t in result.targets}
    return [("Targets compared", _grouped_bars("primary statistic per target", names, series, "value"))]


def baseline(result: SuiteResult) -> list[Plot]:
    if not result.baseline or not result.baseline.get("diffs"):
        return []
    diffs: list[dict[str, Any]] = result.baseline["diffs"]
    labels = [f"{d['target']}:{d['metric']}" for d in diffs]
    series: dict[str, list[float | None]] = {"baseline": [d["baseline"] for d in diffs],
                                             "this run": [d["current"] for d in diffs]}
    return [("Against the baseline", _grouped_bars("this run vs baseline", labels, series, "value"))]


def all_plots(result: SuiteResult) -> list[Plot]:
    if not available() or result.error is not None:
        return []
    return distributions(result) + categories(result) + targets(result) + baseline(result)
