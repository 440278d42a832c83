"""Evaluation of the gateway through its own API: suites as YAML files, metrics as small registered
functions, a runner with cache/concurrency/retries, reports (terminal, JSON, JUnit, Markdown, HTML)
and a runs store served at /v1/evals/runs. See evals/README.md.

    evals.suite     the suite file format            evals.runner   run_suite(suite, transport) -> SuiteResult
    evals.targets   HTTP calls per target kind       evals.metrics  MetricRegistry, default_registry()
    evals.cache     outputs cache (SQLite)           evals.stats    McNemar, sign test, paired bootstrap
    evals.compare   targets A/B and baselines        evals.report   terminal, junit, markdown, html, plots
    evals.store     EvalStore, latest_passing_run, prompt_gate     evals.cli  `llmops eval`
"""
