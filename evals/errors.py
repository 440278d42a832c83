"""The evaluation package's errors. Each maps to the CLI's exit code 2 ("the suite itself is broken").

    EvalError
    ├── SuiteError          the suite file, its dataset, a template or a metric's parameters are wrong
    │   └── UnknownMetric   a metric name nobody registered (the message lists what exists)
    └── TargetError         the target cannot be evaluated: down, wrong key, unknown model or route

A failing threshold or a regression is not an error: it is a result, and exits 1.
"""

from __future__ import annotations


class EvalError(Exception):
    """Base class; the message is written for the person who runs the suite."""


class SuiteError(EvalError):
    pass


class UnknownMetric(SuiteError):
    def __init__(self, name: str, known: list[str]) -> None:
        super().__init__(f"unknown metric {name!r}; registered metrics: {', '.join(sorted(known))}")
        self.name = name
        self.known = sorted(known)


class TargetError(EvalError):
    pass
