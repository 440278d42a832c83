"""The evaluation gate: a candidate model must pass an eval suite before it is registered.

The suite (evals/ format) runs unchanged through the evals runner, with every `model` target
pointed at the candidate, served by `finetune.candidate` on loopback: what is scored is exactly
the merged weights that would be published. Suites whose targets need the gateway's other
endpoints (prompt, rag, retrieval, guardrails) cannot gate a candidate and fail the gate.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evals.errors import EvalError
from evals.runner import RunOverrides, run_suite
from evals.suite import Suite, load_suite
from evals.targets import Transport
from finetune.candidate import CandidateServer

GATE_KINDS = ("model", "gateway")


@dataclass(frozen=True)
class GateResult:
    passed: bool
    summary: str
    data: dict[str, Any] = field(default_factory=dict)


def retarget(suite: Suite, model: str) -> Suite:
    if suite.target is not None:
        return suite.model_copy(update={"target": suite.target.model_copy(update={"model": model})})
    named = [t.model_copy(update={"model": model, "name": t.display_name}) for t in suite.targets or []]
    return suite.model_copy(update={"targets": named})


def run_gate(candidate: Path, suite_path: Path, model: str) -> GateResult:
    try:
        suite = load_suite(suite_path)
    except EvalError as err:
        return GateResult(False, f"Evaluation gate suite {suite_path} cannot run: {err}")
    kinds = sorted({t.kind for t in suite.all_targets} - set(GATE_KINDS))
    if kinds:
        return GateResult(False, f"Evaluation gate '{suite.name}': target kinds {kinds} cannot evaluate a candidate "
                                 f"model; use {' or '.join(GATE_KINDS)} targets")
    suite = retarget(suite, model)
    with CandidateServer(candidate, model) as url:
        transport = Transport(url, "candidate", timeout_s=suite.run.timeout_s)

        async def go() -> Any:
            try:
                return await run_suite(suite, transport, overrides=RunOverrides(use_cache=False))
            finally:
                await transport.aclose()

        result = asyncio.run(go())
    failed = [c for c in result.checks if c.gating and not c.passed]
    data = {"suite": suite.name, "status": result.status, "n_items": result.n_items,
            "checks": [{"name": c.name, "passed": c.passed, "actual": c.actual} for c in result.checks]}
    if result.error:
        return GateResult(False, f"Evaluation gate '{suite.name}' could not run: {result.error}", data)
    if failed:
        detail = "; ".join(c.message or c.name for c in failed[:5])
        return GateResult(False, f"Evaluation gate '{suite.name}' failed: {detail}", data)
    return GateResult(True, f"Evaluation gate '{suite.name}' passed ({result.n_items} items, "
                            f"{len(result.checks)} checks)", data)
