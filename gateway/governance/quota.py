"""`Limits`: the caps a principal carries. Kept free of gateway imports so that `gateway.auth`
can name it without an import cycle."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.governance.settings import Budget


@dataclass(frozen=True, slots=True)
class Limits:
    """Per-principal caps; None means no cap of that kind."""

    rpm: int | None = None
    tpm: int | None = None
    budget: Budget | None = None

    @property
    def empty(self) -> bool:
        return self.rpm is None and self.tpm is None and self.budget is None


NO_LIMITS = Limits()
