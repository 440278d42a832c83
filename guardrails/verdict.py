"""The one result type every rail returns, so the gateway can treat rails uniformly."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Action = Literal["pass", "block", "mask", "log"]


@dataclass(frozen=True, slots=True)
class Verdict:
    """Outcome of running one rail over one piece of text.

    ``score`` is the rail's own confidence in [0, 1] (1 = certainly bad); it is kept even
    when ``action == "pass"`` so callers can log near misses and re-tune thresholds.
    """

    rail: str
    action: Action
    score: float
    latency_ms: float
    detail: str = ""

    @property
    def blocked(self) -> bool:
        return self.action == "block"

    @property
    def triggered(self) -> bool:
        """True when the rail found something, whatever it decided to do about it."""
        return self.action != "pass"
