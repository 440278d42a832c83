"""`llmops eval`: run suites, list stored runs, list metrics.

    llmops eval run SUITE.yaml... [--base-url URL --api-key KEY] [--junit FILE] [--report DIR]
                                  [--json FILE] [--baseline FILE] [--concurrency N] [--no-cache] ...
    llmops eval runs [--suite NAME] [--store URL]
    llmops eval metrics

Exit codes of `run`: 0 every suite passed; 1 a threshold or a regression failed; 2 a suite is broken
(bad file, missing dataset, unknown metric, target down). Without --base-url the embedded stack is
started (`llmops serve` as a subprocess, see evals.embedded). Wire into the main CLI with
`add_subparser(subparsers)`; `python -m evals.cli run ...` works stand-alone.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

from evals.cache import OutputCache
from evals.embedded import EmbeddedGateway
from evals.errors import EvalError, TargetError
from evals.metrics import default_registry, load_plugins
from evals.metrics.semantic import LocalEmbedder
from evals.report import junit, terminal, write_json, write_report
from evals.results import SuiteResult, overall_exit_code
from evals.runner import RunOverrides, broken, run_suite
from evals.store import ROOT, EvalStore
from evals.suite import Suite, load_suite
from evals.targets import Transport

DEFAULT_CACHE_DIR = ROOT / "var" / "evals-cache"


async def run_all(suites: list[Suite], base_url: str, api_key: str, *, cache: OutputCache | None,
                  overrides: RunOverrides, progress: bool, plugins: list[str]) -> list[SuiteResult]:
    results = []
    embedder = LocalEmbedder()
    for suite in suites:
        registry = default_registry()
        load_plugins(registry, plugins)
        concurrency = overrides.concurrency or suite.run.concurrency
        transport = Transport(base_url, api_key, timeout_s=suite.run.timeout_s, max_connections=max(8, concurrency * 2))
        try:
            results.append(await run_suite(suite, transport, cache=cache, registry=registry, overrides=overrides,
                                           progress=progress, embedder=embedder))
        finally:
            await transport.aclose()
    return results


def _record_remote(results: list[SuiteResult], base_url: str, admin_key: str) -> None:
    import httpx

    from evals.targets import api_root

    for r in results:
        try:
            resp = httpx.post(f"{api_root(base_url)}/v1/evals/runs", json=r.to_dict(),
                              headers={"Authorization": f"Bearer {admin_key}"}, timeout=30)
            resp.raise_for_status()
            print(f"llmops eval: recorded {r.suite} at the gateway as {resp.json().get('id')}", file=sys.stderr)
        except (httpx.HTTPError, ValueError) as err:
            print(f"llmops eval: WARNING could not record {r.suite} at the gateway: {err}", file=sys.stderr)


def _store_local(results: list[SuiteResult], url: str | None) -> None:
    try:
        store = EvalStore.for_data_dir(ROOT / "var", url)
    except Exception as err:  # a store that cannot open must not hide the verdict
        print(f"llmops eval: WARNING runs store unavailable: {err}", file=sys.stderr)
        return
    try:
        for r in results:
            run = store.record(r.to_dict())
            print(f"llmops eval: stored run {run.id} ({r.suite}, {r.status})", file=sys.stderr)
    except Exception as err:
        print(f"llmops eval: WARNING could not store the run: {err}", file=sys.stderr)
    finally:
        store.close()


def cmd_run(args: argparse.Namespace) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    results: list[SuiteResult] = []
    loaded: list[tuple[int, Suite]] = []
    for n, path in enumerate(args.suites):
        try:
            loaded.append((n, load_suite(path)))
        except EvalError as err:
            results.append(broken(path, err))
    suites = [s for _, s in loaded]
    progress = sys.stderr.isatty() if args.progress is None else args.progress
    overrides = RunOverrides(concurrency=args.concurrency, retries=args.retries, seed=args.seed, limit=args.limit,
                             baseline=args.baseline, use_cache=not args.no_cache)
    cache = None if args.no_cache else OutputCache.in_dir(args.cache_dir)
    embedded: EmbeddedGateway | None = None
    try:
        if suites:
            base_url, api_key = args.base_url, args.api_key
            try:
                if base_url is None:
                    embedded = EmbeddedGateway(args.config)
                    embedded.start()
                    base_url, api_key = embedded.base_url, embedded.api_key
                results += asyncio.run(run_all(suites, base_url, api_key or "", cache=cache, overrides=overrides,
                                               progress=progress, plugins=args.plugin or []))
            except (TargetError, EvalError) as err:
                results += [broken(str(s.source or s.name), err) for s in suites]
    finally:
        if embedded is not None:
            embedded.stop()
        if cache is not None:
            cache.close()
    code = overall_exit_code(results)
    if not args.quiet:
        sys.stdout.write(terminal.render_all(results, code))
    if args.junit:
        junit.write(results, args.junit)
    if args.json:
        write_json(results, code, args.json)
    if args.report:
        paths = write_report(results, code, args.report)
        print(f"llmops eval: report in {', '.join(str(p) for p in paths)}", file=sys.stderr)
    if not args.no_store:
        _store_local(results, args.store)
    if args.record:
        if not args.base_url:
            print("llmops eval: --record needs --base-url (the embedded stack is gone by now)", file=sys.stderr)
        else:
            _record_remote(results, args.base_url, args.admin_key or "")
    return code


def cmd_runs(args: argparse.Namespace) -> int:
    store = EvalStore.for_data_dir(ROOT / "var", args.store)
    try:
        runs = store.list_runs(suite=args.suite, prompt_name=args.prompt, limit=args.limit)
    finally:
        store.close()
    if args.format == "json":
        print(json.dumps([r.model_dump(mode="json") for r in runs], indent=1))
        return 0
    for r in runs:
        targets = ", ".join(f"{t.name}{'' if t.passed else ' (failed)'}" for t in r.targets)
        print(f"{r.id}  {r.created_at:%Y-%m-%d %H:%M:%S}  {r.suite:<20} {r.status:<7} {r.n_items:>4} items  {targets}")
    return 0


def cmd_metrics(args: argparse.Namespace) -> int:
    registry = default_registry()
    load_plugins(registry, args.plugin or [])
    for metric in registry:
        accepted, _, _ = metric.signature()
        print(f"{metric.name:<20} {metric.description}  [settings: {', '.join(sorted(accepted)) or '-'}]")
    return 0


def _configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="eval_command", required=True)
    run = sub.add_parser("run", help="run evaluation suites (exit 0 pass, 1 failed threshold/regression, 2 broken)")
    run.add_argument("suites", nargs="+", metavar="SUITE", help="suite YAML file(s)")
    run.add_argument("--base-url", help="gateway URL (default: start the embedded stack)")
    run.add_argument("--api-key", default=os.environ.get("LLMOPS_API_KEY"), help="client key (default $LLMOPS_API_KEY)")
    run.add_argument("--config", type=Path, help="gateway config for the embedded stack (default configs/gateway.yaml)")
    run.add_argument("--junit", type=Path, help="write JUnit XML here")
    run.add_argument("--report", type=Path, help="write report.md, report.html and results.json into this folder")
    run.add_argument("--json", type=Path, help="write the JSON results here (usable as a --baseline later)")
    run.add_argument("--baseline", type=Path, help="results JSON of an earlier run; regressions fail the run")
    run.add_argument("--concurrency", type=int, help="parallel calls (default: the suite's run.concurrency)")
    run.add_argument("--retries", type=int, help="retries per call (default: the suite's run.retries)")
    run.add_argument("--seed", type=int, help="seed for requests, sampling and bootstrap (default: the suite's)")
    run.add_argument("--limit", type=int, help="only the first N items of each dataset")
    run.add_argument("--no-cache", action="store_true", help="call the target for every item (e.g. to time it)")
    run.add_argument("--cache-dir", type=Path, default=Path(os.environ.get("LLMOPS_EVALS_CACHE_DIR", DEFAULT_CACHE_DIR)))
    run.add_argument("--store", help="runs store SQLAlchemy URL (default $LLMOPS_EVALS_DATABASE_URL or var/evals.sqlite3)")
    run.add_argument("--no-store", action="store_true", help="do not keep this run in the runs store")
    run.add_argument("--record", action="store_true", help="also POST the results to the gateway's /v1/evals/runs")
    run.add_argument("--admin-key", default=os.environ.get("LLMOPS_ADMIN_KEY"), help="admin key for --record")
    run.add_argument("--plugin", action="append", help="module with register_metrics(registry); repeatable")
    run.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                     help="progress bar on stderr (default: when stderr is a terminal)")
    run.add_argument("-q", "--quiet", action="store_true", help="no terminal table")
    run.set_defaults(func=cmd_run)

    runs = sub.add_parser("runs", help="list stored runs, newest first")
    runs.add_argument("--store", help="runs store SQLAlchemy URL")
    runs.add_argument("--suite")
    runs.add_argument("--prompt")
    runs.add_argument("--limit", type=int, default=20)
    runs.add_argument("--format", choices=["table", "json"], default="table")
    runs.set_defaults(func=cmd_runs)

    metrics = sub.add_parser("metrics", help="list the registered metrics")
    metrics.add_argument("--plugin", action="append")
    metrics.set_defaults(func=cmd_metrics)


def add_subparser(subparsers: Any) -> argparse.ArgumentParser:
    """Add `eval` to the `llmops` parser's subparsers; its commands set `func(args) -> int`."""
    parser: argparse.ArgumentParser = subparsers.add_parser("eval", help="run evaluation suites against the gateway")
    _configure(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="llmops eval", description="evaluation suites against the gateway")
    _configure(parser)
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except EvalError as err:
        print(f"llmops eval: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
