"""The HTML report: one self-contained file (inline CSS, plots as base64 PNGs), rendered with Jinja2."""

from __future__ import annotations

from typing import Any

from jinja2 import Environment, select_autoescape

from evals.report import plots
from evals.report.terminal import fmt
from evals.results import SuiteResult

TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Evaluation report</title>
<style>
body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:1100px;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:.6em 0 1.2em}td,th{border:1px solid #ccc;padding:3px 8px;text-align:left;
vertical-align:top}th{background:#f3f3f3}.pass{color:#176e2c;font-weight:600}.fail{color:#b00020;font-weight:700}
.error{color:#8a4b00;font-weight:700}.muted{color:#777}pre{background:#f7f7f7;padding:.6em;overflow:auto}
figure{display:inline-block;margin:.5em 1em .5em 0}figcaption{font-size:12px;color:#555}
td.out{max-width:420px;word-wrap:break-word}
</style></head><body>
<h1>Evaluation report</h1>
<p>Result: <span class="{{ 'pass' if exit_code == 0 else ('fail' if exit_code == 1 else 'error') }}">{{ verdict }}</span>
(exit code {{ exit_code }}).</p>
<table><tr><th>suite</th><th>status</th><th>items</th><th>targets</th><th>failed checks</th></tr>
{% for s in suites %}<tr><td><a href="#{{ s.r.suite }}">{{ s.r.suite }}</a></td>
<td class="{{ cls(s.r.status) }}">{{ s.r.status }}</td><td>{{ s.r.n_items }}</td>
<td>{{ s.r.targets|map(attribute='name')|join(', ') }}</td><td>{{ s.failed }}</td></tr>{% endfor %}</table>
{% if not plots_available %}<p class="muted">Plots need matplotlib, which is not installed.</p>{% endif %}
{% for s in suites %}{% set r = s.r %}
<h2 id="{{ r.suite }}">Suite {{ r.suite }} — <span class="{{ cls(r.status) }}">{{ r.status|upper }}</span></h2>
{% if r.description %}<p>{{ r.description }}</p>{% endif %}
{% if r.error %}<p class="error">The suite could not run ({{ r.error_type }}):</p><pre>{{ r.error }}</pre>{% else %}
<p class="muted">Dataset {{ r.dataset }}, {{ r.n_items }} items, seed {{ r.seed }}, started {{ r.started_at }},
{{ '%.1f'|format(r.duration_s) }} s.</p>
{% for t in r.targets %}
<h3>Target {{ t.name }} — <span class="{{ 'pass' if t.passed else 'fail' }}">{{ 'passed' if t.passed else 'FAILED' }}</span></h3>
<p class="muted">kind {{ t.spec.kind }}{% if t.spec.model %}, model {{ t.spec.model }}{% endif %}{% if t.spec.prompt %},
prompt {{ t.spec.prompt.name }} {% if t.spec.prompt.label %}label {{ t.spec.prompt.label }}{% endif %}{% if t.prompt_version %}
v{{ t.prompt_version }}{% endif %}{% endif %}{% if t.spec.rails %}, rails {{ t.spec.rails }}{% endif %};
{{ t.items|length }} items, {{ t.calls }} calls, {{ t.cache_hits }} from cache, {{ t.errors }} errors.</p>
<table><tr><th>metric</th><th>value</th><th>statistic</th><th>pass rate</th><th>other statistics</th></tr>
{% for name, m in t.metrics.items() %}<tr><td>{{ name }}</td><td>{{ fmt(m.value) }}</td><td>{{ m.primary }}</td>
<td>{{ fmt(m.stats.get('pass_rate')) }}</td><td class="muted">{% for k, v in m.stats.items() if k not in (m.primary, 'pass_rate', 'n') and v is not none %}{{ k }} {{ fmt(v) }}{% if not loop.last %}, {% endif %}{% endfor %}</td></tr>{% endfor %}
</table>
<table><tr><th>check</th><th>result</th><th>detail</th></tr>
{% for c in t.checks + (r.regression_checks|selectattr('target', 'equalto', t.name)|list) %}<tr><td>{{ c.name }}</td>
<td class="{{ 'pass' if c.passed else ('fail' if c.gating else 'muted') }}">{{ 'pass' if c.passed else ('FAIL' if c.gating else 'fail (not gating)') }}</td>
<td>{{ c.message }}</td></tr>{% endfor %}</table>
{% for w in t.warnings %}<p class="error">warning: {{ w }}</p>{% endfor %}
<details><summary>Items ({{ t.items|length }})</summary>
<table><tr><th>item</th><th>category</th><th>input</th><th>output</th>{% for name in t.metrics %}<th>{{ name }}</th>{% endfor %}</tr>
{% for i in t.items %}<tr><td>{{ i.id }}</td><td>{{ i.category or '' }}</td><td class="out">{{ i.input|truncate(200) }}</td>
<td class="out">{% if i.error %}<span class="error">error: {{ i.error }}</span>{% elif i.output.blocked %}<b>[blocked: {{ i.output.blocked_stage }}]</b> {{ i.output.text or '' }}{% else %}{{ (i.output.text or '')|truncate(300) }}{% endif %}</td>
{% for name in t.metrics %}{% set p = i.passed.get(name) %}<td class="{{ 'fail' if p is false else '' }}">{{ fmt(i.value(name)) }}</td>{% endfor %}</tr>{% endfor %}
</table></details>
{% endfor %}
{% if r.comparisons %}<h3>Comparison</h3>
<table><tr><th>metric</th><th>A</th><th>B</th><th>A value</th><th>B value</th><th>items that differ</th><th>significance</th></tr>
{% for c in r.comparisons %}<tr><td>{{ c.metric }}</td><td>{{ c.a }}</td><td>{{ c.b }}</td><td>{{ fmt(c.a_value) }}</td>
<td>{{ fmt(c.b_value) }}</td><td>{{ c.n_diffs }}</td><td>{{ c.paired.note }}</td></tr>{% endfor %}</table>
{% for c in r.comparisons if c.diffs %}<details><summary>{{ c.metric }}: {{ c.n_diffs }} item(s) differ ({{ c.a }} → {{ c.b }})</summary>
<table><tr><th>item</th><th>A</th><th>B</th><th>A output</th><th>B output</th></tr>
{% for d in c.diffs %}<tr><td>{{ d.id }}</td><td>{{ fmt(d.a) }}</td><td>{{ fmt(d.b) }}</td><td class="out">{{ d.a_output }}</td>
<td class="out">{{ d.b_output }}</td></tr>{% endfor %}</table></details>{% endfor %}{% endif %}
{% if r.baseline %}<h3>Against the baseline</h3><p class="muted">{{ r.baseline.path }} (run of {{ r.baseline.started_at }})</p>
<table><tr><th>target</th><th>metric</th><th>baseline</th><th>now</th><th>Δ</th><th>regressed</th><th>newly failing</th><th>significance</th></tr>
{% for d in r.baseline.diffs %}<tr><td>{{ d.target }}</td><td>{{ d.metric }}.{{ d.stat }}</td><td>{{ fmt(d.baseline) }}</td>
<td>{{ fmt(d.current) }}</td><td>{{ '%+.4g'|format(d.delta) }}</td><td class="{{ 'fail' if d.regressed else 'pass' }}">{{ 'yes' if d.regressed else 'no' }}</td>
<td>{{ d.newly_failing|join(', ') }}</td><td>{{ d.paired.note }}</td></tr>{% endfor %}</table>{% endif %}
{% if s.plots %}<h3>Plots</h3>{% for title, uri in s.plots %}<figure><img alt="{{ title }}" src="{{ uri }}"><figcaption>{{ title }}</figcaption></figure>{% endfor %}{% endif %}
{% endif %}{% endfor %}
</body></html>
"""


def _cls(status: str) -> str:
    return {"passed": "pass", "failed": "fail"}.get(status, "error")


def render(results: list[SuiteResult], exit_code: int, with_plots: bool = True) -> str:
    env = Environment(autoescape=select_autoescape(default=True, default_for_string=True))
    env.globals.update(fmt=fmt, cls=_cls)
    suites: list[dict[str, Any]] = []
    for r in results:
        suites.append({"r": r, "plots": plots.all_plots(r) if with_plots else [],
                       "failed": sum(1 for c in r.checks if not c.passed and c.gating)})
    verdict = {0: "passed", 1: "FAILED (a threshold or regression failed)", 2: "ERROR (a suite could not run)"}[exit_code]
    return env.from_string(TEMPLATE).render(suites=suites, exit_code=exit_code, verdict=verdict,
                                            plots_available=plots.available())
