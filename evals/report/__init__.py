"""Run outputs: the terminal table, JSON results, JUnit XML, and Markdown and HTML reports."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from evals.report import html, junit, markdown, terminal
from evals.results import SuiteResult


def results_document(results: list[SuiteResult], exit_code: int) -> dict[str, Any]:
    """The JSON results file: every suite's results (each one also works alone as a baseline)."""
    return {"exit_code": exit_code, "suites": [r.to_dict() for r in results]}


def write_json(results: list[SuiteResult], exit_code: int, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results_document(results, exit_code), indent=1, ensure_ascii=False, default=str),
                    encoding="utf-8")


def write_report(results: list[SuiteResult], exit_code: int, folder: Path) -> list[Path]:
    """report.md, report.html and results.json in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    md, page, js = folder / "report.md", folder / "report.html", folder / "results.json"
    md.write_text(markdown.render(results, exit_code), encoding="utf-8")
    page.write_text(html.render(results, exit_code), encoding="utf-8")
    write_json(results, exit_code, js)
    return [md, page, js]


__all__ = ["html", "junit", "markdown", "terminal", "results_document", "write_json", "write_report"]
