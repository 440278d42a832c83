"""Output rails over a stream: text is released in windows only after the rails passed on it.

Each check covers the pending text plus `overlap` characters already released (context that
arrived earlier still informs it). `holdback` characters at the end are kept for the next window,
since they may be the first half of something whose second half has not arrived. A release never
ends inside an entity a masking rail found, nor inside a vault placeholder (`<EMAIL_1>`), so
masking and unmasking always see whole values. On a block nothing more is released.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from guardrails.engine import CompiledPolicy, Screen, run_rails
from guardrails.pii import unmask
from guardrails.rails import RailContext

_OPEN_PLACEHOLDER = re.compile(r"<[A-Z_]*\d*$")


@dataclass(frozen=True, slots=True)
class Release:
    text: str
    stop: bool = False
    blocked_by: str | None = None


class StreamScreen:
    def __init__(
        self, policy: CompiledPolicy, ctx: RailContext, window: int, overlap: int = 64, holdback: int = 48
    ) -> None:
        self.policy = policy
        self.ctx = ctx
        self.window = window
        self.overlap = overlap
        self.holdback = holdback
        self.screen = Screen()
        self._pending = ""
        self._tail = ""
        self.stopped = False

    def _safe_cut(self, cut: int) -> int:
        """Move the cut back so it falls inside no entity a masking rail would replace."""
        spans = [
            span
            for spec, rail in self.policy.output
            if spec.action == "mask" and hasattr(rail, "spans")
            for span in rail.spans(self._pending)
        ]
        moved = True
        while moved:
            moved = False
            for start, end in spans:
                if start < cut < end:
                    cut, moved = start, True
        partial = _OPEN_PLACEHOLDER.search(self._pending[:cut])
        return partial.start() if partial else cut

    async def _check(self, final: bool) -> Release:
        subject = self._tail + self._pending
        await run_rails(self.policy.output, subject, self.ctx, self.screen)
        if self.screen.blocked_by:
            self.stopped = True
            self._pending = ""
            return Release("", True, self.screen.blocked_by)
        cut = len(self._pending) if final else self._safe_cut(max(0, len(self._pending) - self.holdback))
        raw, self._pending = self._pending[:cut], self._pending[cut:]
        if not raw:
            return Release("")
        self._tail = (self._tail + raw)[-self.overlap :] if self.overlap else ""
        released = raw
        for spec, rail in self.policy.output:
            if spec.action == "mask":
                _, released = await rail.run(released, self.ctx)
        return Release(unmask(released, self.ctx.vault))

    async def feed(self, delta: str) -> Release:
        if self.stopped:
            return Release("", True, self.screen.blocked_by)
        self._pending += delta
        if len(self._pending) - self.holdback < self.window:
            return Release("")
        return await self._check(final=False)

    async def finish(self) -> Release:
        if self.stopped:
            return Release("", True, self.screen.blocked_by)
        if not self._pending:
            return Release("")
        return await self._check(final=True)
