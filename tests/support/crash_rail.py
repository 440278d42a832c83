"""A guardrails plugin for the fail-closed tests: a rail that always raises.

Registered through `guardrails.plugins`, the same way any extension rail is."""

from __future__ import annotations

from guardrails.policy import RailSpec
from guardrails.rails import Rail, RailContext, Resources, register
from guardrails.verdict import Verdict


class CrashRail:
    name = "crash"

    async def run(self, text: str, ctx: RailContext) -> tuple[Verdict, str]:
        raise RuntimeError("this rail always fails")


@register("crash")
def _build(spec: RailSpec, res: Resources) -> Rail:
    return CrashRail()
