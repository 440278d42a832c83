"""JUnit XML for CI: one <testsuite> per suite and target, one <testcase> per check.

A failed threshold, error rate or regression is a <failure>; a suite that could not run is one
<testcase name="suite"> with an <error>. So CI's failure count agrees with the exit code. The
per-item scores go into <system-out>. The layout follows the common JUnit schema (Jenkins/Ant:
testsuites > testsuite[name, tests, failures, errors, skipped, time, timestamp] > testcase[name,
classname, time] > failure|error[message, type]).
"""

from __future__ import annotations

import socket
import xml.etree.ElementTree as ET
from pathlib import Path

from evals.report.terminal import fmt
from evals.results import SuiteResult, TargetResult


def _items_text(t: TargetResult) -> str:
    lines = []
    for item in t.items:
        scores = " ".join(f"{k}={fmt(v.value)}" for k, v in item.scores.items())
        status = f"ERROR {item.error}" if item.error else scores
        lines.append(f"{item.id}: {status}")
    return "\n".join(lines)


def _suite_el(parent: ET.Element, name: str, timestamp: str, time_s: float) -> ET.Element:
    el = ET.SubElement(parent, "testsuite", name=name, timestamp=timestamp[:19], hostname=socket.gethostname(),
                       time=f"{time_s:.3f}")
    return el


def _finish(el: ET.Element) -> tuple[int, int, int]:
    cases = el.findall("testcase")
    failures = sum(1 for c in cases if c.find("failure") is not None)
    errors = sum(1 for c in cases if c.find("error") is not None)
    skipped = sum(1 for c in cases if c.find("skipped") is not None)
    el.set("tests", str(len(cases)))
    el.set("failures", str(failures))
    el.set("errors", str(errors))
    el.set("skipped", str(skipped))
    return len(cases), failures, errors


def build(results: list[SuiteResult]) -> ET.ElementTree:
    root = ET.Element("testsuites", name="llmops-evals")
    totals = [0, 0, 0]
    total_time = 0.0
    for r in results:
        total_time += r.duration_s
        if r.error is not None:
            el = _suite_el(root, r.suite, r.started_at, r.duration_s)
            case = ET.SubElement(el, "testcase", name="suite", classname=f"evals.{r.suite}", time="0")
            err = ET.SubElement(case, "error", message=r.error.splitlines()[0][:500], type=r.error_type or "EvalError")
            err.text = r.error
            n, f, e = _finish(el)
            totals = [totals[0] + n, totals[1] + f, totals[2] + e]
        for t in r.targets:
            el = _suite_el(root, f"{r.suite}[{t.name}]", r.started_at, t.duration_s)
            props = ET.SubElement(el, "properties")
            for key in ("kind", "model", "rails", "version"):
                if t.spec.get(key) is not None:
                    ET.SubElement(props, "property", name=f"target.{key}", value=str(t.spec[key]))
            if t.prompt_version:
                ET.SubElement(props, "property", name="target.prompt", value=f"{t.spec['prompt']['name']}")
                ET.SubElement(props, "property", name="target.prompt_version", value=str(t.prompt_version))
            ET.SubElement(props, "property", name="seed", value=str(r.seed))
            checks = t.checks + [c for c in r.regression_checks if c.target == t.name]
            for c in checks:
                case = ET.SubElement(el, "testcase", name=c.name, classname=f"evals.{r.suite}.{t.name}", time="0")
                if not c.passed and c.gating:
                    fail = ET.SubElement(case, "failure", message=c.message[:500], type=c.kind)
                    fail.text = c.message + (f"\nfailing items: {', '.join(c.items)}" if c.items else "")
                elif not c.passed:
                    ET.SubElement(case, "skipped", message=f"not gating: {c.message[:400]}")
                else:
                    out = ET.SubElement(case, "system-out")
                    out.text = c.message
            sysout = ET.SubElement(el, "system-out")
            sysout.text = _items_text(t)
            n, f, e = _finish(el)
            totals = [totals[0] + n, totals[1] + f, totals[2] + e]
    root.set("tests", str(totals[0]))
    root.set("failures", str(totals[1]))
    root.set("errors", str(totals[2]))
    root.set("time", f"{total_time:.3f}")
    tree = ET.ElementTree(root)
    ET.indent(tree)
    return tree


def write(results: list[SuiteResult], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    build(results).write(path, encoding="utf-8", xml_declaration=True)
